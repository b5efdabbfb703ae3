/* Private to init/: the pieces PID 1 is made of (log, system setup, snapshots, supervisor). */
#ifndef KEEL_INIT_PID1_H
#define KEEL_INIT_PID1_H

#include <stdint.h>
#include <sys/types.h>

#include "init/init.h"
#include "snap/snap.h"

struct init_policy;

/* ---- log.c: every line goes to the log fd and, when open, /dev/kmsg ---- */
/* log_fd: where lines go (console or stderr); kmsg_fd: -1 or /dev/kmsg. */
void init_log_setup(int log_fd, int kmsg_fd);
/* The descriptors init_log writes to (a jailed child keeps them): how many. */
int init_log_fds(int fds[2]);
void init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

/* ---- cgroup.c: cgroup v2 limits per sandbox and for the listener ---- */
enum { INIT_CG_CPU, INIT_CG_MEMORY, INIT_CG_PIDS, INIT_CG_IO };

struct init_cg {
	char root[INIT_PATH_MAX];            /* "" : nothing is enforced */
	unsigned ctl;                        /* 1 << INIT_CG_*: controllers enabled below root */
};

/* What a verified manifest asks for. */
struct init_policy {
	uint32_t vcpus, cpu_quota;           /* cpu_quota: percent of one CPU, over all vCPUs */
	uint64_t memory_bytes;
};

struct init_limits {
	uint32_t cpu_pct;                    /* cpu.max: percent of one CPU */
	uint64_t mem_bytes;                  /* memory.max */
	uint32_t pids;
	uint32_t io_weight;
};

/*
 * Enables the controllers down to root (created) and fills cg. 0 with why =
 * what is enforced; -errno with why = one line saying why nothing is.
 */
int init_cg_setup(struct init_cg *cg, const char *root, char *why, size_t whylen);
/* A sandbox's limits: the manifest's, narrowed by board.conf; -EPERM (err says) when the board widens. */
int init_limits_for(const struct init_sandbox_conf *c, const struct init_policy *p, struct init_limits *l,
		    char *err, size_t errlen);
void init_limits_listener(struct init_limits *l);
void init_limits_describe(const struct init_limits *l, char *buf, size_t len);
/* In the child, before it reads a guest byte: makes root/leaf, writes every limit, moves itself in. */
int init_cg_enter(const struct init_cg *cg, const char *leaf, const struct init_limits *l, char *err,
		  size_t errlen);
/* memory.events' oom_kill count of root/leaf (0 when there is none). */
unsigned long long init_cg_oom_kills(const struct init_cg *cg, const char *leaf);
/* Removes root/leaf (leaf NULL: root itself); only an empty cgroup goes. */
void init_cg_remove(const struct init_cg *cg, const char *leaf);

/* ---- supervise.c: the PID-1 loop ---- */
/* boot: the real init (reboot(2) at the end); otherwise returns the exit status. */
int init_run(const char *board_path, int boot);

#endif
