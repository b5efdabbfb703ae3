/*
 * The PID-1 loop: starts every autostart sandbox in parallel (one child
 * process each), reaps every child and orphan, restarts with backoff, rolls
 * back to an older snapshot when one fails to restore or never gets
 * healthy, handles init signals and the power button, pets the watchdog.
 * Nothing here exits or
 * aborts: each failure is logged and the loop goes on.
 *
 * IMPLEMENTATION NOTES
 * - Signals are blocked and read from a signalfd, but each also has a
 *   (never run) handler: the kernel drops signals to PID 1 whose
 *   disposition is SIG_DFL.
 * - A sandbox child is its own session (setsid), so stopping it reaches
 *   every process it started: kill(-pid, ...).
 * - Child -> PID 1 protocol on the ready pipe (fd 3 in the child): lines
 *   "restored", "healthy", and, from our own pre-exec verification,
 *   "corrupt WHAT" or "refused WHAT" (a signature nobody trusted vouches for),
 *   "limits WHAT" (the cgroup it entered), "net WHAT" (its link), "board: WHAT" (board.conf asks
 *   for more than the manifest: no snapshot is to blame) and "jail: WHAT" /
 *   "cgroup: WHAT" (the host refused the confinement).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init/jail.h"
#include "init/pid1_int.h"
#include "net/net.h"
#include "vmm/vmm.h"

#define READY_FD 3
#define INIT_MAX_POWER_KEYS 4
#define BACKOFF_CAP_MS 30000

enum sb_state {
	SB_OFF,          /* not running, not to be started */
	SB_STARTING,     /* child spawned, waiting for "restored" */
	SB_RESTORED,     /* waiting for "healthy" */
	SB_HEALTHY,
	SB_BACKOFF,      /* crashed; restart at deadline */
	SB_KILLING,      /* snapshot failed (timeout); killed, waiting for its exit to roll back */
	SB_STOPPING,     /* asked to stop (shutdown, reload); SIGKILL at deadline */
	SB_FAILED,       /* gave up */
};

struct sandbox {
	struct init_sandbox_conf conf;
	enum sb_state st;
	pid_t pid;
	int rfd;
	char rbuf[256];
	size_t rlen;
	struct init_cand cands[INIT_MAX_CANDIDATES];
	int ncands, cur;
	int last_resort;             /* every candidate was recorded failed: trying them anyway */
	unsigned restarts;
	uint64_t spawned_ms, healthy_ms, deadline_ms;
	char why[256];               /* what the child reported before failing */
	char limits[160];            /* the last "limits" line logged */
	char net[160];               /* the last "net" line logged */
	int link[2];                 /* nat link: [0] keel's network process, [1] the VMM; -1: none */
	unsigned long long ooms;     /* its cgroup's oom_kill count, as last seen */
	struct init_console con;     /* its stdout and stderr (console.c) */
	int start_after_stop;        /* reload: start again (newest snapshot) once stopped */
};

struct init {
	struct init_board board;
	char board_path[INIT_PATH_MAX];
	int boot;
	struct init_stores st;
	struct sandbox sb[CONFIG_MAX_SANDBOXES];
	int nsb;
	int sigfd;
	int wdt_fd;
	int pwr_fd[INIT_MAX_POWER_KEYS];  /* input devices that send KEY_POWER (boot mode only) */
	int npwr;
	unsigned wdt_interval_s;
	uint64_t wdt_next_ms;
	int shutdown;                /* 0, or RB_POWER_OFF / RB_AUTOBOOT */
	uint64_t shutdown_deadline_ms;
	int killed_all;
	uint64_t t0_ms;
	pid_t net_pid;               /* the update listener's child, 0 when not running */
	int net_stop_fd;             /* write end: closing it asks the listener to stop */
	unsigned net_restarts;
	uint64_t net_restart_ms;     /* 0: no restart pending */
	uint64_t net_started_ms;     /* when the running listener was forked */
	int net_ctl_fd;              /* its activation requests (net/activate.c), -1: none */
	int net_fwd_only;            /* it runs for the sandboxes' links alone: no update port */
	struct init_cg cg;           /* cg.root "": no limits enforced */
	char console_dir[INIT_PATH_MAX];  /* "" : rings are kept in memory only */
	uint64_t console_save_ms;    /* next time dirty rings are written there */
};

/* A sandbox's cgroup below in->cg.root. */
static void cg_leaf(const struct sandbox *s, char *buf, size_t len)
{
	snprintf(buf, len, "sandbox-%s", s->conf.name);
}

static const char *short_id(const uint8_t id[SNAP_HASH_LEN], char buf[SNAP_HEX_LEN + 1])
{
	snap_hex(id, buf);
	buf[12] = 0;
	return buf;
}

static const char *where(const struct init_cand *c)
{
	return c->in_image ? "image" : "data store";
}

static void sig_noop(int sig)
{
	(void)sig;
}

static const int init_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR };

static int signals_setup(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_noop;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(init_signals) / sizeof(init_signals[0]); i++) {
		sigaction(init_signals[i], &sa, NULL);
		sigaddset(&set, init_signals[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* ---- starting a sandbox ---- */

_Static_assert(VMM_THREAD_VCPU == 0 && VMM_THREAD_IO == 1, "jail_vmm_thread numbers the threads so");

/* The VMM's one-line reports about what a guest did wrong, as `keel vm` prints them. */
static void vm_warn(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "keel: vm: %s\n", line);
}

/* In the child: verify (when asked), then run the VMM here or exec the runner. Never returns. */
/*
 * The link a sandbox's guest gets: its manifest's policy-net (whether the snapshot has a NIC)
 * narrowed by board.conf. 0 and *fd the backend descriptor, or -1 (no NIC, or a NIC without
 * link), desc saying which; -EPERM (desc says why) when board.conf asks for more than the manifest.
 */
static int net_for(const struct sandbox *s, const struct init_policy *p, int *fd, char *desc, size_t len)
{
	size_t n;

	*fd = -1;
	if (!p->net) {
		if (s->conf.net == INIT_NET_NAT || s->conf.net == INIT_NET_BRIDGE || s->conf.nforward || s->conf.nallow) {
			snprintf(desc, len, "board.conf sandbox.%s.%s is wider than the manifest's policy-net off "
				 "(the snapshot has no NIC)", s->conf.name,
				 s->conf.nforward ? "forward" : s->conf.nallow ? "allow" :
				 s->conf.net == INIT_NET_NAT ? "net = nat" : "net = bridge");
			return -EPERM;
		}
		snprintf(desc, len, "none (policy-net off: no NIC)");
		return 0;
	}
	if (s->conf.net == INIT_NET_NONE) {
		snprintf(desc, len, "none (board.conf: its NIC has no link)");
		return 0;
	}
	if (s->link[1] < 0) {
		snprintf(desc, len, "none (no network process: board.conf names no nic; its NIC has no link)");
		return 0;
	}
	*fd = s->link[1];
	if (s->conf.net == INIT_NET_BRIDGE) {
		snprintf(desc, len, "bridge: a station of the board NIC's LAN (its address is the LAN's to give)");
		return 0;
	}
	n = (size_t)snprintf(desc, len, "nat: 10.0.2.15/24 via 10.0.2.2 (DHCP), %s", s->conf.nforward ? "" : "nothing forwarded");
	for (unsigned f = 0; f < s->conf.nforward && n < len; f++)
		n += (size_t)snprintf(desc + n, len - n, "%sport %u -> %u", f ? ", " : "forwards ", s->conf.forward[f].outer,
				      s->conf.forward[f].inner);
	return 0;
}

static void child_main(struct init *in, struct sandbox *s, int wfd, int cfd)
{
	const struct init_cand *c = &s->cands[s->cur];
	char hex[SNAP_HEX_LEN + 1], fdarg[12], what[160];
	char *argv[18];
	int argc = 0, nic = 0, nic_fd = -1;
	sigset_t none;

	sigemptyset(&none);
	for (size_t i = 0; i < sizeof(init_signals) / sizeof(init_signals[0]); i++)
		signal(init_signals[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	/* its own console stream: PID 1 prefixes, escapes and rate-limits it */
	if (dup2(cfd, 1) < 0 || dup2(cfd, 2) < 0)
		_exit(127);
	close(cfd);
	/* The sandbox must not outlive a dev-mode init that is not PID 1. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (wfd != READY_FD) {
		if (dup2(wfd, READY_FD) < 0)
			_exit(127);
		close(wfd);
	} else {
		fcntl(READY_FD, F_SETFD, 0);
	}
	{
		struct init_policy pol;
		struct init_limits lim;
		char leaf[80], lines[200];
		int rc = init_verify_snapshot(&in->st, c, in->board.verify == INIT_VERIFY_FULL, what,
					      sizeof(what), &pol);
		if (rc == -ENOKEY || rc == -EKEYREJECTED || rc == -EDOM || rc == -EPERM) {
			dprintf(READY_FD, "refused %s\n", what);
			_exit(1);
		}
		if (rc < 0) {
			dprintf(READY_FD, "corrupt %s (%s)\n", what, strerror(-rc));
			_exit(1);
		}
		/* limits before any guest byte is read: the whole run is inside them */
		if (init_limits_for(&s->conf, &pol, &lim, lines, sizeof(lines)) < 0) {
			dprintf(READY_FD, "board: %s\n", lines);
			_exit(1);
		}
		if (in->cg.root[0]) {
			cg_leaf(s, leaf, sizeof(leaf));
			if (init_cg_enter(&in->cg, leaf, &lim, lines, sizeof(lines)) < 0) {
				dprintf(READY_FD, "%s\n", lines);
				_exit(1);
			}
			init_limits_describe(&lim, lines, sizeof(lines));
			dprintf(READY_FD, "limits %s\n", lines);
		}
		if (net_for(s, &pol, &nic_fd, what, sizeof(what)) < 0) {
			dprintf(READY_FD, "board: %s\n", what);
			_exit(1);
		}
		nic = pol.net;
		dprintf(READY_FD, "net %s\n", what);
	}
	snap_hex(c->id, hex);
	if (!strcmp(in->board.runner, "/proc/self/exe")) {
		/*
		 * The runner is keel itself: run the VMM in this child through the library entry
		 * `keel vm restore` also uses, instead of exec'ing a copy (an exec costs ~0.5 ms of
		 * CPU here, per sandbox). Nothing of PID 1 is kept but the console, the ready pipe
		 * and what the VMM reads (the jail closes the rest); its unwritten stdio is dropped.
		 */
		/* no sandbox reads the operator's keyboard */
		struct vmm_config vc = { .out_fd = 1, .in_fd = -1, .ready_fd = READY_FD, .warn = vm_warn,
					 .confine = jail_vmm_thread };
		struct jail j = { .what = s->conf.name, .uid = JAIL_UID_SANDBOX(s - in->sb),
				  .gid = JAIL_UID_SANDBOX(s - in->sb), .filter = JAIL_FILTER_VMM };
		struct snap_store *ds = NULL;
		struct snap_source src;
		int keep[3 + 8], nkeep = 0;
		char err[256];
		int r;

		__fpurge(stdout);
		__fpurge(stderr);
		signal(SIGPIPE, SIG_IGN);
		if (s->conf.has_health_marker)
			vc.health_marker = s->conf.health_marker;
		/* the jail: the image's descriptors kept, or the data store bound and opened inside */
		keep[nkeep++] = READY_FD;
		r = vmm_kvm_preopen();
		if (r < 0) {
			dprintf(READY_FD, "/dev/kvm: %s\n", strerror(-r));
			_exit(1);
		}
		keep[nkeep++] = r;
		vc.nic = nic;
		vc.net_fd = nic_fd;
		if (nic_fd >= 0)
			keep[nkeep++] = nic_fd;
		if (c->in_image)
			nkeep += snap_image_fds(in->st.image, keep + nkeep, 8);
		else
			j.bind = in->st.data_store;
		j.keep = keep;
		j.nkeep = nkeep;
		if (jail_enter(&j, err, sizeof(err)) < 0) {
			dprintf(READY_FD, "%s\n", err);
			_exit(1);
		}
		if (c->in_image) {
			snap_image_source(in->st.image, &src);
		} else if ((r = snap_store_open(JAIL_BIND, &ds)) < 0) {
			dprintf(READY_FD, "data store in the jail: %s\n", strerror(-r));
			_exit(1);
		} else {
			snap_store_source(ds, &src);
		}
		r = vmm_restore_run(&src, hex, &vc, NULL, err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "keel vm restore: %s\n", err);   /* as the runner `keel vm restore` says it */
		_exit(r < 0 ? 1 : 0);
	}
	/* Another runner gets the command line of `keel vm restore`. */
	snprintf(fdarg, sizeof(fdarg), "%d", READY_FD);
	argv[argc++] = (char *)"keel";
	argv[argc++] = (char *)"vm";
	argv[argc++] = (char *)"restore";
	argv[argc++] = c->in_image ? (char *)"--image" : (char *)"--store";
	argv[argc++] = c->in_image ? in->st.image_path : in->st.data_store;
	argv[argc++] = hex;
	argv[argc++] = (char *)"--ready-fd";
	argv[argc++] = fdarg;
	if (s->conf.has_health_marker) {
		argv[argc++] = (char *)"--health";
		argv[argc++] = s->conf.health_marker;
	}
	if (nic_fd >= 0 && dup2(nic_fd, READY_FD + 1) == READY_FD + 1) {
		argv[argc++] = (char *)"--nic";
		argv[argc++] = (char *)"fd:4";
	}
	argv[argc] = NULL;
	execv(in->board.runner, argv);
	dprintf(READY_FD, "exec %s: %s\n", in->board.runner, strerror(errno));
	_exit(127);
}

static void spawn(struct init *in, struct sandbox *s)
{
	char idb[SNAP_HEX_LEN + 1];
	int p[2], cp[2];
	pid_t pid;

	s->why[0] = 0;
	s->rlen = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		init_log("sandbox %s: pipe: %s; retrying", s->conf.name, strerror(errno));
		goto retry;
	}
	if (pipe2(cp, O_CLOEXEC) < 0) {
		init_log("sandbox %s: pipe: %s; retrying", s->conf.name, strerror(errno));
		close(p[0]);
		close(p[1]);
		goto retry;
	}
	pid = fork();
	if (pid < 0) {
		init_log("sandbox %s: fork: %s; retrying", s->conf.name, strerror(errno));
		close(p[0]);
		close(p[1]);
		close(cp[0]);
		close(cp[1]);
		goto retry;
	}
	if (pid == 0) {
		close(p[0]);
		close(cp[0]);
		child_main(in, s, p[1], cp[1]);
	}
	setpgid(pid, pid);
	close(p[1]);
	close(cp[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(cp[0], F_SETFL, O_NONBLOCK);
	init_console_open(&s->con, s->conf.name, cp[0], in->board.console_rate, init_now_ms());
	s->pid = pid;
	s->rfd = p[0];
	s->st = SB_STARTING;
	s->spawned_ms = init_now_ms();
	s->deadline_ms = s->spawned_ms + 1000ULL * (s->conf.health_timeout_s ? s->conf.health_timeout_s
									    : CONFIG_HEALTH_TIMEOUT_S);
	init_log("sandbox %s: restoring %s from the %s (pid %d)", s->conf.name,
		 short_id(s->cands[s->cur].id, idb), where(&s->cands[s->cur]), (int)pid);
	return;
retry:
	s->st = SB_BACKOFF;
	s->deadline_ms = init_now_ms() + 1000;
}

/* Next candidate not recorded as failed, from cur+1 on; -1 when none. */
static int next_candidate(struct init *in, struct sandbox *s, int from)
{
	for (int i = from; i < s->ncands; i++)
		if (s->last_resort || !init_failed_has(&in->st, s->cands[i].id))
			return i;
	return -1;
}

/* Starts a sandbox from its newest usable snapshot. */
static void start(struct init *in, struct sandbox *s)
{
	int n;

	if (in->st.nkeys == 0 && !in->st.insecure_unsigned) {
		/* nobody can vouch for any snapshot; recording failures would only poison the list */
		init_log("sandbox %s: not started: no trusted keys (board.conf insecure-unsigned = yes allows unsigned snapshots)",
			 s->conf.name);
		s->st = SB_FAILED;
		return;
	}
	n = init_candidates(&in->st, s->conf.name, s->cands, INIT_MAX_CANDIDATES);
	s->restarts = 0;
	s->last_resort = 0;
	s->ncands = n > 0 ? n : 0;
	if (n <= 0) {
		init_log("sandbox %s: no snapshot named '%s' in the data store or the image", s->conf.name,
			 s->conf.name);
		s->st = SB_FAILED;
		return;
	}
	s->cur = next_candidate(in, s, 0);
	if (s->cur < 0) {
		/* Every snapshot failed before; a record is no proof it cannot work now. */
		init_log("sandbox %s: every snapshot is recorded as failed; trying them again", s->conf.name);
		s->last_resort = 1;
		s->cur = 0;
	}
	spawn(in, s);
}

/* The current snapshot failed (restore error, crash before healthy, timeout): roll back. */
static void snapshot_failed(struct init *in, struct sandbox *s, const char *why)
{
	struct init_cand *c = &s->cands[s->cur];
	char idb[SNAP_HEX_LEN + 1];
	int next;

	init_log("sandbox %s: snapshot %s (%s) failed: %s", s->conf.name, short_id(c->id, idb), where(c), why);
	if (!s->last_resort)
		init_failed_record(&in->st, c->id, why);
	next = next_candidate(in, s, s->cur + 1);
	if (next < 0) {
		init_log("sandbox %s: no older snapshot to roll back to; giving up", s->conf.name);
		s->st = SB_FAILED;
		return;
	}
	init_log("sandbox %s: rolling back to %s (%s)", s->conf.name, short_id(s->cands[next].id, idb),
		 where(&s->cands[next]));
	s->cur = next;
	spawn(in, s);
}

static void stop(struct sandbox *s, uint64_t deadline_ms)
{
	if (s->pid > 0) {
		kill(-s->pid, SIGTERM);
		kill(s->pid, SIGTERM);
		s->st = SB_STOPPING;
		s->deadline_ms = deadline_ms;
	} else {
		s->st = SB_OFF;
	}
}

/* ---- events ---- */

static void became_healthy(struct sandbox *s)
{
	char idb[SNAP_HEX_LEN + 1];

	s->st = SB_HEALTHY;
	s->healthy_ms = init_now_ms();
	init_timeline("sandbox %s healthy (%s, %llu ms after spawn)", s->conf.name,
		      short_id(s->cands[s->cur].id, idb), (unsigned long long)(s->healthy_ms - s->spawned_ms));
}

static void ready_line(struct sandbox *s, const char *line)
{
	char idb[SNAP_HEX_LEN + 1];

	if (!strncmp(line, "limits ", 7)) {
		/* once per change, not on every restart */
		if (strcmp(s->limits, line + 7)) {
			snprintf(s->limits, sizeof(s->limits), "%s", line + 7);
			init_log("sandbox %s: limits %s", s->conf.name, s->limits);
		}
	} else if (!strncmp(line, "net ", 4)) {
		if (strcmp(s->net, line + 4)) {
			snprintf(s->net, sizeof(s->net), "%s", line + 4);
			init_log("sandbox %s: net %s", s->conf.name, s->net);
		}
	} else if (!strcmp(line, "restored")) {
		if (s->st != SB_STARTING)
			return;
		s->st = SB_RESTORED;
		init_timeline("sandbox %s restored (%s from the %s, %llu ms after spawn)", s->conf.name,
			      short_id(s->cands[s->cur].id, idb), where(&s->cands[s->cur]),
			      (unsigned long long)(init_now_ms() - s->spawned_ms));
		if (s->conf.health_timeout_s == 0)
			became_healthy(s);
	} else if (!strcmp(line, "healthy")) {
		if (s->st == SB_STARTING || s->st == SB_RESTORED)
			became_healthy(s);
	} else {
		snprintf(s->why, sizeof(s->why), "%.200s", line);
		if (strncmp(line, "board: ", 7))   /* said once, when it exits */
			init_log("sandbox %s: %s", s->conf.name, line);
	}
}

static void ready_read(struct sandbox *s)
{
	for (;;) {
		ssize_t n = read(s->rfd, s->rbuf + s->rlen, sizeof(s->rbuf) - 1 - s->rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(s->rfd);
			s->rfd = -1;
			return;
		}
		s->rlen += (size_t)n;
		s->rbuf[s->rlen] = 0;
		char *nl;
		while ((nl = memchr(s->rbuf, '\n', s->rlen))) {
			*nl = 0;
			ready_line(s, s->rbuf);
			s->rlen -= (size_t)(nl + 1 - s->rbuf);
			memmove(s->rbuf, nl + 1, s->rlen);
		}
		/* A line longer than the buffer is no protocol line: drop it. */
		if (s->rlen == sizeof(s->rbuf) - 1)
			s->rlen = 0;
	}
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(buf, len, "killed by signal %d (a system call its jail forbids)", SIGSYS);
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status 0x%x", status);
}

/* The host refused the confinement (the child's "jail:" or "cgroup:"): no snapshot is to blame. */
static int host_refused(const char *why)
{
	return !strncmp(why, "jail: ", 6) || !strncmp(why, "cgroup: ", 8);
}

static void child_exited(struct init *in, struct sandbox *s, int status)
{
	char st[160], why[400], leaf[80];
	unsigned long long ooms;

	if (s->rfd >= 0) {
		ready_read(s);
		if (s->rfd >= 0) {
			close(s->rfd);
			s->rfd = -1;
		}
	}
	/* its last words first (what it printed before dying), then why it died */
	init_console_drain(&s->con, init_now_ms());
	init_console_close(&s->con, init_now_ms());
	s->pid = 0;
	describe_status(status, st, sizeof(st));
	cg_leaf(s, leaf, sizeof(leaf));
	ooms = init_cg_oom_kills(&in->cg, leaf);
	if (ooms > s->ooms && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		snprintf(st + strlen(st), sizeof(st) - strlen(st), ": out of memory, its cgroup killed as a unit (%s)",
			 s->limits[0] ? s->limits : "limits unknown");
	s->ooms = ooms;
	switch (s->st) {
	case SB_STOPPING:
		init_log("sandbox %s: stopped (%s)", s->conf.name, st);
		s->st = SB_OFF;
		if (s->start_after_stop && !in->shutdown) {
			s->start_after_stop = 0;
			start(in, s);
		}
		return;
	case SB_STARTING:
		if (!strncmp(s->why, "board: ", 7)) {
			/* board.conf widens the manifest's policy: fixed by editing it and SIGHUP */
			init_log("sandbox %s: not started: %s", s->conf.name, s->why + 7);
			s->st = SB_FAILED;
			return;
		}
		if (host_refused(s->why)) {
			/* the host refused the confinement: no snapshot is to blame, none is recorded */
			init_log("sandbox %s: not started: %s; retrying in %u ms", s->conf.name, s->why,
				 in->board.restart_backoff_ms * 10);
			s->st = SB_BACKOFF;
			s->deadline_ms = init_now_ms() + 10ULL * in->board.restart_backoff_ms;
			return;
		}
		/* fall through */
	case SB_RESTORED:
		snprintf(why, sizeof(why), "%s before it was healthy%s%s", st, s->why[0] ? ": " : "", s->why);
		snapshot_failed(in, s, why);
		return;
	case SB_KILLING:
		/* Recorded when the timeout fired; now roll back. */
		snapshot_failed(in, s, s->why[0] ? s->why : "not healthy in time");
		return;
	case SB_HEALTHY:
		if (s->restarts >= s->conf.restart_limit) {
			init_log("sandbox %s: died (%s) after %u restarts; giving up (restart limit %u)",
				 s->conf.name, st, s->restarts, s->conf.restart_limit);
			s->st = SB_FAILED;
			return;
		}
		{
			uint64_t delay = s->restarts < 16 ? (uint64_t)in->board.restart_backoff_ms << s->restarts
							   : BACKOFF_CAP_MS;
			if (delay > BACKOFF_CAP_MS)
				delay = BACKOFF_CAP_MS;
			s->restarts++;
			init_log("sandbox %s: died (%s); restart %u/%u in %llu ms", s->conf.name, st, s->restarts,
				 s->conf.restart_limit, (unsigned long long)delay);
			s->st = SB_BACKOFF;
			s->deadline_ms = init_now_ms() + delay;
		}
		return;
	default:
		init_log("sandbox %s: child exited (%s)", s->conf.name, st);
		return;
	}
}

/* ---- the update listener (net_listen in a child of its own) ---- */

#if CONFIG_NET
static void net_log_line(void *arg, const char *line)
{
	(void)arg;
	init_log("listener: %s", line);
}

static void net_ready(void *arg, const char *ip, uint16_t port)
{
	(void)arg;
	init_timeline("listener ready on %s port %u", ip, (unsigned)port);
}

/* The jailed listener keeps PID 1's log descriptors besides what net_listen hands over. */
static int net_confine(void *arg, const int *fds, int nfds, const char **store_dir, char *err, size_t errlen)
{
	int keep[8 + CONFIG_MAX_SANDBOXES], n = 0;

	for (int i = 0; i < nfds && n < 6 + CONFIG_MAX_SANDBOXES; i++)
		keep[n++] = fds[i];
	n += init_log_fds(keep + n);
	return jail_listener(arg, keep, n, store_dir, err, errlen);
}

struct image_ids {
	uint8_t (*id)[SNAP_HASH_LEN];
	size_t n, cap;
};

static int image_id(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	struct image_ids *l = arg;

	(void)off;
	(void)len;
	if (kind != SNAP_KIND_OBJECT)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		void *p = realloc(l->id, cap * SNAP_HASH_LEN);

		if (!p)
			return -ENOMEM;
		l->id = p;
		l->cap = cap;
	}
	memcpy(l->id[l->n++], id, SNAP_HASH_LEN);
	return 0;
}

/*
 * The partition image's object ids, ascending, for the listener: an update does not send what
 * the image has (PID 1 copies those objects into the store when it activates). Ids, not bytes:
 * the listener keeps no descriptor of the image. Without memory for the list: none (everything
 * is sent, as before).
 */
static void image_have(const struct init *in, struct net_config *c)
{
	struct image_ids l = { 0 };

	if (!in->st.image || snap_image_entry_each(in->st.image, image_id, &l) < 0) {
		free(l.id);
		return;
	}
	snap_ids_sort(l.id, l.n);
	c->have = (const uint8_t (*)[SNAP_HASH_LEN])l.id;
	c->nhave = l.n;
}

/* In the listener's child. Never returns. */
static void net_child(struct init *in, int stop_fd, int ctl_fd)
{
	struct net_config c;
	const struct init_board *b = &in->board;
	sigset_t none;
	int rc;

	sigemptyset(&none);
	for (size_t i = 0; i < sizeof(init_signals) / sizeof(init_signals[0]); i++)
		signal(init_signals[i], SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in->cg.root[0]) {
		struct init_limits lim;
		char err[200];

		init_limits_listener(&lim);
		/* an update must still get through: an unconfined listener beats none */
		if (init_cg_enter(&in->cg, "listener", &lim, err, sizeof(err)) < 0)
			init_log("listener: %s; running without its limits", err);
	}
	net_config_defaults(&c);
	c.ifname = b->nic;
	c.port = (uint16_t)b->port;
	c.store_dir = in->st.data_store;
	c.stop_fd = stop_fd;
	c.log = net_log_line;
	c.on_ready = net_ready;
	c.confine = net_confine;
	c.activate_fd = ctl_fd;   /* it moves no ref: PID 1 does (net_ctl) */
	image_have(in, &c);
	{
		static struct net_sandbox links[CONFIG_MAX_SANDBOXES];
		size_t n = 0;

		for (int i = 0; i < in->nsb; i++) {
			const struct sandbox *s = &in->sb[i];

			if (s->link[0] < 0)
				continue;
			memset(&links[n], 0, sizeof(links[n]));
			snprintf(links[n].name, sizeof(links[n].name), "%s", s->conf.name);
			links[n].fd = s->link[0];
			for (unsigned f = 0; f < s->conf.nforward && f < NET_MAX_FORWARDS; f++) {
				links[n].fwd[f].outer = s->conf.forward[f].outer;
				links[n].fwd[f].inner = s->conf.forward[f].inner;
				links[n].nfwd++;
			}
			memcpy(links[n].allow, s->conf.allow, sizeof(links[n].allow));
			links[n].nallow = s->conf.nallow;
			links[n].bridge = s->conf.net == INIT_NET_BRIDGE;
			n++;
		}
		c.sandboxes = links;
		c.nsandboxes = n;
		c.dns = b->dns;
		c.stats_s = b->net_stats_s;
	}
	if (!strcmp(b->address, "dhcp") || !b->address[0]) {
		c.dhcp = 1;
	} else if (net_parse_ipv4(b->address, 1, &c.ip, &c.prefix) < 0 ||
		   (b->gateway[0] && net_parse_ipv4(b->gateway, 0, &c.gw, NULL) < 0)) {
		init_log("listener: address %s / gateway %s do not parse", b->address, b->gateway);   /* board.c checked */
		_exit(1);
	}
	c.keys = in->st.keys;   /* loaded (and any bad one reported) by init_stores_open */
	c.nkeys = (size_t)in->st.nkeys;
	c.tls = b->tls_cert[0] != 0;   /* net_start checked: all three files, or listener-plaintext = yes */
	if (in->net_fwd_only) {
		c.port = 0;
		c.store_dir = NULL;
		c.tls = 0;
	}
	c.tls_cert = b->tls_cert;
	c.tls_key = b->tls_key;
	c.tls_ca = b->tls_ca;
	rc = net_listen(&c);
	if (rc < 0)
		init_log("listener on %s: %s", b->nic, strerror(-rc));
	_exit(rc < 0 ? 1 : 0);
}
#endif

static void net_start(struct init *in)
{
#if CONFIG_NET
	char err[256];
	int p[2], sv[2];
	pid_t pid;

	in->net_restart_ms = 0;
	in->net_fwd_only = 0;
	if (!in->board.nic[0])
		return;
	if (!in->board.tls_cert[0] && !in->board.tls_key[0] && !in->board.tls_ca[0]) {
		if (!in->board.listener_plaintext) {
			init_log("listener: not started: board.conf names no tls-cert, tls-key and tls-ca "
				 "(listener-plaintext = yes allows plain TCP, for labs)");
			goto links_only;
		}
		init_log("listener: PLAINTEXT (listener-plaintext = yes): anyone on the link can push, "
			 "read what is pushed and ask which objects are installed");
	} else if (!in->board.tls_cert[0] || !in->board.tls_key[0] || !in->board.tls_ca[0]) {
		init_log("listener: not started: TLS needs all of tls-cert, tls-key and tls-ca in board.conf");
		goto links_only;
	}
	if (!in->st.data) {
		init_log("listener: no data store to receive updates into; not started");
		goto links_only;
	}
	if (jail_listener_store(in->st.data_store, err, sizeof(err)) < 0) {
		init_log("listener: not started: %s", err);
		goto links_only;
	}
	if (0) {
links_only:
		/* a sandbox with forwards (or net = nat said outright) still needs the network process */
		for (int i = 0; i < in->nsb && !in->net_fwd_only; i++)
			in->net_fwd_only = in->sb[i].link[0] >= 0 &&
					   (in->sb[i].conf.nforward || in->sb[i].conf.nallow ||
					    in->sb[i].conf.net == INIT_NET_NAT || in->sb[i].conf.net == INIT_NET_BRIDGE);
		if (!in->net_fwd_only)
			return;
		init_log("network process: for the sandboxes' links and forwards only (no update port)");
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		init_log("listener: socketpair: %s", strerror(errno));
		in->net_restart_ms = init_now_ms() + 1000;
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		init_log("listener: pipe: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		in->net_restart_ms = init_now_ms() + 1000;
		return;
	}
	pid = fork();
	if (pid < 0) {
		init_log("listener: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		close(sv[0]);
		close(sv[1]);
		in->net_restart_ms = init_now_ms() + 1000;
		return;
	}
	if (pid == 0) {
		close(p[1]);
		close(sv[0]);
		net_child(in, p[0], sv[1]);
	}
	close(p[0]);
	close(sv[1]);
	in->net_pid = pid;
	in->net_stop_fd = p[1];
	in->net_ctl_fd = sv[0];
	in->net_started_ms = init_now_ms();
	init_log("listener: started on %s port %u (pid %d)", in->board.nic, in->board.port, (int)pid);
#else
	if (in->board.nic[0])
		init_log("listener: this build has no network support (CONFIG_NET=n)");
#endif
}

static void net_stop(struct init *in)
{
	in->net_restart_ms = 0;
	if (in->net_pid <= 0)
		return;
	/* it stops at its next loop turn and says what it counted (SIGKILL at the shutdown deadline) */
	close(in->net_stop_fd);
	in->net_stop_fd = -1;
}

static void rescan(struct init *in);

static void net_ctl_close(struct init *in)
{
	if (in->net_ctl_fd >= 0)
		close(in->net_ctl_fd);
	in->net_ctl_fd = -1;
}

#if CONFIG_NET
/* Copying an update's objects from the image takes seconds: the watchdog is petted meanwhile. */
static void fill_progress(void *arg)
{
	struct init *in = arg;

	if (in->wdt_fd >= 0)
		init_sys_watchdog_pet(in->wdt_fd);
}
#endif

/* The jailed listener asks for an activation: checked again here, with PID 1's own keys. */
static void net_ctl(struct init *in)
{
#if CONFIG_NET
	struct snap_activation a;
	struct snap_source img;
	struct snap_fill fill = { .src = &img, .progress = fill_progress, .arg = in };
	char err[256], hex[SNAP_HEX_LEN + 1];
	uint64_t t0 = init_now_ms();
	int r;

	/* objects the partition image has are not sent again (objects-needed): they are taken from it */
	if (in->st.image)
		snap_image_source(in->st.image, &img);
	r = net_activation_serve(in->net_ctl_fd, in->st.data, in->st.keys, (size_t)in->st.nkeys,
				 in->st.image ? &fill : NULL, &a, err, sizeof(err));
	if (r > 0 && a.filled)
		init_log("listener: %zu objects (%llu bytes) of the update taken from the image in %llu ms", a.filled,
			 (unsigned long long)a.filled_bytes, (unsigned long long)(init_now_ms() - t0));
	if (r < 0) {
		net_ctl_close(in);   /* the listener is gone; net_exited restarts it */
	} else if (r == 2) {
		init_log("listener: activation refused: %s", err);
	} else if (r == 1 && a.moved) {
		snap_store_ref_get(in->st.data, a.name, a.prev);
		snap_hex(a.prev, hex);
		init_log("listener: %s now points at %.12s", a.name, hex);
		if (!in->shutdown)
			rescan(in);
	}
#else
	(void)in;
#endif
}

static void net_exited(struct init *in, int status)
{
	char st[80];
	uint64_t delay;

	in->net_pid = 0;
	if (in->net_stop_fd >= 0) {
		close(in->net_stop_fd);
		in->net_stop_fd = -1;
	}
	net_ctl_close(in);
	if (in->shutdown)
		return;
	describe_status(status, st, sizeof(st));
	/* One that ran for restart-reset seconds was healthy: its crash starts the backoff over. */
	if (init_now_ms() - in->net_started_ms >= 1000ULL * in->board.restart_reset_s)
		in->net_restarts = 0;
	delay = in->net_restarts < 5 ? 1000ULL << in->net_restarts : BACKOFF_CAP_MS;
	in->net_restarts++;
	init_log("listener exited (%s); restarting in %llu ms", st, (unsigned long long)delay);
	in->net_restart_ms = init_now_ms() + delay;
}

static void reap(struct init *in)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		char st[80];
		int found = 0;

		if (pid <= 0)
			return;
		for (int i = 0; i < in->nsb; i++) {
			if (in->sb[i].pid == pid) {
				child_exited(in, &in->sb[i], status);
				found = 1;
				break;
			}
		}
		if (!found && in->net_pid == pid) {
			net_exited(in, status);
			found = 1;
		}
		if (!found) {
			describe_status(status, st, sizeof(st));
			init_log("reaped orphan %d (%s)", (int)pid, st);
		}
	}
}

/* Deadlines: health timeouts, backoff restarts, stop escalation, restart-count reset. */
static void tick(struct init *in, uint64_t now)
{
	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		switch (s->st) {
		case SB_STARTING:
		case SB_RESTORED:
			if (now < s->deadline_ms)
				break;
			snprintf(s->why, sizeof(s->why), "%s within %u s",
				 s->st == SB_STARTING ? "not restored" : "not healthy",
				 s->conf.health_timeout_s ? s->conf.health_timeout_s : CONFIG_HEALTH_TIMEOUT_S);
			init_log("sandbox %s: %s; stopping it", s->conf.name, s->why);
			kill(-s->pid, SIGKILL);
			kill(s->pid, SIGKILL);
			s->st = SB_KILLING;
			break;
		case SB_BACKOFF:
			if (now >= s->deadline_ms && !in->shutdown)
				spawn(in, s);
			break;
		case SB_STOPPING:
			if (now >= s->deadline_ms && s->pid > 0) {
				init_log("sandbox %s: did not stop in time; killing it", s->conf.name);
				kill(-s->pid, SIGKILL);
				kill(s->pid, SIGKILL);
				s->deadline_ms = now + 1000 * 3600;
			}
			break;
		case SB_HEALTHY:
			if (s->restarts && now - s->healthy_ms >= 1000ULL * in->board.restart_reset_s)
				s->restarts = 0;
			break;
		default:
			break;
		}
	}
	if (in->net_restart_ms && now >= in->net_restart_ms && !in->shutdown && in->net_pid <= 0)
		net_start(in);
	if (in->wdt_fd >= 0 && now >= in->wdt_next_ms) {
		init_sys_watchdog_pet(in->wdt_fd);
		in->wdt_next_ms = now + 1000ULL * in->wdt_interval_s;
	}
	if (in->console_dir[0] && now >= in->console_save_ms) {
		for (int i = 0; i < in->nsb; i++)
			init_console_save(&in->sb[i].con, in->console_dir);
		in->console_save_ms = now + 1000;
	}
}

static int poll_timeout(struct init *in, uint64_t now)
{
	uint64_t next = now + 60000;

	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		if (s->st == SB_STARTING || s->st == SB_RESTORED || s->st == SB_BACKOFF || s->st == SB_STOPPING)
			if (s->deadline_ms < next)
				next = s->deadline_ms;
		if (s->st == SB_HEALTHY && s->restarts && s->healthy_ms + 1000ULL * in->board.restart_reset_s < next)
			next = s->healthy_ms + 1000ULL * in->board.restart_reset_s;
	}
	if (in->wdt_fd >= 0 && in->wdt_next_ms < next)
		next = in->wdt_next_ms;
	for (int i = 0; i < in->nsb; i++)
		if (in->console_dir[0] && in->sb[i].con.dirty && in->console_save_ms < next)
			next = in->console_save_ms;
	if (in->net_restart_ms && in->net_restart_ms < next)
		next = in->net_restart_ms;
	if (in->shutdown && in->shutdown_deadline_ms < next)
		next = in->shutdown_deadline_ms;
	return next <= now ? 0 : (int)(next - now);
}

/* ---- configuration ---- */

/* Development mode never mounts, so a data-dir that names a mount point would be the host's. */
static void dev_adjust(const struct init *in, struct init_board *b)
{
	if (!in->boot && b->data_device[0])
		b->data_dir[0] = 0;
}

/* The cgroup every sandbox and the listener go below, or one line saying nothing is limited. */
static void cg_start(struct init *in)
{
	char root[INIT_PATH_MAX], why[400];

	if (!strcmp(in->board.cgroup, "none")) {
		init_log("cgroup = none: cpu quota, memory budget, pids and io weight are not enforced");
		return;
	}
	if (in->board.cgroup[0])
		snprintf(root, sizeof(root), "%s", in->board.cgroup);
	else if (in->boot)
		snprintf(root, sizeof(root), "/sys/fs/cgroup/keel");
	else   /* development mode: several may run on one host */
		snprintf(root, sizeof(root), "/sys/fs/cgroup/keel-%d", (int)getpid());
	if (init_cg_setup(&in->cg, root, why, sizeof(why)) < 0)
		init_log("%s: cpu quota, memory budget, pids and io weight are not enforced", why);
	else
		init_log("limits: %s", why);
}

/* Where each sandbox's console ring is kept (board console-dir; /run/keel/console when booted). */
static void console_start(struct init *in)
{
	if (in->board.console_dir[0])
		snprintf(in->console_dir, sizeof(in->console_dir), "%s", in->board.console_dir);
	else if (in->boot)
		snprintf(in->console_dir, sizeof(in->console_dir), "/run/keel/console");
	else
		return;
	/* its parent (/run/keel on the board) is made on the way */
	for (char *p = strchr(in->console_dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		mkdir(in->console_dir, 0755);
		*p = '/';
	}
	if (mkdir(in->console_dir, 0750) < 0 && errno != EEXIST) {
		init_log("console-dir %s: %s; sandbox console rings stay in memory", in->console_dir, strerror(errno));
		in->console_dir[0] = 0;
	}
}

static void add_sandboxes(struct init *in)
{
	for (int i = 0; i < in->board.nsandboxes; i++) {
		struct sandbox *s = &in->sb[in->nsb++];
		memset(s, 0, sizeof(*s));
		s->conf = in->board.sandboxes[i];
		s->rfd = -1;
		s->con.fd = -1;
		s->link[0] = s->link[1] = -1;
		s->st = SB_OFF;
	}
}

static void link_close(struct sandbox *s)
{
	for (int k = 0; k < 2; k++) {
		if (s->link[k] >= 0)
			close(s->link[k]);
		s->link[k] = -1;
	}
}

/*
 * A nat link per sandbox that may have one (board.conf names a nic, the sandbox's net is not
 * none): a SOCK_SEQPACKET pair PID 1 keeps for the sandbox's whole life, so a restarted VMM or
 * network process finds its end where the last one left it.
 */
static void links_make(struct init *in)
{
	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		int want = in->board.nic[0] && s->conf.net != INIT_NET_NONE;

		if (!want) {
			link_close(s);
		} else if (s->link[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s->link) < 0) {
			init_log("sandbox %s: its link: socketpair: %s; it runs without one", s->conf.name, strerror(errno));
			s->link[0] = s->link[1] = -1;
		}
	}
}

static void start_all(struct init *in)
{
	char leaf[80];

	links_make(in);
	/* every cgroup made before the first child needs it: a mkdir is the dearest step of entering */
	for (int i = 0; i < in->nsb; i++) {
		cg_leaf(&in->sb[i], leaf, sizeof(leaf));
		init_cg_make(&in->cg, leaf);
	}
	for (int i = 0; i < in->nsb; i++)
		if (in->sb[i].conf.autostart && in->sb[i].st == SB_OFF)
			start(in, &in->sb[i]);
}

/* Running sandbox: move it onto a newer snapshot if one was activated since it started. */
static void follow_newest(struct init *in, struct sandbox *s)
{
	struct init_cand nc[INIT_MAX_CANDIDATES];
	int n;

	if (s->st == SB_OFF || s->st == SB_FAILED || s->st == SB_STOPPING || s->ncands == 0)
		return;
	n = init_candidates(&in->st, s->conf.name, nc, INIT_MAX_CANDIDATES);
	if (n <= 0 || !memcmp(nc[0].id, s->cands[s->cur].id, SNAP_HASH_LEN) || init_failed_has(&in->st, nc[0].id))
		return;
	init_log("sandbox %s: a newer snapshot is active; restarting onto it", s->conf.name);
	if (s->pid > 0) {
		s->start_after_stop = 1;
		stop(s, init_now_ms() + 1000ULL * in->board.shutdown_timeout_s);
	} else {
		s->st = SB_OFF;
		start(in, s);
	}
}

/* SIGUSR1 (the listener activated a snapshot): follow new snapshots, retry given-up sandboxes. */
static void rescan(struct init *in)
{
	init_log("SIGUSR1: re-reading refs");
	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		if (!s->conf.autostart || !init_board_sandbox(&in->board, s->conf.name))
			continue;
		if (s->st == SB_FAILED || s->st == SB_OFF) {
			s->st = SB_OFF;
			start(in, s);
		} else {
			follow_newest(in, s);
		}
	}
}

/* The sandboxes' links and forwards, as text: the network process restarts when it changes. */
static void links_describe(const struct init_board *b, char *out, size_t len)
{
	size_t n = 0;

	out[0] = 0;
	for (int i = 0; i < b->nsandboxes && n < len; i++) {
		const struct init_sandbox_conf *s = &b->sandboxes[i];

		n += (size_t)snprintf(out + n, len - n, "%s:%d", s->name, s->net);
		for (unsigned f = 0; f < s->nforward && n < len; f++)
			n += (size_t)snprintf(out + n, len - n, ",%u:%u", s->forward[f].outer, s->forward[f].inner);
		if (s->nallow && n < len) {
			/* the allow-list by its FNV-1a hash (entries are zero-filled: equal lists hash alike) */
			uint64_t h = 1469598103934665603ull;
			const uint8_t *p = (const uint8_t *)s->allow;

			for (size_t k = 0; k < s->nallow * sizeof(s->allow[0]); k++)
				h = (h ^ p[k]) * 1099511628211ull;
			n += (size_t)snprintf(out + n, len - n, ",allow %u %016llx", s->nallow, (unsigned long long)h);
		}
		if (n < len)
			n += (size_t)snprintf(out + n, len - n, ";");
	}
}

static int net_differs(const struct init_board *a, const struct init_board *b)
{
	static char da[4096], db[4096];

	links_describe(a, da, sizeof(da));
	links_describe(b, db, sizeof(db));
	return strcmp(da, db) || strcmp(a->nic, b->nic) || strcmp(a->address, b->address) || strcmp(a->gateway, b->gateway) ||
	       a->dns != b->dns || a->bridge != b->bridge || a->net_stats_s != b->net_stats_s ||
	       a->port != b->port || strcmp(a->tls_cert, b->tls_cert) || strcmp(a->tls_key, b->tls_key) ||
	       strcmp(a->tls_ca, b->tls_ca) || strcmp(a->data_dir, b->data_dir) ||
	       a->listener_plaintext != b->listener_plaintext ||
	       a->ntrusted_keys != b->ntrusted_keys ||
	       memcmp(a->trusted_keys, b->trusted_keys, sizeof(a->trusted_keys));
}

static void reload(struct init *in)
{
	static struct init_board nb;
	char err[200];

	if (init_board_load(in->board_path, &nb, err, sizeof(err)) < 0) {
		init_log("SIGHUP: %s; keeping the running configuration", err);
		return;
	}
	init_log("SIGHUP: re-reading %s", in->board_path);
	dev_adjust(in, &nb);
	if (net_differs(&in->board, &nb)) {
		net_stop(in);
		in->net_restarts = 0;
		in->net_restart_ms = init_now_ms() + 200;
	}
	init_stores_close(&in->st);
	in->board = nb;
	init_stores_open(&in->st, &in->board);
	/* Sandboxes that left the configuration stop; their slot is dropped once they are off. */
	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		struct init_sandbox_conf *c = init_board_sandbox(&in->board, s->conf.name);
		if (!c) {
			s->conf.autostart = 0;
			s->start_after_stop = 0;
			if (s->pid > 0)
				stop(s, init_now_ms() + 1000ULL * in->board.shutdown_timeout_s);
			else
				s->st = SB_OFF;
			continue;
		}
		s->conf = *c;
		if (!c->autostart) {
			if (s->pid > 0)
				stop(s, init_now_ms() + 1000ULL * in->board.shutdown_timeout_s);
			continue;
		}
		if (s->st == SB_FAILED)
			s->st = SB_OFF;
		else
			follow_newest(in, s);
	}
	/* Compact: drop removed sandboxes that are off; add new ones. */
	int j = 0;
	for (int i = 0; i < in->nsb; i++) {
		if (!init_board_sandbox(&in->board, in->sb[i].conf.name) && in->sb[i].pid <= 0) {
			link_close(&in->sb[i]);
			continue;
		}
		if (j != i)
			in->sb[j] = in->sb[i];
		j++;
	}
	in->nsb = j;
	for (int i = 0; i < in->board.nsandboxes; i++) {
		int have = 0;
		for (int k = 0; k < in->nsb; k++)
			if (!strcmp(in->sb[k].conf.name, in->board.sandboxes[i].name))
				have = 1;
		if (!have && in->nsb < CONFIG_MAX_SANDBOXES) {
			struct sandbox *s = &in->sb[in->nsb++];
			memset(s, 0, sizeof(*s));
			s->conf = in->board.sandboxes[i];
			s->rfd = -1;
			s->con.fd = -1;
			s->link[0] = s->link[1] = -1;
		}
	}
	start_all(in);
}

/* ---- shutdown ---- */

static void begin_shutdown(struct init *in, int how, const char *why)
{
	uint64_t now = init_now_ms();

	if (in->shutdown)
		return;
	in->shutdown = how;
	in->shutdown_deadline_ms = now + 1000ULL * in->board.shutdown_timeout_s;
	init_log("%s: %s; stopping sandboxes", why, how == (int)RB_AUTOBOOT ? "reboot" : "power off");
	net_stop(in);
	for (int i = 0; i < in->nsb; i++) {
		struct sandbox *s = &in->sb[i];
		s->start_after_stop = 0;
		if (s->pid > 0)
			stop(s, in->shutdown_deadline_ms);
		else
			s->st = SB_OFF;
	}
}

static int all_stopped(const struct init *in)
{
	if (in->net_pid > 0)
		return 0;
	for (int i = 0; i < in->nsb; i++)
		if (in->sb[i].pid > 0)
			return 0;
	return 1;
}

/* Last steps once sandboxes are gone (or the deadline passed). Returns in dev mode only. */
static int finish_shutdown(struct init *in)
{
	uint64_t until = init_now_ms() + 2000;

	if (in->net_pid > 0)
		kill(in->net_pid, SIGKILL);

	for (int i = 0; i < in->nsb; i++)
		if (in->sb[i].pid > 0) {
			kill(-in->sb[i].pid, SIGKILL);
			kill(in->sb[i].pid, SIGKILL);
		}
	/* As PID 1 every other process is ours to end (in a PID namespace too). */
	if (getpid() == 1) {
		kill(-1, SIGTERM);
		while (init_now_ms() < until && waitpid(-1, NULL, WNOHANG) >= 0)
			usleep(10000);
		kill(-1, SIGKILL);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (int i = 0; i < in->nsb; i++) {
		char leaf[80];
		cg_leaf(&in->sb[i], leaf, sizeof(leaf));
		init_cg_remove(&in->cg, leaf);
		init_console_close(&in->sb[i].con, init_now_ms());
		init_console_save(&in->sb[i].con, in->console_dir);
	}
	init_cg_remove(&in->cg, "listener");
	init_cg_remove(&in->cg, NULL);
	init_stores_close(&in->st);
	sync();
	if (in->boot)
		init_sys_umount_data(&in->board);
	init_sys_watchdog_close(in->wdt_fd);
	in->wdt_fd = -1;
	init_timeline("%s", in->shutdown == (int)RB_AUTOBOOT ? "rebooting" : "powering off");
	if (!in->boot)
		return 0;
	reboot(in->shutdown);
	/* reboot(2) failed: PID 1 must still not exit. */
	init_log("reboot: %s; halting here", strerror(errno));
	for (;;)
		pause();
}

static void handle_signals(struct init *in)
{
	struct signalfd_siginfo si;

	while (read(in->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			break;
		case SIGTERM:
		case SIGUSR2:
		case SIGPWR:
			begin_shutdown(in, (int)RB_POWER_OFF, strsignal((int)si.ssi_signo));
			break;
		case SIGINT:
			begin_shutdown(in, (int)RB_AUTOBOOT, "SIGINT (ctrl-alt-del)");
			break;
		case SIGHUP:
			if (!in->shutdown)
				reload(in);
			break;
		case SIGUSR1:
			if (!in->shutdown)
				rescan(in);
			break;
		default:
			init_log("ignoring signal %u", si.ssi_signo);
			break;
		}
	}
	/* SIGCHLD coalesces; reaping on every wakeup costs one syscall. */
	reap(in);
}

int init_run(const char *board_path, int boot)
{
	static struct init in;
	char err[256];
	struct pollfd pfd[2 + INIT_MAX_POWER_KEYS + 2 * CONFIG_MAX_SANDBOXES];
	struct sandbox *pmap[2 + INIT_MAX_POWER_KEYS + 2 * CONFIG_MAX_SANDBOXES];

	memset(&in, 0, sizeof(in));
	in.boot = boot;
	in.wdt_fd = -1;
	in.t0_ms = init_now_ms();
	snprintf(in.board_path, sizeof(in.board_path), "%s", board_path);
	in.sigfd = signals_setup();
	if (in.sigfd < 0)
		init_log("signalfd: %s; signals are not handled", strerror(errno));
	if (boot)
		reboot(RB_DISABLE_CAD);
	if (init_board_load(board_path, &in.board, err, sizeof(err)) < 0) {
		init_log("board configuration %s", err);
		init_board_defaults(&in.board);
		if (!boot)
			return 1;
	}
	if (boot) {
		init_sys_modules(&in.board);
		init_sys_mount_data(&in.board);
		/* A development host's power button is not ours: only the real init listens to it. */
		in.npwr = init_sys_power_keys_open(in.pwr_fd, INIT_MAX_POWER_KEYS);
	} else if (in.board.nmodules || in.board.data_device[0]) {
		/* A development host's modules and disks are not ours to touch. */
		init_log("development mode: not loading modules or mounting data-device (no data store)");
		dev_adjust(&in, &in.board);
	}
	if (in.board.watchdog[0] && !boot)
		init_log("development mode: not arming the watchdog %s", in.board.watchdog);
	if (in.board.watchdog[0] && boot) {
		in.wdt_fd = init_sys_watchdog_open(in.board.watchdog, in.board.watchdog_timeout_s,
						   &in.wdt_interval_s);
		in.wdt_next_ms = init_now_ms() + 1000ULL * in.wdt_interval_s;
	}
	init_stores_open(&in.st, &in.board);
	in.net_stop_fd = -1;
	in.net_ctl_fd = -1;
	/* once, for every jail after it: entering a namespace is cheap, making one is not */
	if (jail_prepare(err, sizeof(err)) < 0)
		init_log("%s; each jail makes its own network namespace", err);
	cg_start(&in);
	console_start(&in);
	add_sandboxes(&in);
	start_all(&in);
	net_start(&in);

	for (;;) {
		uint64_t now = init_now_ms();
		int n = 0;

		if (in.shutdown && !all_stopped(&in) && now >= in.shutdown_deadline_ms && !in.killed_all) {
			/* Sandboxes had their time; SIGKILL and give the reaping a moment to log it. */
			tick(&in, now);
			in.killed_all = 1;
			in.shutdown_deadline_ms = now + 2000;
		}
		if (in.shutdown && (all_stopped(&in) || now >= in.shutdown_deadline_ms))
			return finish_shutdown(&in);
		if (in.sigfd >= 0) {
			pfd[n].fd = in.sigfd;
			pfd[n].events = POLLIN;
			pmap[n++] = NULL;
		}
		int pwr0 = n;
		for (int i = 0; i < in.npwr; i++) {
			pfd[n].fd = in.pwr_fd[i];
			pfd[n].events = POLLIN;
			pmap[n++] = NULL;
		}
		for (int i = 0; i < in.nsb; i++) {
			if (in.sb[i].rfd >= 0) {
				pfd[n].fd = in.sb[i].rfd;
				pfd[n].events = POLLIN;
				pmap[n++] = &in.sb[i];
			}
			if (in.sb[i].con.fd >= 0) {
				pfd[n].fd = in.sb[i].con.fd;
				pfd[n].events = POLLIN;
				pmap[n++] = &in.sb[i];
			}
		}
		int ctl = n;
		pfd[n].fd = in.net_ctl_fd;   /* poll skips -1 */
		pfd[n].events = POLLIN;
		pmap[n++] = NULL;
		int r = poll(pfd, (nfds_t)n, poll_timeout(&in, now));
		if (r < 0 && errno != EINTR) {
			init_log("poll: %s", strerror(errno));
			usleep(100000);
		}
		for (int i = 0; r > 0 && i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (i >= pwr0 && i < pwr0 + in.npwr) {
				if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
					init_log("power button: input device gone");
					close(in.pwr_fd[i - pwr0]);
					in.pwr_fd[i - pwr0] = -1;   /* poll skips negative fds */
					continue;
				}
				/* The power button is SIGTERM's orderly power-off, as on any box with ACPI. */
				if (init_sys_power_key_pressed(pfd[i].fd))
					begin_shutdown(&in, (int)RB_POWER_OFF, "power button");
				continue;
			}
			if (i == ctl && in.net_ctl_fd >= 0)
				net_ctl(&in);
			else if (pmap[i] && pmap[i]->rfd == pfd[i].fd)
				ready_read(pmap[i]);
			else if (pmap[i] && pmap[i]->con.fd == pfd[i].fd)
				init_console_drain(&pmap[i]->con, init_now_ms());
		}
		if (in.sigfd >= 0)
			handle_signals(&in);
		else
			reap(&in);
		tick(&in, init_now_ms());
	}
}
