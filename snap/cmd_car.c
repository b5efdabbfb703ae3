/* `keel car export|import|ls`: CAR v1 files of store objects, for offline transfer and IPFS tools. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel_config.h"
#include "init/cli.h"
#include "snap/car.h"
#include "snap/snap.h"


static const char car_help[] =
	"usage: keel car export --store DIR ID|REF... > FILE.car\n"
	"       keel car import --store DIR [--max-block SIZE] < FILE.car\n"
	"       keel car ls [--max-block SIZE] < FILE.car\n"
	"\n"
	"CAR v1 files carry store objects offline and to or from IPFS tools.\n"
	"\n"
	"export  writes a CAR whose roots are the given ids (a ref name stands for its manifest).\n"
	"        Every object is one block with a CIDv1: raw codec (0x55), BLAKE3-256 multihash\n"
	"        (0x1e). A manifest is exported with every object it names, then itself.\n"
	"import  reads a CAR from stdin and verifies every block against its CID before filing\n"
	"        it under its BLAKE3 id. CIDs with sha2-256 multihashes (what IPFS tools write)\n"
	"        are verified with SHA-256. Codecs raw, dag-pb and dag-cbor are stored as opaque\n"
	"        bytes; CIDv0, other codecs and other multihashes are refused. A block that starts\n"
	"        with \"keel-manifest 1\" is a manifest: it is committed only after the whole file\n"
	"        was read and valid, and only if every object it names is present. Prints the\n"
	"        store id of each root found in the file. Refs are not moved.\n"
	"ls      verifies a CAR from stdin and prints its roots and blocks (CID, length, BLAKE3 id).\n"
	"\n"
	"--max-block SIZE  largest block accepted (default 16G; K/M/G suffixes).\n"
	"Exit status: 0 success, 1 failure (one line on stderr with the byte offset), 2 bad usage.\n"
	"KEEL_REPORT_HWM=1 in the environment prints the peak RSS (VmHWM) on stderr at exit.\n";

/* Peak RSS on stderr when KEEL_REPORT_HWM is set: how tests see O(1) memory per block. */
static void report_hwm(void)
{
	char line[256];
	FILE *f;

	if (!getenv("KEEL_REPORT_HWM") || !(f = fopen("/proc/self/status", "re")))
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			fprintf(stderr, "keel car: %s", line);
	fclose(f);
}

static int parse_max_block(const char *s, uint64_t *out)
{
	unsigned long long v;

	if (cli_parse_size(s, &v) < 0 || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int car_export(int argc, char **argv)
{
	const char *dir = NULL;
	struct snap_store *st = NULL;
	char err[300] = "";
	int i, r;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (argv[i][0] == '-')
			return cli_usage("car", "export: unknown option %s (see keel car --help)", argv[i]);
		else
			break;
	}
	if (!dir)
		return cli_usage("car", "export: --store DIR is required");
	if (i >= argc)
		return cli_usage("car", "export: give at least one ID or ref");
	if (argc - i > SNAP_CAR_MAX_ROOTS)
		return cli_usage("car", "export: at most %d roots", SNAP_CAR_MAX_ROOTS);
	if (isatty(1))
		return cli_usage("car", "export: refusing to write a binary CAR to a terminal; redirect stdout");
	if ((r = snap_store_open(dir, &st)) < 0)
		return cli_error("car", "export: %s: %s", dir,
				 r == -ENOENT || r == -ENOTDIR ? "not a keel store" : strerror(-r));
	r = snap_car_export(st, (const char *const *)argv + i, (size_t)(argc - i), 1, err, sizeof(err));
	snap_store_close(st);
	return r < 0 ? cli_error("car", "export: %s", err) : 0;
}

static int print_root(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];

	(void)arg;
	snap_hex(id, hex);
	return printf("%s\n", hex) < 0 ? -EIO : 0;
}

static int car_import(int argc, char **argv)
{
	const char *dir = NULL;
	uint64_t max_block = 0;
	struct snap_store *st;
	char err[400] = "";
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--max-block") && i + 1 < argc) {
			if (parse_max_block(argv[++i], &max_block) < 0)
				return cli_usage("car", "import: bad --max-block %s", argv[i]);
		} else
			return cli_usage("car", "import: unexpected argument %s (see keel car --help)", argv[i]);
	}
	if (!dir)
		return cli_usage("car", "import: --store DIR is required");
	if (isatty(0))
		return cli_usage("car", "import: reads a CAR from stdin; redirect it from a file");
	if ((r = snap_store_open(dir, &st)) < 0)
		return cli_error("car", "import: %s: %s", dir,
				 r == -ENOENT || r == -ENOTDIR ? "not a keel store" : strerror(-r));
	r = snap_car_import(st, 0, max_block, print_root, NULL, err, sizeof(err));
	if (r == 0 && fflush(stdout) != 0) {
		r = -errno;
		snprintf(err, sizeof(err), "writing stdout: %s", strerror(errno));
	}
	snap_store_close(st);
	report_hwm();
	return r < 0 ? cli_error("car", "import: %s", err) : 0;
}

/* ---- ls ----------------------------------------------------------------- */

struct lister {
	uint64_t len;
};

static int ls_roots(void *ctx, const struct snap_car_cid *roots, size_t n)
{
	char s[SNAP_CAR_CID_STR_MAX];

	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		snap_car_cid_string(&roots[i], s);
		printf("root %s\n", s);
	}
	return 0;
}

static int ls_begin(void *ctx, const struct snap_car_cid *cid, uint64_t len)
{
	struct lister *l = ctx;

	(void)cid;
	l->len = len;
	return 0;
}

static int ls_end(void *ctx, const struct snap_car_cid *cid, const uint8_t b3[SNAP_HASH_LEN])
{
	struct lister *l = ctx;
	char s[SNAP_CAR_CID_STR_MAX], hex[SNAP_HEX_LEN + 1];

	snap_car_cid_string(cid, s);
	snap_hex(b3, hex);
	printf("block %s %llu %s\n", s, (unsigned long long)l->len, hex);
	return 0;
}

static int car_ls(int argc, char **argv)
{
	uint64_t max_block = 0;
	struct lister l = { 0 };
	struct snap_car_sink sink = { .ctx = &l, .roots = ls_roots, .begin = ls_begin, .end = ls_end };
	struct snap_car_rx rx;
	char err[400] = "";
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--max-block") && i + 1 < argc) {
			if (parse_max_block(argv[++i], &max_block) < 0)
				return cli_usage("car", "ls: bad --max-block %s", argv[i]);
		} else
			return cli_usage("car", "ls: unexpected argument %s (see keel car --help)", argv[i]);
	}
	snap_car_rx_init(&rx, &sink, max_block);
	r = snap_car_rx_read_fd(&rx, 0, err, sizeof(err), NULL);
	snap_car_rx_free(&rx);
	fflush(stdout);
	return r < 0 ? cli_error("car", "ls: %s", err) : 0;
}

int snap_cmd_car(int argc, char **argv)
{
	if (cli_wants_help(argc, argv))
		return cli_help(car_help);
	if (argc < 2)
		return cli_usage("car", "expected export, import or ls (see keel car --help)");
	if (!strcmp(argv[1], "export"))
		return car_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return car_import(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ls"))
		return car_ls(argc - 1, argv + 1);
	return cli_usage("car", "unknown subcommand %s (expected export, import or ls)", argv[1]);
}
