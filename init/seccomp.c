/*
 * Seccomp allow-lists, one readable table per process kind (and per thread where threads
 * differ), compiled to classic BPF here: what is not in the table kills the whole process
 * (SIGSYS). Written from what each kind really calls (strace of a restore, a run and a listener
 * under load), not from what it might.
 *
 * IMPLEMENTATION NOTES
 * Why keel compiles its own: a table is ~30 lines, the compiler ~80; Debian's libseccomp would be
 * one more source package to fetch, hash and build with musl for the same few instructions.
 * Program shape: check the architecture (x86-64 only; the x32 numbers, bit 30, are refused), then
 * a binary search on the number (emit_range) down to short chains of "nr == N ? body : next".
 * A body ends in RET on every path, so a rule never falls into the next and the accumulator
 * may be reused. Argument checks look at the low 32 bits
 * only: every argument checked is an int, a flag word or an ioctl request (unsigned int), which
 * the kernel truncates the same way. mmap and mprotect never get PROT_EXEC: keel is static and
 * maps nothing executable after start, so shellcode cannot be made runnable.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "init/jail.h"

enum { R_ALLOW, R_IN, R_CLEAR, R_SET, R_ERRNO };

struct rule {
	int nr;
	uint8_t op, arg, n;
	const uint32_t *v;
};

#define NV(...) (uint8_t)(sizeof((uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
#define ALLOW(name) { SYS_##name, R_ALLOW, 0, 0, NULL }
#define ARG_IN(name, a, ...) { SYS_##name, R_IN, a, NV(__VA_ARGS__), (const uint32_t[]){ __VA_ARGS__ } }
#define ARG_CLEAR(name, a, mask) { SYS_##name, R_CLEAR, a, 1, (const uint32_t[]){ mask } }
#define ARG_SET(name, a, mask) { SYS_##name, R_SET, a, 1, (const uint32_t[]){ mask } }
#define FAIL(name, e) { SYS_##name, R_ERRNO, 0, 1, (const uint32_t[]){ e } }
#define END { -1, 0, 0, 0, NULL }

/* Calls every kind makes: memory, threads' locks, signals it handles, time, leaving. */
#define BASE_RULES                                                                           \
	ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev), ALLOW(close), ALLOW(brk),    \
	ALLOW(munmap), ALLOW(mremap), ALLOW(madvise), ARG_CLEAR(mmap, 2, PROT_EXEC),         \
	ARG_CLEAR(mprotect, 2, PROT_EXEC), ALLOW(futex), ALLOW(rt_sigprocmask),              \
	ALLOW(rt_sigreturn), ALLOW(restart_syscall), ALLOW(clock_gettime),                   \
	ALLOW(clock_nanosleep), ALLOW(nanosleep), ALLOW(gettimeofday), ALLOW(sched_yield),   \
	ALLOW(getpid), ALLOW(gettid), ALLOW(getrandom), ALLOW(exit), ALLOW(exit_group),      \
	ARG_IN(tkill, 1, SIGUSR1, SIGABRT), FAIL(clone3, ENOSYS)

/* Opening for reading only: no write, create, truncate or append through any path. */
#define RDONLY_MASK (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)

/* ioctls of a vCPU and of the VM that the guest's run needs (exits, interrupts, stuck checks). */
#define KVM_RUN_IOCTLS KVM_IRQ_LINE, KVM_GET_MP_STATE, KVM_GET_REGS, KVM_GET_VCPU_EVENTS, TIOCGWINSZ

static const struct rule vmm_rules[] = {
	BASE_RULES,
	ALLOW(pread64), ALLOW(pwrite64), ALLOW(preadv), ALLOW(pwritev), ALLOW(fdatasync), ALLOW(fsync),
	ALLOW(fstat), ALLOW(newfstatat), ALLOW(lseek), ALLOW(fcntl), ALLOW(getdents64), ALLOW(poll),
	ALLOW(ppoll), ALLOW(eventfd2), ALLOW(sched_getaffinity), ALLOW(set_robust_list),
	ALLOW(set_tid_address), ALLOW(rt_sigaction), ALLOW(sigaltstack),
	ALLOW(seccomp),   /* only ever narrows: each thread adds its own filter before the guest runs */
	ARG_CLEAR(open, 1, RDONLY_MASK), ARG_CLEAR(openat, 2, RDONLY_MASK),
	ARG_SET(clone, 0, CLONE_VM | CLONE_THREAD),   /* threads only: no fork */
	ARG_IN(ioctl, 1, KVM_RUN, KVM_RUN_IOCTLS, KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM,
	       KVM_GET_VCPU_MMAP_SIZE, KVM_GET_MSR_INDEX_LIST, KVM_GET_SUPPORTED_CPUID, KVM_SET_TSS_ADDR,
	       KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_USER_MEMORY_REGION,
	       KVM_CREATE_VCPU, KVM_SET_CPUID2, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ, KVM_SET_MSRS,
	       KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_FPU, KVM_SET_XSAVE, KVM_SET_XCRS, KVM_SET_LAPIC,
	       KVM_SET_MP_STATE, KVM_SET_VCPU_EVENTS, KVM_SET_DEBUGREGS, KVM_SET_IRQCHIP, KVM_SET_PIT2,
	       KVM_SET_CLOCK, KVM_KVMCLOCK_CTRL),
	END,
};

/* A vCPU thread once its guest runs: KVM_RUN and the device work its exits do. */
static const struct rule vcpu_rules[] = {
	BASE_RULES,
	ALLOW(pread64), ALLOW(pwrite64), ALLOW(preadv), ALLOW(pwritev), ALLOW(fdatasync), ALLOW(fsync),
	ARG_IN(ioctl, 1, KVM_RUN, KVM_RUN_IOCTLS),
	END,
};

/* The VMM's main thread once the guest runs: console input, interrupts, watching, teardown. */
static const struct rule io_rules[] = {
	BASE_RULES,
	ALLOW(poll), ALLOW(ppoll),
	ARG_IN(ioctl, 1, KVM_RUN_IOCTLS),
	END,
};

/* The update listener: frames on its packet socket (no new socket), the store in its jail. */
static const struct rule listener_rules[] = {
	BASE_RULES,
	ALLOW(poll), ALLOW(ppoll), ALLOW(recvmsg), ALLOW(recvfrom), ALLOW(sendmsg), ALLOW(sendto),
	ALLOW(pread64), ALLOW(pwrite64), ALLOW(fsync), ALLOW(fdatasync), ALLOW(fstat), ALLOW(newfstatat),
	ALLOW(lseek), ALLOW(fcntl), ALLOW(getdents64), ALLOW(statfs), ALLOW(fstatfs), ALLOW(faccessat),
	ALLOW(flock), ALLOW(open), ALLOW(openat), ALLOW(renameat), ALLOW(unlinkat), ALLOW(mkdirat),
	ALLOW(ftruncate), ALLOW(sched_getaffinity), ALLOW(set_robust_list), ALLOW(rt_sigaction),
	ARG_SET(clone, 0, CLONE_VM | CLONE_THREAD),   /* BLAKE3 hashes big objects on threads */
	ARG_IN(ioctl, 1, TIOCGWINSZ),
	END,
};

static const struct rule none_rules[] = { BASE_RULES, END };

static const struct rule *const tables[] = {
	[JAIL_FILTER_VMM] = vmm_rules,
	[JAIL_FILTER_VMM_VCPU] = vcpu_rules,
	[JAIL_FILTER_VMM_IO] = io_rules,
	[JAIL_FILTER_LISTENER] = listener_rules,
	[JAIL_FILTER_NONE] = none_rules,
};

#define ARG_LO(i) (uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i))
#define KILL SECCOMP_RET_KILL_PROCESS

struct prog {
	struct sock_filter *p;
	size_t n, max;
};

static void emit(struct prog *g, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (g->n < g->max)
		g->p[g->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
	g->n++;
}

static size_t body_len(const struct rule *r)
{
	switch (r->op) {
	case R_IN: return 3U + r->n;     /* load, n compares, kill, allow */
	case R_CLEAR: return 4;          /* load, test, kill, allow */
	case R_SET: return 5;            /* load, and, compare, kill, allow */
	default: return 1;
	}
}

static void emit_rule(struct prog *g, const struct rule *r)
{
	emit(g, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)r->nr, 0, (uint8_t)body_len(r));
	if (r->op == R_ALLOW || r->op == R_ERRNO) {
		emit(g, BPF_RET | BPF_K, r->op == R_ALLOW ? SECCOMP_RET_ALLOW
							  : SECCOMP_RET_ERRNO | (r->v[0] & SECCOMP_RET_DATA), 0, 0);
		return;
	}
	/* an argument test: it jumps over the kill to the allow, or falls into the kill */
	emit(g, BPF_LD | BPF_W | BPF_ABS, ARG_LO(r->arg), 0, 0);
	switch (r->op) {
	case R_IN:
		for (int i = 0; i < r->n; i++)
			emit(g, BPF_JMP | BPF_JEQ | BPF_K, r->v[i], (uint8_t)(r->n - i), 0);
		break;
	case R_CLEAR:
		emit(g, BPF_JMP | BPF_JSET | BPF_K, r->v[0], 0, 1);
		break;
	case R_SET:
		emit(g, BPF_ALU | BPF_AND | BPF_K, r->v[0], 0, 0);
		emit(g, BPF_JMP | BPF_JEQ | BPF_K, r->v[0], 1, 0);
		break;
	}
	emit(g, BPF_RET | BPF_K, KILL, 0, 0);
	emit(g, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
}

/*
 * Rules r[0..n) sorted by number: a binary search on the number down to runs of a few, each a
 * chain of "nr == N ? body : next" ending in kill. The kernel runs a new filter once per
 * syscall number when it is installed (to cache the always-allowed ones), so the search keeps
 * installing cheap as well as every call.
 */
static void emit_range(struct prog *g, const struct rule *const *r, size_t n)
{
	size_t mid, hop;

	if (n <= 4) {
		for (size_t i = 0; i < n; i++)
			emit_rule(g, r[i]);
		emit(g, BPF_RET | BPF_K, KILL, 0, 0);
		return;
	}
	mid = n / 2;
	/* nr >= r[mid] ? (jump over the lower half: a long jump, halves can pass 255) : lower half */
	emit(g, BPF_JMP | BPF_JGE | BPF_K, (uint32_t)r[mid]->nr, 0, 1);
	hop = g->n;
	emit(g, BPF_JMP | BPF_JA, 0, 0, 0);
	emit_range(g, r, mid);
	if (hop < g->max)
		g->p[hop].k = (uint32_t)(g->n - hop - 1);
	emit_range(g, r + mid, n - mid);
}

static int by_nr(const void *a, const void *b)
{
	const struct rule *x = *(const struct rule *const *)a, *y = *(const struct rule *const *)b;

	return (x->nr > y->nr) - (x->nr < y->nr);
}

#define RULES_MAX 128

int jail_filter_build(enum jail_filter f, struct sock_filter *out, size_t max)
{
	const struct rule *sorted[RULES_MAX];
	struct prog g = { out, 0, max };
	size_t n = 0;

	if ((unsigned)f >= sizeof(tables) / sizeof(tables[0]))
		return -EINVAL;
	for (const struct rule *r = tables[f]; r->nr >= 0; r++) {
		if (n == RULES_MAX)
			return -E2BIG;
		sorted[n++] = r;
	}
	qsort(sorted, n, sizeof(sorted[0]), by_nr);
	emit(&g, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(&g, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	emit(&g, BPF_RET | BPF_K, KILL, 0, 0);
	emit(&g, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
	emit(&g, BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 1);   /* the x32 ABI */
	emit(&g, BPF_RET | BPF_K, KILL, 0, 0);
	emit_range(&g, sorted, n);
	return g.n <= max ? (int)g.n : -E2BIG;
}

#define FILTER_MAX 512

/* no_new_privs must be set first (jail_enter does it before it installs the process's filter). */
int jail_thread(enum jail_filter f)
{
	struct sock_filter insns[FILTER_MAX];
	struct sock_fprog prog;
	int n = jail_filter_build(f, insns, FILTER_MAX);

	if (n < 0)
		return n;
	prog.len = (unsigned short)n;
	prog.filter = insns;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

