/* Private to init/: the pieces PID 1 is made of (log, system setup, snapshots, supervisor). */
#ifndef KEEL_INIT_PID1_H
#define KEEL_INIT_PID1_H

#include <stdint.h>
#include <sys/types.h>

#include "init/cgroup.h"
#include "init/init.h"
#include "snap/snap.h"

struct init_policy;

/* ---- log.c: every line goes to the log fd and, when open, /dev/kmsg ---- */
/* log_fd: where lines go (console or stderr); kmsg_fd: -1 or /dev/kmsg. */
void init_log_setup(int log_fd, int kmsg_fd);
/* The descriptors init_log writes to (a jailed child keeps them): how many. */
int init_log_fds(int fds[2]);
void init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A ready-made line (a sandbox's console) to the log fd only, never blocking in boot mode. */
void init_log_raw(const char *line, size_t len);
/* A boot timeline line: milliseconds since the kernel started (CLOCK_BOOTTIME). */
void init_timeline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t init_now_ms(void);

/* ---- system.c: mounts, modules, watchdog, power (each logs its failure) ---- */
void init_sys_mount_base(void);
int init_sys_console(void);          /* console fd (also made fds 0..2), or -1 */
void init_sys_modules(const struct init_board *b);
int init_sys_mount_data(const struct init_board *b);   /* 1 mounted, 0 none needed, -errno */
void init_sys_umount_data(const struct init_board *b);
/* Opens (arms) the watchdog, sets timeout_s when non-zero; fd or -1. */
int init_sys_watchdog_open(const char *path, unsigned timeout_s, unsigned *interval_s);
void init_sys_watchdog_pet(int fd);
void init_sys_watchdog_close(int fd);
/* Opens every /dev/input/event* that can send KEY_POWER (nonblocking) into fds; returns how many. */
int init_sys_power_keys_open(int *fds, int max);
/* Drains fd's pending events; 1 when one of them was a KEY_POWER press. */
int init_sys_power_key_pressed(int fd);

/* ---- snapshots.c: which snapshot each sandbox restores, failure records ---- */
/* The data store's ref and its history, then the image's ref and its parents. */
#define INIT_MAX_CANDIDATES (1 + SNAP_REF_LOG_MAX + 8)

struct init_cand {
	uint8_t id[SNAP_HASH_LEN];
	int in_image;                        /* 1: partition image, 0: data store */
};

struct init_stores {
	struct snap_image *image;            /* NULL: no (acceptable) snapshot partition */
	char image_path[INIT_PATH_MAX];
	struct snap_store *data;             /* NULL: no data partition store */
	char data_store[INIT_PATH_MAX + 16];
	char failed_path[INIT_PATH_MAX + 32];
	uint8_t (*failed)[SNAP_HASH_LEN];    /* ids recorded as failed (loaded at start) */
	size_t nfailed, capfailed;
	struct snap_pubkey keys[INIT_MAX_KEYS];   /* the board's trusted keys that loaded */
	int nkeys;
	int insecure_unsigned;               /* board: no keys, and starting unsigned snapshots is allowed */
};

/* Opens the image (checking header and, with trusted keys, its signature) and the data store. */
void init_stores_open(struct init_stores *st, const struct init_board *b);
void init_stores_close(struct init_stores *st);
/*
 * Newest first: the data store's ref, that ref's earlier values (its history),
 * then the image's ref and its parents.
 */
int init_candidates(struct init_stores *st, const char *name, struct init_cand *out, int max);
int init_failed_has(const struct init_stores *st, const uint8_t id[SNAP_HASH_LEN]);
/* Remembers (in memory and, when there is a data partition, on it) that id failed. */
void init_failed_record(struct init_stores *st, const uint8_t id[SNAP_HASH_LEN], const char *why);
/*
 * Re-hashes the manifest and (full) every object it names; on failure what
 * names the bad item ("object HEX64" / "manifest HEX64"). 0 or -errno; pol
 * (when not NULL) gets what the verified manifest asks for.
 */
int init_verify_snapshot(struct init_stores *st, const struct init_cand *c, int full, char *what,
			 size_t whatlen, struct init_policy *pol);

/* ---- cgroup.c: cgroup v2 limits (init/cgroup.h), and a sandbox's from its manifest and the board ---- */
/* What a verified manifest asks for. */
struct init_policy {
	uint32_t vcpus, cpu_quota;           /* cpu_quota: percent of one CPU, over all vCPUs */
	uint64_t memory_bytes;
	int net;                             /* policy-net on: the guest has a NIC */
};

/* A sandbox's limits: the manifest's, narrowed by board.conf; -EPERM (err says) when the board widens. */
int init_limits_for(const struct init_sandbox_conf *c, const struct init_policy *p, struct init_limits *l,
		    char *err, size_t errlen);

/* ---- console.c: a console stream per sandbox ---- */
#define CONSOLE_LINE 256

struct init_console {
	char name[65];
	int fd;                              /* the pipe's read end (nonblocking), -1: none */
	char part[CONSOLE_LINE];             /* the line being read */
	size_t plen;
	uint64_t tokens, last_ms;            /* budget, bytes */
	unsigned rate;                       /* bytes/s; bursts of 4 s */
	unsigned long long dropped;          /* lines over budget not yet said */
	char ring[16384];                    /* the last lines, escaped */
	size_t rhead, rlen;
	int dirty;                           /* ring changed since it was saved */
};

/* Escapes control, '\\' and non-ASCII bytes (\xNN, \t), drops '\r'; out gets a NUL. Bytes written. */
size_t init_console_escape(const char *in, size_t n, char *out, size_t cap);
/* Starts reading fd (c->fd must be -1 or open; it is closed first). */
void init_console_open(struct init_console *c, const char *name, int fd, unsigned rate, uint64_t now_ms);
/* Reads what is there (bounded); -1 once the writer is gone (then c->fd is -1). */
int init_console_drain(struct init_console *c, uint64_t now_ms);
void init_console_close(struct init_console *c, uint64_t now_ms);
/* The ring from its oldest whole line on; NUL-terminated, bytes returned. */
size_t init_console_ring(const struct init_console *c, char *out, size_t cap);
/* Writes dir/NAME.log when the ring changed (dir "" : nowhere). */
void init_console_save(struct init_console *c, const char *dir);

/* ---- supervise.c: the PID-1 loop ---- */
/* boot: the real init (reboot(2) at the end); otherwise returns the exit status. */
int init_run(const char *board_path, int boot);

#endif
