/* `keel net listen`: the update listener in the foreground, configured from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init/cli.h"
#include "init/jail.h"
#include "keel_config.h"
#include "net/net.h"
#include "snap/snap.h"

#if CONFIG_NET

#define MAX_TRUST 16

static const char listen_help[] =
	"usage: keel net listen --if IFACE (--ip ADDR/PREFIX [--gw GW] | --dhcp) --port PORT --store DIR\n"
	"                       [--trust KEY.pem]... [--tls --cert CERT --key KEY --ca CA]\n"
	"                       [--max-streams N] [--idle-timeout S] [--max-stream-bytes B] [--reserve B]\n"
	"                       [--no-jail]\n"
	"\n"
	"Runs keel's own TCP/IP stack (lwIP) on IFACE, which it reads and writes raw\n"
	"(AF_PACKET; \"tap:NAME\" creates a TAP device instead). The kernel needs no\n"
	"address on IFACE. Accepts SNAPPACK 1 update streams on PORT (see net/net.h for\n"
	"the objects-needed rounds that may precede one), files verified objects into\n"
	"the store DIR, and activates a received manifest (moves the ref its name\n"
	"names) only when it is signed by one of the --trust public keys. Each stream\n"
	"is answered with one line: \"ok <manifest-id>\", \"ok\" or \"error <reason>\".\n"
	"Prints \"listening <ip>:<port>\" once up; SIGINT/SIGTERM stop it.\n"
	"\n"
	"  --tls                TLS 1.2 (ECDHE with an EC or RSA key, AES-GCM or ChaCha20-Poly1305)\n"
	"                       with a client certificate required, issued by --ca\n"
	"  --max-streams N      concurrent connections (default CONFIG_NET_MAX_STREAMS)\n"
	"  --idle-timeout S     drop a connection silent for S seconds\n"
	"  --max-stream-bytes B largest stream (K/M/G suffixes)\n"
	"  --reserve B          free space to keep on the store's filesystem\n"
	"  --no-jail            run unconfined, as one process (debugging only)\n"
	"\n"
	"The listener runs jailed (as PID 1 runs it): a child with new namespaces, only the store in\n"
	"its empty root, uid 64500 without capabilities, a seccomp allow-list. It files objects\n"
	"and manifests (objects/ and manifests/ become its own) but moves no ref: this process stays\n"
	"root, re-checks each manifest's signature and objects, and moves the ref itself.\n";

static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	(void)sig;
	if (write(stop_pipe[1], "x", 1) < 0) {
		/* The pipe is non-blocking and one byte in it is enough. */
	}
}

static void on_ready(void *arg, const char *ip, uint16_t port)
{
	(void)arg;
	printf("listening %s:%u\n", ip, port);
	fflush(stdout);
}

static void on_log(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "keel net: %s\n", line);
}

static int parse_u(const char *cmd, const char *opt, const char *v, unsigned long long max,
		   unsigned long long *out)
{
	if (!v || cli_parse_size(v, out) < 0 || *out > max)
		return cli_usage(cmd, "%s needs a number up to %llu", opt, max);
	return 0;
}

/*
 * The privilege split by hand: a jailed child listens; this process stays root, answers its
 * activation requests with its own keys and store, and exits with the child's status.
 */
static int listen_jailed(struct net_config *c)
{
	const char *cmd = "net listen";
	struct snap_store *s;
	char err[256];
	int sv[2], r, status;
	pid_t pid;

	if (jail_listener_store(c->store_dir, err, sizeof(err)) < 0)
		return cli_error(cmd, "%s%s", err, geteuid() ? " (the jail needs root; --no-jail runs unconfined)" : "");
	r = snap_store_open(c->store_dir, &s);
	if (r < 0)
		return cli_error(cmd, "store %s: %s", c->store_dir, strerror(-r));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return cli_error(cmd, "socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return cli_error(cmd, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		c->activate_fd = sv[1];
		c->confine = jail_listener;
		r = net_listen(c);
		if (r < 0)
			fprintf(stderr, "keel net listen: %s\n", strerror(-r));
		fflush(stdout);
		_exit(r < 0 ? 1 : 0);
	}
	close(sv[1]);
	for (;;) {
		struct pollfd p = { .fd = sv[0], .events = POLLIN };
		struct snap_activation a;

		if (poll(&p, 1, -1) < 0 && errno == EINTR)
			continue;
		r = net_activation_serve(sv[0], s, c->keys, c->nkeys, NULL, &a, err, sizeof(err));
		if (r < 0)
			break;   /* the child is gone */
		if (r == 2)
			on_log(NULL, err);
	}
	close(sv[0]);
	snap_store_close(s);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		return cli_error(cmd, "the jailed listener was killed by signal %d%s", WTERMSIG(status),
				 WTERMSIG(status) == SIGSYS ? " (a system call its jail forbids)" : "");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int cmd_listen(int argc, char **argv)
{
	static struct snap_pubkey keys[MAX_TRUST];
	const char *cmd = "net listen";
	struct net_config c;
	struct sigaction sa;
	unsigned long long v;
	int r, have_addr = 0, no_jail = 0;

	net_config_defaults(&c);
	c.tls = 0;
	c.log = on_log;
	c.on_ready = on_ready;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--if") && val) {
			c.ifname = val;
		} else if (!strcmp(a, "--ip") && val) {
			if (net_parse_ipv4(val, 1, &c.ip, &c.prefix) < 0 || !c.ip)
				return cli_usage(cmd, "--ip wants ADDR/PREFIX, e.g. 10.0.0.2/24");
			have_addr = 1;
		} else if (!strcmp(a, "--gw") && val) {
			if (net_parse_ipv4(val, 0, &c.gw, NULL) < 0)
				return cli_usage(cmd, "--gw wants an IPv4 address");
		} else if (!strcmp(a, "--dhcp")) {
			c.dhcp = 1;
			continue;
		} else if (!strcmp(a, "--port") && val) {
			if (parse_u(cmd, a, val, 65535, &v))
				return 2;
			c.port = (uint16_t)v;
		} else if (!strcmp(a, "--store") && val) {
			c.store_dir = val;
		} else if (!strcmp(a, "--trust") && val) {
			if (c.nkeys == MAX_TRUST)
				return cli_usage(cmd, "at most %d --trust keys", MAX_TRUST);
			r = snap_key_load_pub(val, &keys[c.nkeys]);
			if (r < 0)
				return cli_error(cmd, "%s: %s", val, r == -EINVAL ? "not a P-256 PUBLIC KEY PEM"
										    : strerror(-r));
			c.nkeys++;
			c.keys = keys;
		} else if (!strcmp(a, "--tls")) {
			c.tls = 1;
			continue;
		} else if (!strcmp(a, "--no-jail")) {
			no_jail = 1;
			continue;
		} else if (!strcmp(a, "--cert") && val) {
			c.tls_cert = val;
		} else if (!strcmp(a, "--key") && val) {
			c.tls_key = val;
		} else if (!strcmp(a, "--ca") && val) {
			c.tls_ca = val;
		} else if (!strcmp(a, "--max-streams") && val) {
			if (parse_u(cmd, a, val, 256, &v) || !v)
				return cli_usage(cmd, "--max-streams wants 1..256");
			c.max_streams = (unsigned)v;
		} else if (!strcmp(a, "--idle-timeout") && val) {
			if (parse_u(cmd, a, val, 86400, &v) || !v)
				return cli_usage(cmd, "--idle-timeout wants 1..86400 seconds");
			c.idle_timeout_s = (unsigned)v;
		} else if (!strcmp(a, "--max-stream-bytes") && val) {
			if (parse_u(cmd, a, val, ~0ULL, &v) || !v)
				return cli_usage(cmd, "--max-stream-bytes wants a positive size");
			c.max_stream_bytes = v;
		} else if (!strcmp(a, "--reserve") && val) {
			if (parse_u(cmd, a, val, ~0ULL, &v))
				return 2;
			c.reserve_bytes = v;
			c.reserve_set = 1;
		} else {
			return cli_usage(cmd, "unknown or incomplete argument %s (see --help)", a);
		}
		i++;
	}
	if (!c.ifname || !c.store_dir || !c.port)
		return cli_usage(cmd, "--if, --port and --store are required");
	if (have_addr == c.dhcp)
		return cli_usage(cmd, "give exactly one of --ip ADDR/PREFIX and --dhcp");
	if (c.tls && !CONFIG_NET_TLS)
		return cli_usage(cmd, "this keel is built without TLS (CONFIG_NET_TLS)");
	if (c.tls && (!c.tls_cert || !c.tls_key || !c.tls_ca))
		return cli_usage(cmd, "--tls needs --cert, --key and --ca");
	if (!c.tls && (c.tls_cert || c.tls_key || c.tls_ca))
		return cli_usage(cmd, "--cert/--key/--ca only make sense with --tls");

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return cli_error(cmd, "pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	c.stop_fd = stop_pipe[0];

	if (no_jail) {
		fprintf(stderr, "keel net listen: --no-jail: the listener runs unconfined (for debugging only)\n");
		r = net_listen(&c);
		return r < 0 ? cli_error(cmd, "%s", strerror(-r)) : 0;
	}
	return listen_jailed(&c);
}
int net_cmd_net(int argc, char **argv)
{
	if (argc < 2 || (argc == 2 && cli_wants_help(argc, argv)))
		return argc < 2 ? cli_usage("net", "usage: keel net listen ... (see keel net listen --help)")
				: cli_help(listen_help);
	if (!strcmp(argv[1], "listen")) {
		if (cli_wants_help(argc - 1, argv + 1))
			return cli_help(listen_help);
		return cmd_listen(argc - 1, argv + 1);
	}
	return cli_usage("net", "unknown subcommand %s (known: listen)", argv[1]);
}

#endif
