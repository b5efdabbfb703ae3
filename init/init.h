/* init: PID 1 (boot, supervision, shutdown) and the front door of the multi-call binary. */
#ifndef KEEL_INIT_H
#define KEEL_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "init/cli.h"
#include "keel_config.h"
#include "net/net.h"

/* One `keel <command>`: run() gets argv with argv[0] = the command name. */
struct init_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* The table of every command, ended by a NULL name (init/main.c). */
extern const struct init_command init_commands[];

/* Helpers for tool commands of every module: init/cli.h. */


/* ---- board configuration (init/board.c) ------------------------------------
 *
 * board.conf: one "key = value" per line, '#' starts a comment line, blank
 * lines are ignored; keys and values are trimmed. Repeatable keys (module,
 * trusted-key) add one item per line; every other key may appear once.
 * Sandbox keys are "sandbox.NAME.KEY". board/pc-x86_64/board.conf documents
 * every key.
 */
#define INIT_PATH_MAX 256
#define INIT_MAX_MODULES 32
#define INIT_MAX_KEYS 8
#define INIT_MARKER_MAX 256

enum init_verify {
	INIT_VERIFY_MANIFEST = 0,   /* re-hash manifests (always done) */
	INIT_VERIFY_FULL = 1,       /* also every object a snapshot uses, before restoring it */
};

#define INIT_MAX_FORWARDS 8

enum init_net {
	INIT_NET_POLICY,                     /* as the manifest says: nat for policy-net on, else none */
	INIT_NET_NONE,                       /* no link: a NIC the snapshot has stays without carrier */
	INIT_NET_NAT,                        /* a private link to keel's network process, port forwards */
	INIT_NET_BRIDGE,                     /* a station of the board NIC's LAN (board.conf bridge = yes) */
};

struct init_sandbox_conf {
	char name[65];
	int autostart;                       /* default yes */
	int has_health_marker;               /* 0: the manifest's policy-health-marker */
	char health_marker[INIT_MARKER_MAX + 1];
	unsigned health_timeout_s;           /* 0: healthy once restored */
	unsigned restart_limit;
	unsigned cpu_quota;                  /* 0: the manifest's policy-cpu-quota; else narrower */
	unsigned long long memory_max;       /* bytes; 0: the manifest's memory + VMM allowance */
	int net;                             /* enum init_net: narrows the manifest's policy-net */
	struct init_forward {
		uint16_t outer, inner;           /* the appliance's TCP port -> the guest's */
	} forward[INIT_MAX_FORWARDS];
	unsigned nforward;
	struct net_allow allow[NET_MAX_ALLOW];   /* where the guest may connect (nat); none: nowhere */
	unsigned nallow;
};

struct init_board {
	char image[INIT_PATH_MAX];           /* snapshot partition (device or file); "" none */
	char data_device[INIT_PATH_MAX];     /* data partition device; "" = data-dir is a plain directory */
	char data_fstype[32];
	char data_dir[INIT_PATH_MAX];        /* where the data partition is (mounted); "" none */
	char nic[32];
	char address[64];                    /* "dhcp" or A.B.C.D/PREFIX */
	char gateway[64];
	uint32_t dns;                        /* the sandboxes' resolver (host order); 0: none */
	int bridge;                          /* sandboxes may be net = bridge */
	unsigned net_stats_s;                /* the links' counters on the console every N s (if moved); 0: never */
	unsigned port;
	char tls_cert[INIT_PATH_MAX], tls_key[INIT_PATH_MAX], tls_ca[INIT_PATH_MAX];
	char trusted_keys[INIT_MAX_KEYS][INIT_PATH_MAX];
	int ntrusted_keys;
	int insecure_unsigned;               /* no trusted keys: start unsigned snapshots anyway (labs) */
	int listener_plaintext;              /* listener without TLS allowed (labs) */
	char modules[INIT_MAX_MODULES][INIT_PATH_MAX];
	int nmodules;
	char watchdog[INIT_PATH_MAX];        /* "" none */
	unsigned watchdog_timeout_s;         /* set with WDIOC_SETTIMEOUT; 0 = the driver's own */
	char runner[INIT_PATH_MAX];          /* program run per sandbox; default /proc/self/exe */
	char cgroup[INIT_PATH_MAX];          /* where sandbox cgroups go; "" default, "none" off */
	char console_dir[INIT_PATH_MAX];     /* NAME.log: each sandbox's console ring; "" default */
	unsigned console_rate;               /* bytes/s of a sandbox's lines on the console (burst 4x) */
	int verify;                          /* enum init_verify */
	unsigned shutdown_timeout_s;
	unsigned restart_backoff_ms;         /* first restart delay; doubles, capped at 30 s */
	unsigned restart_reset_s;            /* healthy this long: the restart count starts over */
	int nsandboxes;
	struct init_sandbox_conf sandboxes[CONFIG_MAX_SANDBOXES];
};

/* Defaults for every key (no sandboxes). */
void init_board_defaults(struct init_board *b);
/* Strict parse; -EINVAL with err = "line N: what". */
int init_board_parse(const char *buf, size_t len, struct init_board *b, char *err, size_t errlen);
/* Reads and parses a file (at most 64 KiB). */
int init_board_load(const char *path, struct init_board *b, char *err, size_t errlen);
/* The sandbox called name, or NULL. */
struct init_sandbox_conf *init_board_sandbox(struct init_board *b, const char *name);

/* `keel version [--capabilities]` */
int init_cmd_version(int argc, char **argv);
/* `keel init --board FILE`: PID 1 for development (boot mode when keel is the real init). */
int init_cmd_init(int argc, char **argv);
/* Boot-mode PID 1 (getpid() == 1 and not started as `keel init`); never returns. */
void init_pid1_boot(void);

#endif
