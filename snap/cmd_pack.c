/* `keel pack send|receive`: SNAPPACK 1 streams between a directory store and stdout/stdin. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init/cli.h"
#include "snap/cmd_int.h"
#include "snap/snap.h"

static const char help[] =
	"usage: keel pack send --store DIR [--manifest NAME|ID] [ID...]   stream to stdout\n"
	"       keel pack receive --store DIR [--key PUB.pem]... [--activate]\n"
	"                         [--max-object BYTES] [--max-stream BYTES] [--reserve BYTES]\n"
	"  send: the objects given (in order), then the manifest (last), then \"end\". With\n"
	"    --manifest alone, every object the manifest names is sent, each once.\n"
	"  receive: reads one SNAPPACK 1 stream from stdin. Objects are filed as they verify;\n"
	"    the manifest only after \"end\" and EOF, only when every object it names is present,\n"
	"    and (with --key) only when signed by one of the keys. --activate then moves ref NAME\n"
	"    (the manifest's name) to it. Exit 0 only for a complete valid stream; otherwise one\n"
	"    line on stderr naming what was wrong and at which byte offset.\n"
	"  KEEL_REPORT_HWM=1 in the environment prints the peak RSS (VmHWM) on stderr at exit.\n";

#define CMD "pack"

static void report_hwm(void)
{
	char line[256];
	FILE *f;

	if (!getenv("KEEL_REPORT_HWM"))
		return;
	f = fopen("/proc/self/status", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			fprintf(stderr, "keel pack: %s", line);
	fclose(f);
}

static int do_send(struct snap_store *s, const char *manifest, char **ids, int nids)
{
	struct snap_source src;
	uint8_t mid[SNAP_HASH_LEN], (*v)[SNAP_HASH_LEN] = NULL;
	int r;

	snap_store_source(s, &src);
	if (manifest) {
		r = snap_source_resolve(&src, manifest, mid);
		if (r < 0)
			return cli_error(CMD, "--manifest %s: %s", manifest,
					 r == -EINVAL ? "neither an id nor a ref name" : r == -ENOENT ? "no such ref" : strerror(-r));
	}
	if (nids) {
		v = calloc((size_t)nids, SNAP_HASH_LEN);
		if (!v)
			return cli_error(CMD, "out of memory");
		for (int i = 0; i < nids; i++)
			if (snap_cli_id(CMD, ids[i], v[i])) {
				free(v);
				return 2;
			}
	}
	if (manifest && !nids)
		r = snap_pack_send_manifest(1, &src, mid);
	else
		r = snap_pack_send(1, &src, (const uint8_t(*)[SNAP_HASH_LEN])v, (size_t)nids, manifest ? mid : NULL);
	free(v);
	if (r == -ENOENT)
		return cli_error(CMD, "send: an object or the manifest is not in the store");
	if (r == -EBADMSG)
		return cli_error(CMD, "send: an object or the manifest in the store is corrupt (stream cut short)");
	return r < 0 ? cli_error(CMD, "send: %s", strerror(-r)) : 0;
}

#define RX_BUF (1u << 20)

static int do_receive(struct snap_store *s, const struct snap_pack_limits *lim, int activate)
{
	struct snap_pack_rx *rx;
	uint8_t *buf, id[SNAP_HASH_LEN];
	int has_manifest = 0, ret = 0, r = 0;

	rx = malloc(sizeof(*rx));
	buf = malloc(RX_BUF);
	if (!rx || !buf) {
		free(rx);
		free(buf);
		return cli_error(CMD, "out of memory");
	}
	snap_pack_rx_init(rx, s, lim);
	/*
	 * A 64 KiB pipe makes the writer and keel take turns; a pipe as big as
	 * our read buffer lets them overlap (best effort: not a pipe, or capped).
	 */
	fcntl(0, F_SETPIPE_SZ, (int)RX_BUF);
	for (;;) {
		ssize_t n = read(0, buf, RX_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = cli_error(CMD, "receive: reading stdin: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		r = snap_pack_rx_feed(rx, buf, (size_t)n);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = snap_pack_rx_finish(rx, &has_manifest, id);
	if (r < 0) {
		ret = cli_error(CMD, "receive: %s", snap_pack_rx_error(rx));
		goto out;
	}
	if (has_manifest && activate) {
		char err[256];

		r = snap_store_activate(s, id, NULL, err, sizeof(err));
		if (r < 0) {
			ret = cli_error(CMD, "receive: not activated: %s", err);
			goto out;
		}
	}
	if (has_manifest) {
		char hex[SNAP_HEX_LEN + 1];
		snap_hex(id, hex);
		printf("manifest %s\n", hex);
	}
	printf("objects %llu (new %llu, duplicates %llu), %llu payload bytes\n", (unsigned long long)rx->objects,
	       (unsigned long long)rx->stored, (unsigned long long)rx->duplicates, (unsigned long long)rx->bytes);
out:
	snap_pack_rx_free(rx);
	free(rx);
	free(buf);
	return ret;
}

int snap_cmd_pack(int argc, char **argv)
{
	struct snap_pack_limits lim = { 0 };
	struct snap_pubkey keys[16];
	struct snap_store *s;
	const char *dir = NULL, *manifest = NULL;
	char **ids;
	int nids = 0, activate = 0, send, ret, r;
	unsigned long long v;

	if (cli_wants_help(argc, argv))
		return cli_help(help);
	if (argc < 2 || (strcmp(argv[1], "send") && strcmp(argv[1], "receive")))
		return cli_usage(CMD, "want send or receive (see keel pack --help)");
	send = !strcmp(argv[1], "send");
	ids = calloc((size_t)argc, sizeof(*ids));
	if (!ids)
		return cli_error(CMD, "out of memory");
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--store") && val) {
			dir = val;
			i++;
		} else if (send && !strcmp(o, "--manifest") && val) {
			manifest = val;
			i++;
		} else if (!send && !strcmp(o, "--activate")) {
			activate = 1;
		} else if (!send && !strcmp(o, "--key") && val) {
			if (lim.nkeys == 16) {
				free(ids);
				return cli_usage(CMD, "at most 16 keys");
			}
			r = snap_key_load_pub(val, &keys[lim.nkeys]);
			if (r < 0) {
				free(ids);
				return cli_error(CMD, "%s: %s", val, r == -EINVAL || r == -ENOTSUP
						 ? "not a P-256 PUBLIC KEY in PEM" : strerror(-r));
			}
			lim.nkeys++;
			i++;
		} else if (!send && (!strcmp(o, "--max-object") || !strcmp(o, "--max-stream") ||
				     !strcmp(o, "--reserve")) && val) {
			if (cli_parse_size(val, &v) < 0) {
				free(ids);
				return cli_usage(CMD, "bad size '%.40s' for %s", val, o);
			}
			if (!strcmp(o, "--max-object"))
				lim.max_object_bytes = v;
			else if (!strcmp(o, "--max-stream"))
				lim.max_stream_bytes = v;
			else
				lim.reserve_bytes = v;
			i++;
		} else if (send && o[0] != '-') {
			ids[nids++] = argv[i];
		} else {
			free(ids);
			return cli_usage(CMD, "%s: unexpected '%.40s'", argv[1], o);
		}
	}
	lim.keys = keys;
	if (!dir) {
		free(ids);
		return cli_usage(CMD, "%s needs --store DIR", argv[1]);
	}
	if (send && !manifest && !nids) {
		free(ids);
		return cli_usage(CMD, "send needs --manifest or object ids");
	}
	if (snap_cli_open(CMD, dir, &s)) {
		free(ids);
		return 1;
	}
	ret = send ? do_send(s, manifest, ids, nids) : do_receive(s, &lim, activate);
	snap_store_close(s);
	free(ids);
	report_hwm();
	return ret;
}
