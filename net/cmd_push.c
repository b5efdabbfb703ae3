/* `keel push`: the tool around net_push() (net/push.c): arguments, the progress line, the answer. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init/cli.h"
#include "keel_config.h"
#include "net/net.h"
#include "snap/snap.h"

#if CONFIG_NET

static const char push_help[] =
	"usage: keel push --to HOST:PORT [--tls --cert CERT --key KEY --ca CA [--server-name NAME]]\n"
	"                 (--store DIR --manifest NAME|ID | FILE.pack)\n"
	"\n"
	"Sends a snapshot to an appliance's update listener (`keel net listen`, or PID 1)\n"
	"as one SNAPPACK 1 stream. First asks which objects the appliance lacks\n"
	"(objects-needed rounds, see net/net.h) and sends only those, then the manifest.\n"
	"With --store, sends manifest NAME|ID and every object it names; with FILE.pack,\n"
	"sends the records of a pack made by `keel pack send`. Prints the appliance's\n"
	"answer; exits 0 only when it is \"ok\". A progress line (bytes, rate, objects)\n"
	"goes to stderr when it is a terminal.\n"
	"\n"
	"  --tls   TLS 1.2, presenting CERT/KEY (EC or RSA) as client certificate and checking\n"
	"          the appliance's certificate against CA\n"
	"  --server-name NAME  also require the appliance's certificate to name NAME\n"
	"          (a subjectAltName DNS entry), so one appliance cannot stand in for\n"
	"          another holding a certificate from the same CA\n";

struct cmd_push {
	int tty;
	struct timespec t0, last;
};

static double since(const struct timespec *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void on_plan(void *arg, const struct net_push_progress *pr)
{
	struct cmd_push *cp = arg;

	fprintf(stderr, "push: appliance lacks %zu of %zu objects; sending %llu bytes\n", pr->objs_lacking,
		pr->objs_all, (unsigned long long)pr->total);
	clock_gettime(CLOCK_MONOTONIC, &cp->t0);
	cp->last = cp->t0;
}

/* The progress line, on a terminal only, at most four times a second. */
static void on_progress(void *arg, const struct net_push_progress *pr, int final)
{
	struct cmd_push *cp = arg;
	double t, rate;

	if (!cp->tty)
		return;
	if (!final && since(&cp->last) < 0.25)
		return;
	clock_gettime(CLOCK_MONOTONIC, &cp->last);
	t = since(&cp->t0);
	rate = t > 0 ? (double)pr->sent / t : 0;
	fprintf(stderr, "\rpush: %.1f/%.1f MiB, %.1f MiB/s, %zu/%zu objects%s", (double)pr->sent / 1048576.0,
		(double)pr->total / 1048576.0, rate / 1048576.0, pr->objs_sent, pr->objs_total, final ? "\n" : "   ");
}

int net_cmd_push(int argc, char **argv)
{
	const char *to = NULL, *cert = NULL, *key = NULL, *ca = NULL, *dir = NULL, *mname = NULL, *file = NULL;
	const char *server_name = NULL;
	struct net_push_opts o;
	struct cmd_push cp;
	char err[300], answer[NET_WANT_MAX + 64];
	int tls = 0, r;

	if (cli_wants_help(argc, argv))
		return cli_help(push_help);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--tls")) {
			tls = 1;
			continue;
		}
		if (a[0] != '-' || !strcmp(a, "-")) {
			if (file)
				return cli_usage("push", "only one FILE.pack");
			file = a;
			continue;
		}
		if (!val)
			return cli_usage("push", "%s needs a value", a);
		if (!strcmp(a, "--to"))
			to = val;
		else if (!strcmp(a, "--cert"))
			cert = val;
		else if (!strcmp(a, "--key"))
			key = val;
		else if (!strcmp(a, "--ca"))
			ca = val;
		else if (!strcmp(a, "--server-name"))
			server_name = val;
		else if (!strcmp(a, "--store"))
			dir = val;
		else if (!strcmp(a, "--manifest"))
			mname = val;
		else
			return cli_usage("push", "unknown argument %s (see --help)", a);
		i++;
	}
	if (!to)
		return cli_usage("push", "--to HOST:PORT is required");
	if (!file == !(dir && mname) || (file && (dir || mname)))
		return cli_usage("push", "give either --store DIR --manifest ID or FILE.pack");
	if (tls && (!cert || !key || !ca))
		return cli_usage("push", "--tls needs --cert, --key and --ca");
	if (!tls && (cert || key || ca || server_name))
		return cli_usage("push", "--cert/--key/--ca/--server-name only make sense with --tls");

	memset(&o, 0, sizeof(o));
	memset(&cp, 0, sizeof(cp));
	cp.tty = isatty(2);
	o.to = to;
	o.store_dir = dir;
	o.manifest = mname;
	o.pack = file;
	o.tls = tls;
	o.cert = cert;
	o.key = key;
	o.ca = ca;
	o.server_name = server_name;
	o.plan = on_plan;
	o.progress = on_progress;
	o.arg = &cp;
	signal(SIGPIPE, SIG_IGN);
	r = net_push(&o, answer, sizeof(answer), err, sizeof(err));
	if (answer[0])
		printf("%s\n", answer);   /* the appliance's own line, ok or error */
	if (r == 0 || (r == -EREMOTEIO && answer[0]))
		return r == 0 ? 0 : 1;
	return cli_error("push", "%s", err);
}

#endif
