/*
 * cgroup v2 limits: one cgroup per sandbox and one for the listener, under a
 * directory PID 1 owns (board.conf `cgroup`, default /sys/fs/cgroup/keel).
 *
 * A sandbox's limits come from its verified manifest, narrowed by board.conf:
 *   cpu.max          policy-cpu-quota (percent of one CPU, summed over vCPUs)
 *   memory.max       the guest's memory + CONFIG_SANDBOX_MEM_OVERHEAD_MIB (the
 *                    VMM, its page tables and KVM's own allocations)
 *   memory.oom.group 1: a sandbox over budget is killed whole
 *   pids.max         vCPU threads + a few (the VMM clones threads only)
 *   io.weight        100 (the listener 50)
 *
 * The child places itself (writes 0 into cgroup.procs) before it reads a
 * guest byte; every limit is written before it enters, so no instant of the
 * guest runs unlimited.
 *
 * IMPLEMENTATION NOTES
 * - The keel directory only holds cgroups, never a process (cgroup v2's "no
 *   internal processes" rule): PID 1 stays where it is.
 * - Controllers are enabled on the way down; one the kernel lacks (io without
 *   CONFIG_BLK_CGROUP) is named once at setup and its files are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "init/pid1_int.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define LISTENER_MEM_MIB 64
#define LISTENER_CPU_PCT 50

static const char *const ctl_names[] = { "cpu", "memory", "pids", "io" };

static int write_file(const char *dir, const char *file, const char *val)
{
	char path[INIT_PATH_MAX + 64];
	ssize_t n;
	int fd, e;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : n < 0 ? -e : -EIO;
}

static int read_file(const char *dir, const char *file, char *buf, size_t len)
{
	char path[INIT_PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* Is word (a controller name) in the space-separated list? */
static int has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0))
			return 1;
	return 0;
}

/* Is the cgroup2 mount root lives on mounted with favordynmods? */
static int favors_dynmods(const char *root)
{
	char line[512];
	size_t best = 0;
	int yes = 0;
	FILE *f = fopen("/proc/self/mounts", "re");

	if (!f)
		return 1;   /* nothing to say */
	/* "SOURCE DIR TYPE OPTIONS ..." */
	while (fgets(line, sizeof(line), f)) {
		char *dir = strchr(line, ' '), *type, *opts, *end;
		size_t n;
		if (!dir || !(type = strchr(++dir, ' ')))
			continue;
		*type++ = 0;
		if (strncmp(type, "cgroup2 ", 8) || !(opts = type + 8) || !(end = strchr(opts, ' ')))
			continue;
		*end = 0;
		n = strlen(dir);
		if (strncmp(root, dir, n) || (root[n] != '/' && root[n] != 0 && n > 1) || n < best)
			continue;
		best = n;
		yes = strstr(opts, "favordynmods") != NULL;
	}
	fclose(f);
	return yes;
}

/* Enables, for dir's children, each controller in want; returns those that took. */
static unsigned enable(const char *dir, unsigned want)
{
	unsigned got = 0;

	for (unsigned i = 0; i < sizeof(ctl_names) / sizeof(ctl_names[0]); i++) {
		char op[16];
		if (!(want & 1u << i))
			continue;
		snprintf(op, sizeof(op), "+%s", ctl_names[i]);
		/* EBUSY: dir holds processes of its own (cgroup v2 allows that only at the root) */
		if (write_file(dir, "cgroup.subtree_control", op) == 0)
			got |= 1u << i;
	}
	return got;
}

int init_cg_setup(struct init_cg *cg, const char *root, char *why, size_t whylen)
{
	unsigned have = 0;
	char parent[sizeof(cg->root)], buf[256], missing[64] = "";
	struct statfs sf;
	char *slash;
	int r;

	memset(cg, 0, sizeof(*cg));
	snprintf(parent, sizeof(parent), "%s", root);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent || !slash[1]) {
		snprintf(why, whylen, "cgroup %s: expected a directory below a cgroup2 mount", root);
		return -EINVAL;
	}
	*slash = 0;
	if (statfs(parent, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(why, whylen, "cgroup v2 is not mounted at %s", parent);
		return -ENOENT;
	}
	if ((r = read_file(parent, "cgroup.controllers", buf, sizeof(buf))) < 0) {
		snprintf(why, whylen, "%s/cgroup.controllers: %s", parent, strerror(-r));
		return -ENOENT;
	}
	for (unsigned i = 0; i < sizeof(ctl_names) / sizeof(ctl_names[0]); i++)
		if (has_word(buf, ctl_names[i]))
			have |= 1u << i;
	cg->ctl = enable(parent, have);
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, whylen, "mkdir %s: %s", root, strerror(-r));
		return r;
	}
	cg->ctl = enable(root, cg->ctl);
	if (!(cg->ctl & (1u << INIT_CG_CPU)) || !(cg->ctl & (1u << INIT_CG_MEMORY)) ||
	    !(cg->ctl & (1u << INIT_CG_PIDS))) {
		snprintf(why, whylen, "cgroup %s: the cpu, memory and pids controllers cannot be enabled "
			 "(a parent with processes of its own?)", root);
		return -EBUSY;
	}
	snprintf(cg->root, sizeof(cg->root), "%s", root);
	if (!(cg->ctl & (1u << INIT_CG_IO)))
		snprintf(missing, sizeof(missing), "; no io controller: io weight not enforced");
	snprintf(why, whylen, "cgroup %s: cpu, memory, pids%s%s", root, missing[0] ? missing : ", io",
		 favors_dynmods(root) ? "" : " (cgroup2 mounted without favordynmods: every sandbox start waits "
					     "for an RCU grace period)");
	return 0;
}

void init_limits_manifest(uint32_t vcpus, uint32_t cpu_quota, uint64_t memory_bytes, struct init_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->cpu_pct = cpu_quota;
	l->mem_bytes = memory_bytes + ((uint64_t)CONFIG_SANDBOX_MEM_OVERHEAD_MIB << 20);
	l->pids = vcpus + 8;
	l->io_weight = 100;
}

int init_limits_for(const struct init_sandbox_conf *c, const struct init_policy *p, struct init_limits *l,
		    char *err, size_t errlen)
{
	uint64_t mem;

	init_limits_manifest(p->vcpus, p->cpu_quota, p->memory_bytes, l);
	mem = l->mem_bytes;
	if (c->cpu_quota) {
		if (c->cpu_quota > p->cpu_quota) {
			snprintf(err, errlen, "board.conf sandbox.%s.cpu-quota %u is wider than the manifest's "
				 "policy-cpu-quota %u (a board may only narrow it)", c->name, c->cpu_quota,
				 p->cpu_quota);
			return -EPERM;
		}
		l->cpu_pct = c->cpu_quota;
	}
	if (c->memory_max) {
		if (c->memory_max > mem) {
			snprintf(err, errlen, "board.conf sandbox.%s.memory-max %llu MiB is wider than the "
				 "manifest's memory + VMM allowance, %llu MiB (a board may only narrow it)", c->name,
				 (unsigned long long)(c->memory_max >> 20), (unsigned long long)(mem >> 20));
			return -EPERM;
		}
		l->mem_bytes = c->memory_max;
	}
	return 0;
}

void init_limits_listener(struct init_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->cpu_pct = LISTENER_CPU_PCT;
	l->mem_bytes = (uint64_t)LISTENER_MEM_MIB << 20;
	l->pids = 8;
	l->io_weight = 50;
}

void init_limits_describe(const struct init_limits *l, char *buf, size_t len)
{
	snprintf(buf, len, "cpu %u%% of one CPU, memory %llu MiB, pids %u, io weight %u", l->cpu_pct,
		 (unsigned long long)(l->mem_bytes >> 20), l->pids, l->io_weight);
}

static void leaf_path(const struct init_cg *cg, const char *leaf, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", cg->root, leaf);
}

int init_cg_enter(const struct init_cg *cg, const char *leaf, const struct init_limits *l, char *err,
		  size_t errlen)
{
	char dir[INIT_PATH_MAX + 80], v[64];
	struct {
		const char *file;
		unsigned ctl;
		char val[40];
	} w[5];
	int n = 0, r;

	leaf_path(cg, leaf, dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cgroup: mkdir %s: %s", dir, strerror(-r));
		return r;
	}
	w[n].file = "cpu.max", w[n].ctl = INIT_CG_CPU;
	snprintf(w[n++].val, sizeof(w[0].val), "%llu 100000", (unsigned long long)l->cpu_pct * 1000);
	w[n].file = "memory.max", w[n].ctl = INIT_CG_MEMORY;
	snprintf(w[n++].val, sizeof(w[0].val), "%llu", (unsigned long long)l->mem_bytes);
	w[n].file = "memory.oom.group", w[n].ctl = INIT_CG_MEMORY;
	snprintf(w[n++].val, sizeof(w[0].val), "1");
	w[n].file = "pids.max", w[n].ctl = INIT_CG_PIDS;
	snprintf(w[n++].val, sizeof(w[0].val), "%u", l->pids);
	w[n].file = "io.weight", w[n].ctl = INIT_CG_IO;
	snprintf(w[n++].val, sizeof(w[0].val), "default %u", l->io_weight);
	for (int i = 0; i < n; i++) {
		if (!(cg->ctl & 1u << w[i].ctl))
			continue;
		/* io.weight exists only with the BFQ or iocost policy behind it; its absence is no error */
		if ((r = write_file(dir, w[i].file, w[i].val)) < 0 && !(r == -ENOENT && w[i].ctl == INIT_CG_IO)) {
			snprintf(err, errlen, "cgroup: %s/%s = %s: %s", dir, w[i].file, w[i].val, strerror(-r));
			return r;
		}
	}
	snprintf(v, sizeof(v), "0");
	if ((r = write_file(dir, "cgroup.procs", v)) < 0) {
		snprintf(err, errlen, "cgroup: joining %s: %s", dir, strerror(-r));
		return r;
	}
	return 0;
}

/* "key N" out of a flat-keyed file such as memory.events; 0 when absent. */
static unsigned long long flat_key(const char *buf, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	return 0;
}

unsigned long long init_cg_oom_kills(const struct init_cg *cg, const char *leaf)
{
	char dir[INIT_PATH_MAX + 80], buf[512];

	if (!cg->root[0])
		return 0;
	leaf_path(cg, leaf, dir, sizeof(dir));
	if (read_file(dir, "memory.events", buf, sizeof(buf)) < 0)
		return 0;
	return flat_key(buf, "oom_kill");
}

void init_cg_make(const struct init_cg *cg, const char *leaf)
{
	char dir[INIT_PATH_MAX + 80];

	if (!cg->root[0])
		return;
	leaf_path(cg, leaf, dir, sizeof(dir));
	mkdir(dir, 0755);
}

void init_cg_remove(const struct init_cg *cg, const char *leaf)
{
	char dir[INIT_PATH_MAX + 80];

	if (!cg->root[0])
		return;
	if (leaf) {
		leaf_path(cg, leaf, dir, sizeof(dir));
		rmdir(dir);
	} else {
		rmdir(cg->root);
	}
}
