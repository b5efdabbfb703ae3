/*
 * cgroup v2 limits (init/cgroup.c): PID 1 puts each sandbox and the listener in a cgroup of its
 * own below one directory it owns. A leaf header (nothing of keel's included), so `keel vm
 * restore --cgroup` limits itself the same way PID 1 limits a sandbox.
 */
#ifndef KEEL_CGROUP_H
#define KEEL_CGROUP_H

#include <stddef.h>
#include <stdint.h>

enum { INIT_CG_CPU, INIT_CG_MEMORY, INIT_CG_PIDS, INIT_CG_IO };

struct init_cg {
	char root[256];                      /* "" : nothing is enforced */
	unsigned ctl;                        /* 1 << INIT_CG_*: controllers enabled below root */
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
/* What a manifest asks for: its quota, its memory + the VMM's allowance, vCPUs + 8 tasks, io 100. */
void init_limits_manifest(uint32_t vcpus, uint32_t cpu_quota, uint64_t memory_bytes, struct init_limits *l);
void init_limits_listener(struct init_limits *l);
void init_limits_describe(const struct init_limits *l, char *buf, size_t len);
/* Makes root/leaf ahead of its first use (a cgroup's mkdir is the dearest step of entering it). */
void init_cg_make(const struct init_cg *cg, const char *leaf);
/* In the child, before it reads a guest byte: makes root/leaf, writes every limit, moves itself in. */
int init_cg_enter(const struct init_cg *cg, const char *leaf, const struct init_limits *l, char *err,
		  size_t errlen);
/* memory.events' oom_kill count of root/leaf (0 when there is none). */
unsigned long long init_cg_oom_kills(const struct init_cg *cg, const char *leaf);
/* Removes root/leaf (leaf NULL: root itself); only an empty cgroup goes. */
void init_cg_remove(const struct init_cg *cg, const char *leaf);

#endif
