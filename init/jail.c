/*
 * The jail step: namespaces, an empty read-only root, an unprivileged uid with no capabilities,
 * no_new_privs, only the descriptors it needs, then the seccomp filter (init/seccomp.c).
 *
 * IMPLEMENTATION NOTES
 * The root: a 16 KiB tmpfs mounted over /dev in a new mount namespace (any directory would do;
 * /dev exists everywhere keel runs), holding one empty directory, JAIL_BIND, then made the root.
 * pivot_root cannot leave the initramfs (rootfs has no parent mount), which is where PID 1 runs
 * on the appliance; there the tmpfs is moved over / and chroot'ed into, as switch_root does.
 * Without CAP_SYS_CHROOT and CAP_SYS_ADMIN there is no way back either way.
 * Made per child this costs ~0.3-1 ms here: copying the host's mount table, and unmounting the
 * old root waits for an RCU grace period. So PID 1 makes it once (jail_prepare: a helper makes
 * the mount, IPC and network namespaces with the empty root and exits; the namespaces live on
 * through PID 1's descriptors) and each child enters a private copy of that template (a mount
 * or two), then a fresh UTS namespace. Creating a network namespace alone costs ~0.3 ms, and a
 * jailed process can create no socket, so the children share that one (it has only lo).
 * The bind (a directory) is cloned with open_tree() while the host's tree is still visible and
 * moved onto JAIL_BIND inside. Paths resolved through a descriptor opened before the jail would
 * not be confined by the new root ("../.." climbs the host's tree), which is why the store is
 * bound into the jail and opened there, not kept open.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init/jail.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif

#define ROOT_AT "/dev"

static int prepared_mnt = -1, prepared_ipc = -1, prepared_net = -1;


static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (n < errlen)
		snprintf(err + n, errlen - n, ": %s", strerror(-r));
	return r;
}

/* Makes an empty read-only tmpfs with an empty JAIL_BIND directory the root of the current
 * (new, private) mount namespace; tree >= 0 is bound at JAIL_BIND first (place). */
static int empty_root(const struct jail *j, int tree, char *err, size_t errlen);

/*
 * The helper of jail_prepare: new mount, IPC and (unless one was given) network namespaces,
 * the empty root made once, then held until the parent has opened its namespaces.
 */
static void prepare_helper(int say, int wait_fd)
{
	char c, err[200];

	c = unshare(CLONE_NEWNS | CLONE_NEWIPC | (prepared_net < 0 ? CLONE_NEWNET : 0)) < 0 ||
	    empty_root(NULL, -1, err, sizeof(err)) < 0 ? 'E' : 'K';
	if (write(say, &c, 1) != 1 || read(wait_fd, &c, 1) < 0)
		_exit(1);
	_exit(0);
}

static int open_ns(pid_t pid, const char *ns, int *fd, char *err, size_t errlen)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? fail(err, errlen, -errno, "jail: opening %s", path) : 0;
}

int jail_prepare(char *err, size_t errlen)
{
	int p[2], q[2], r = 0, status;
	char c = 0;
	pid_t pid;

	if (prepared_mnt >= 0)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return fail(err, errlen, -errno, "jail: pipe");
	if (pipe2(q, O_CLOEXEC) < 0) {
		r = fail(err, errlen, -errno, "jail: pipe");
		goto close_p;
	}
	pid = fork();
	if (pid < 0) {
		r = fail(err, errlen, -errno, "jail: fork");
		goto close_q;
	}
	if (pid == 0) {
		close(q[1]);
		prepare_helper(p[1], q[0]);
	}
	if (read(p[0], &c, 1) != 1 || c != 'K')
		r = fail(err, errlen, -EPERM, "jail: preparing the namespaces");
	if (!r && prepared_net < 0)
		r = open_ns(pid, "net", &prepared_net, err, errlen);
	if (!r)
		r = open_ns(pid, "ipc", &prepared_ipc, err, errlen);
	if (!r)
		r = open_ns(pid, "mnt", &prepared_mnt, err, errlen);
	if (r && prepared_mnt >= 0) {
		close(prepared_mnt);
		prepared_mnt = -1;
	}
	close(q[1]);
	q[1] = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
close_q:
	close(q[0]);
	if (q[1] >= 0)
		close(q[1]);
close_p:
	close(p[0]);
	close(p[1]);
	return r;
}

int jail_use_netns(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, -errno, "jail: network namespace %s", path);
	if (prepared_net >= 0)
		close(prepared_net);
	prepared_net = fd;
	return 0;
}

/* Binds the cloned directory tree at dst, then the read-only subdirectories over it. */
static int place_bind(const struct jail *j, int tree, const char *dst, char *err, size_t errlen)
{
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	struct stat st;
	char sub[256];

	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fail(err, errlen, -errno, "jail: binding %s", j->bind);
	if (mount(NULL, dst, NULL, flags | (j->bind_rw ? 0 : MS_RDONLY), NULL) < 0)
		return fail(err, errlen, -errno, "jail: remounting %s", j->bind);
	for (const char *const *s = j->bind_ro; s && *s; s++) {
		snprintf(sub, sizeof(sub), "%s/%s", dst, *s);
		if (stat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (mount(sub, sub, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, sub, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return fail(err, errlen, -errno, "jail: keeping %s/%s read-only", j->bind, *s);
	}
	return 0;
}

static int empty_root(const struct jail *j, int tree, char *err, size_t errlen)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, errlen, -errno, "jail: making mounts private");
	if (mount("keel-jail", ROOT_AT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,nr_inodes=16,mode=0755") < 0)
		return fail(err, errlen, -errno, "jail: mounting the empty root");
	if (mkdir(ROOT_AT JAIL_BIND, 0755) < 0)
		return fail(err, errlen, -errno, "jail: mkdir %s", JAIL_BIND);
	if (tree >= 0) {
		int r = place_bind(j, tree, ROOT_AT JAIL_BIND, err, errlen);

		if (r < 0)
			return r;
	}
	if (mount(NULL, ROOT_AT, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fail(err, errlen, -errno, "jail: making the root read-only");
	if (chdir(ROOT_AT) < 0)
		return fail(err, errlen, -errno, "jail: chdir");
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return fail(err, errlen, -errno, "jail: detaching the old root");
	} else if (errno != EINVAL || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0) {
		return fail(err, errlen, -errno, "jail: entering the empty root");
	}
	return chdir("/") < 0 ? fail(err, errlen, -errno, "jail: chdir /") : 0;
}

/*
 * New namespaces and the empty root with the bind in it: a private copy of the prepared
 * template (a mount or two: cheap, no unmount of the host's tree on the way), or all of it
 * made here when nothing was prepared (tools run by hand).
 */
static int enter_root(const struct jail *j, char *err, size_t errlen)
{
	int tree = -1, r = 0;

	if (j->bind) {   /* taken while the host's tree is still ours to see */
		tree = (int)syscall(SYS_open_tree, AT_FDCWD, j->bind, OPEN_TREE_CLONE | O_CLOEXEC);
		if (tree < 0)
			return fail(err, errlen, -errno, "jail: %s", j->bind);
	}
	if (prepared_mnt >= 0) {
		if (setns(prepared_mnt, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS | CLONE_NEWUTS) < 0 ||
		    setns(prepared_ipc, CLONE_NEWIPC) < 0)
			r = fail(err, errlen, -errno, "jail: entering the prepared namespaces");
		else if (setns(prepared_net, CLONE_NEWNET) < 0)
			r = fail(err, errlen, -errno, "jail: entering the prepared network namespace");
		else if (tree >= 0)
			r = place_bind(j, tree, JAIL_BIND, err, errlen);
		if (!r && chdir("/") < 0)
			r = fail(err, errlen, -errno, "jail: chdir /");
	} else {
		int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;

		if (prepared_net < 0)
			flags |= CLONE_NEWNET;
		if (unshare(flags) < 0)
			r = fail(err, errlen, -errno, "jail: new namespaces");
		else if (prepared_net >= 0 && setns(prepared_net, CLONE_NEWNET) < 0)
			r = fail(err, errlen, -errno, "jail: entering the prepared network namespace");
		else
			r = empty_root(j, tree, err, errlen);
	}
	if (tree >= 0)
		close(tree);
	return r;
}

static int drop_privileges(const struct jail *j, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	/* the bounding set first: dropping from it needs CAP_SETPCAP, gone with the uid */
	for (int cap = 0; cap < 64; cap++)   /* EINVAL: past the kernel's last capability */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL && cap > 0)
				break;
			return fail(err, errlen, -errno, "jail: dropping capability %d from the bounding set", cap);
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, -errno, "jail: clearing ambient capabilities");
	if (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0)
		return fail(err, errlen, -errno, "jail: gid %u", (unsigned)j->gid);
	if (setresuid(j->uid, j->uid, j->uid) < 0)
		return fail(err, errlen, -errno, "jail: uid %u", (unsigned)j->uid);
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return fail(err, errlen, -errno, "jail: clearing capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, -errno, "jail: no_new_privs");
	return 0;
}

/* Closes every descriptor above 2 that keep[] does not name. */
static int close_others(const struct jail *j, char *err, size_t errlen)
{
	unsigned lo = 3;

	for (;;) {
		unsigned next = ~0U;   /* the smallest kept fd >= lo */

		for (int i = 0; i < j->nkeep; i++)
			if (j->keep[i] >= (int)lo && (unsigned)j->keep[i] < next)
				next = (unsigned)j->keep[i];
		if (next > lo && syscall(SYS_close_range, lo, next - 1, 0) < 0)
			return fail(err, errlen, -errno, "jail: closing descriptors");
		if (next == ~0U)
			return 0;
		lo = next + 1;
	}
}

#ifdef KEEL_ATTACK_HOOKS
/*
 * Test builds only (build/keel-attack, never the product): KEEL_ATTACK=KIND:WHAT makes a jailed
 * process of KIND try what an attacker who owns it would: the VMM once its guest runs (its main
 * thread just confined), the listener right after its jail. A call that returns prints a line.
 * KEEL_ATTACK=jail:refuse makes jail_enter itself fail, as a host without namespaces would.
 */
static void attack(const char *kind)
{
	char *argv[] = { (char *)"sh", NULL };
	const char *a = getenv("KEEL_ATTACK");
	size_t n = strlen(kind);
	long r = -1;

	if (!a || strncmp(a, kind, n) || a[n] != ':')
		return;
	a += n + 1;
	errno = 0;
	if (!strcmp(a, "shadow"))
		r = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
	else if (!strcmp(a, "exec"))
		r = execve("/bin/sh", argv, argv + 1);
	else if (!strcmp(a, "socket"))
		r = socket(AF_INET, SOCK_STREAM, 0);
	else if (!strcmp(a, "ptrace"))
		r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
	else if (!strcmp(a, "mount"))
		r = mount("none", "/", "tmpfs", 0, NULL);
	else if (!strcmp(a, "kill1"))
		r = kill(1, SIGTERM);
	else if (!strcmp(a, "ref"))
		r = open(JAIL_BIND "/refs/demo", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	dprintf(2, "keel: attack %s: %s\n", a, r < 0 ? strerror(errno) : "succeeded");
}
#else
static void attack(const char *kind)
{
	(void)kind;
}
#endif

int jail_vmm_thread(int thread)
{
	int r = jail_thread(thread == 0 ? JAIL_FILTER_VMM_VCPU : JAIL_FILTER_VMM_IO);

	if (!r && thread != 0)
		attack("vmm");
	return r;
}

/*
 * Every object a snapshot uses may stay open (memory chunks mapped, a disk's chunks read from a
 * directory store: a 256 MiB root filesystem is 4096 chunks of 64 KiB), more than the kernel's
 * default hard limit for PID 1's children (4096). While still root the limit goes up to the
 * kernel's ceiling (fs.nr_open), else the soft limit to the hard one: the filter allows no
 * setrlimit later. The manifest bounds what is opened, not the guest.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long ceiling = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &ceiling) != 1)
			ceiling = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (ceiling > rl.rlim_max) {
		struct rlimit up = { ceiling, ceiling };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int jail_enter(const struct jail *j, char *err, size_t errlen)
{
	int r;

	if (!j->uid || !j->gid)
		return fail(err, errlen, -EINVAL, "jail: %s: uid and gid must not be 0", j->what);
#ifdef KEEL_ATTACK_HOOKS
	if (getenv("KEEL_ATTACK") && !strcmp(getenv("KEEL_ATTACK"), "jail:refuse"))
		return fail(err, errlen, -EPERM, "jail: %s: refused by the test hook", j->what);
#endif
	/* not dumpable: no core with guest memory in it, /proc/PID stays root's */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(err, errlen, -errno, "jail: not dumpable");
	raise_nofile();
	r = enter_root(j, err, errlen);
	if (!r)
		r = drop_privileges(j, err, errlen);
	if (!r)
		r = close_others(j, err, errlen);
	if (!r && (r = jail_thread(j->filter)) < 0)
		fail(err, errlen, r, "jail: installing the seccomp filter");
	if (!r && j->filter == JAIL_FILTER_LISTENER)
		attack("listener");
	return r;
}

int jail_listener(void *arg, const int *fds, int nfds, const char **store_dir, char *err, size_t errlen)
{
	static const char *const ro[] = { "refs", "logs", "floors", NULL };
	struct jail j = { .what = "listener", .uid = JAIL_UID_LISTENER, .gid = JAIL_UID_LISTENER,
			  .filter = JAIL_FILTER_LISTENER, .bind = *store_dir, .bind_rw = 1, .bind_ro = ro,
			  .keep = fds, .nkeep = nfds };
	int r;

	(void)arg;
	if (!*store_dir)   /* the network process without an update port: no store at all */
		j.bind_ro = NULL;
	r = jail_enter(&j, err, errlen);
	if (!r && *store_dir)
		*store_dir = JAIL_BIND;
	return r;
}

int jail_listener_store(const char *store_dir, char *err, size_t errlen)
{
	static const char *const mine[] = { "objects", "manifests" }, *const roots[] = { "refs", "logs", "floors" };
	int dfd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, r = 0;

	if (dfd < 0)
		return fail(err, errlen, -errno, "store %s", store_dir);
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && !r; i++)
		if ((mkdirat(dfd, roots[i], 0755) < 0 && errno != EEXIST) ||
		    fchownat(dfd, roots[i], 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
			r = fail(err, errlen, -errno, "store %s: %s/", store_dir, roots[i]);
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]) && !r; i++)
		if (fchownat(dfd, mine[i], JAIL_UID_LISTENER, JAIL_UID_LISTENER, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(dfd, mine[i], 0755, 0) < 0)
			r = fail(err, errlen, -errno, "store %s: giving %s/ to the listener", store_dir, mine[i]);
	/* the store's lock: the listener takes it through a read-only descriptor */
	if (!r) {
		fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			r = fail(err, errlen, -errno, "store %s: lock", store_dir);
		else
			close(fd);
	}
	close(dfd);
	return r;
}
