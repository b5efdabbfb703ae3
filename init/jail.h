/*
 * The jail (init/jail.c, init/seccomp.c): what a child that handles untrusted bytes (a sandbox's
 * VMM, the update listener) keeps once it has opened what it needs and before it reads any of
 * them. A leaf header (nothing of keel's included), so the tool commands `keel vm restore` and
 * `keel net listen` confine themselves the same way PID 1 confines its children.
 *
 * jail_enter, in this order: new mount, IPC, UTS and network namespaces (copies of those
 * jail_prepare made ahead of time, else fresh ones); an empty read-only tmpfs as the root, with
 * at most one host directory bound into it at JAIL_BIND; every capability dropped (bounding and
 * ambient sets too), groups dropped, uid and gid set to the jail's own; no_new_privs; every
 * descriptor not in keep[] closed; then the process's seccomp filter (kill on anything else).
 * It MUST run while the process has one thread: namespaces, credentials and capabilities are
 * per thread in Linux, and a thread started before would keep the host's.
 */
#ifndef KEEL_JAIL_H
#define KEEL_JAIL_H

#include <stddef.h>
#include <sys/types.h>

/* Filter tables (init/seccomp.c): one per process kind, narrower ones per thread. */
enum jail_filter {
	JAIL_FILTER_VMM,        /* a VMM while it restores: reads its snapshot, sets KVM up */
	JAIL_FILTER_VMM_VCPU,   /* a vCPU thread once the guest runs: KVM_RUN, device I/O */
	JAIL_FILTER_VMM_IO,     /* the VMM's main thread once the guest runs: console, interrupts */
	JAIL_FILTER_LISTENER,   /* the update listener: its packet socket, the store */
	JAIL_FILTER_NONE,       /* tests of the jail step alone */
};

/* Where the bound host path appears inside the jail. */
#define JAIL_BIND "/src"

/* The first of the jail uids: the listener's; sandbox slot i gets base + 1 + i. */
#define JAIL_UID_BASE 64500U
#define JAIL_UID_LISTENER JAIL_UID_BASE
#define JAIL_UID_SANDBOX(i) (JAIL_UID_BASE + 1U + (unsigned)(i))
#define JAIL_UID_BY_HAND (JAIL_UID_BASE + 400U)   /* `keel vm restore` run by hand */

struct jail {
	const char *what;             /* "sandbox web", "listener": for error lines */
	uid_t uid;                    /* the jail's own uid and gid; never 0 */
	gid_t gid;
	enum jail_filter filter;
	const char *bind;             /* a host directory seen at JAIL_BIND, or NULL */
	int bind_rw;                  /* the bind is writable (else read-only) */
	const char *const *bind_ro;   /* NULL-terminated subdirectories of bind kept read-only */
	const int *keep;              /* descriptors kept open besides 0, 1 and 2 */
	int nkeep;
};

/*
 * Prepares, in the calling process, what every later jail_enter of its children starts from:
 * a mount namespace whose root is the empty tmpfs, an IPC namespace and an empty network
 * namespace (making these per child costs ~0.5-1.5 ms here, entering them tens of µs).
 * Children forked after it inherit the descriptors. 0 or -errno (err says what).
 */
int jail_prepare(char *err, size_t errlen);

/* Uses the network namespace at path (e.g. /run/netns/NAME) as the prepared one. */
int jail_use_netns(const char *path, char *err, size_t errlen);

/* Confines the calling process; 0 or -errno with err naming the step that failed. */
int jail_enter(const struct jail *j, char *err, size_t errlen);

/*
 * The listener's jail: the store bound writable at JAIL_BIND but refs/, logs/ and floors/ in it
 * read-only (and root's), uid JAIL_UID_LISTENER. struct net_config's confine hook; *store_dir
 * becomes JAIL_BIND.
 */
int jail_listener(void *arg, const int *fds, int nfds, const char **store_dir, char *err, size_t errlen);
/*
 * Run as root before the listener starts: objects/ and manifests/ become the listener's (it
 * files and sweeps there), refs/, logs/, floors/ and the lock file exist and stay root's.
 */
int jail_listener_store(const char *store_dir, char *err, size_t errlen);

/* Adds the narrower filter f to the calling thread only (filters stack: both apply). */
int jail_thread(enum jail_filter f);
/* struct vmm_config's confine hook: thread 0 a vCPU, 1 the VMM's main thread (enum vmm_thread). */
int jail_vmm_thread(int thread);

/* The seccomp program for f in out (at most max instructions): its length, or -E2BIG. */
struct sock_filter;
int jail_filter_build(enum jail_filter f, struct sock_filter *out, size_t max);

#endif
