/* `keel image build|ls|verify|extract`: the snapshot partition image as a tool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init/cli.h"
#include "snap/snap.h"

static const char help[] =
	"usage: keel image build --store DIR [--ref NAME]... [--parent IMG] [--key PRIV.pem]\n"
	"                        [--generation N] -o OUT\n"
	"       keel image ls IMG [-l] [--parent IMG]\n"
	"       keel image verify IMG [--key PUB.pem]... [--parent IMG]\n"
	"       keel image extract IMG --store DIR [--parent IMG]\n"
	"  build    writes the snapshot partition image (dd it to the partition): the named refs\n"
	"           (default: every ref of the store), each manifest's parent chain and every object\n"
	"           they use, each object at a 4096-aligned offset; signed with --key (ECDSA P-256).\n"
	"           --parent makes a thin image holding only what IMG lacks.\n"
	"  ls       header fields, refs, and with -l every index entry (kind, id, offset, length).\n"
	"  verify   checks structure and checksum, the signature (with --key), and re-hashes every\n"
	"           object; exits 1 naming each bad object.\n"
	"  extract  copies every object, manifest and ref into the directory store DIR.\n";

static const char *kind_name(int kind)
{
	return kind == SNAP_KIND_MANIFEST ? "manifest" : "object";
}

/* Opens IMG (and its parent for thin images); prints the error. */
static int open_pair(const char *cmd, const char *path, const char *ppath, struct snap_image **img,
		     struct snap_image **parent)
{
	char err[256];
	int rc;

	*img = *parent = NULL;
	if (ppath) {
		rc = snap_image_open(ppath, parent, err, sizeof(err));
		if (rc < 0)
			return cli_error(cmd, "parent %s", err);
	}
	rc = snap_image_open(path, img, err, sizeof(err));
	if (rc < 0) {
		snap_image_close(*parent);
		return cli_error(cmd, "%s: %s", path, err);
	}
	if (*parent && snap_image_set_parent(*img, *parent) < 0) {
		snap_image_close(*img);
		snap_image_close(*parent);
		return cli_error(cmd, "%s is not the parent of %s", ppath, path);
	}
	return 0;
}

static int cmd_build(int argc, char **argv)
{
	const char *store_dir = NULL, *out = NULL, *parent_path = NULL, *key_path = NULL;
	const char **refs = calloc((size_t)argc, sizeof(*refs));
	struct snap_image_build_opts o;
	struct snap_privkey key;
	struct snap_store *store = NULL;
	struct snap_image *parent = NULL;
	unsigned long long gen = 0;
	char err[300];
	size_t nrefs = 0;
	int rc, ret = 1;

	if (!refs)
		return cli_error(argv[0], "out of memory");
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			free(refs);
			return cli_usage("image build", "'%s' needs a value or is unknown", a);
		}
		if (!strcmp(a, "--store"))
			store_dir = v;
		else if (!strcmp(a, "--ref"))
			refs[nrefs++] = v;
		else if (!strcmp(a, "--parent"))
			parent_path = v;
		else if (!strcmp(a, "--key"))
			key_path = v;
		else if (!strcmp(a, "-o"))
			out = v;
		else if (!strcmp(a, "--generation")) {
			char *end;
			gen = strtoull(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || gen == 0) {
				free(refs);
				return cli_usage("image build", "--generation: a positive number");
			}
		} else {
			free(refs);
			return cli_usage("image build", "unknown argument '%s'", a);
		}
	}
	if (!store_dir || !out) {
		free(refs);
		return cli_usage("image build", "--store DIR and -o OUT are required");
	}
	rc = snap_store_open(store_dir, &store);
	if (rc < 0) {
		cli_error("image build", "store %s: %s", store_dir, strerror(-rc));
		goto out;
	}
	if (key_path && (rc = snap_key_load_priv(key_path, &key)) < 0) {
		cli_error("image build", "key %s: %s", key_path, strerror(-rc));
		goto out;
	}
	if (parent_path && (rc = snap_image_open(parent_path, &parent, err, sizeof(err))) < 0) {
		cli_error("image build", "parent %s", err);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.store = store;
	o.refs = refs;
	o.nrefs = nrefs;
	o.parent = parent;
	o.key = key_path ? &key : NULL;
	o.generation = gen;
	o.out = out;
	err[0] = 0;
	rc = snap_image_build(&o, err, sizeof(err));
	if (rc < 0) {
		cli_error("image build", "%s", err[0] ? err : strerror(-rc));
		goto out;
	}
	ret = 0;
out:
	snap_image_close(parent);
	if (store)
		snap_store_close(store);
	free(refs);
	return ret;
}

static int print_ref(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];

	(void)arg;
	snap_hex(id, hex);
	printf("ref %s %s\n", name, hex);
	return 0;
}

static int print_entry(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	char hex[SNAP_HEX_LEN + 1];

	(void)arg;
	snap_hex(id, hex);
	printf("%-8s %s %llu %llu\n", kind_name(kind), hex, (unsigned long long)off, (unsigned long long)len);
	return 0;
}

static void print_info(const struct snap_image *img)
{
	struct snap_image_info in;
	char hex[SNAP_HEX_LEN + 1];

	snap_image_get_info(img, &in);
	snap_hex(in.id, hex);
	printf("image %s\nversion %u\ngeneration %llu\nsize %llu\nrefs %llu\nentries %llu\n", hex, in.version,
	       (unsigned long long)in.generation, (unsigned long long)in.size, (unsigned long long)in.nrefs,
	       (unsigned long long)in.nobjects);
	if (in.flags & SNAP_IMAGE_F_THIN) {
		snap_hex(in.parent, hex);
		printf("parent %s\n", hex);
	}
	if (in.flags & SNAP_IMAGE_F_SIGNED) {
		snap_hex(in.sig_keyid, hex);
		printf("signed-by %s\n", hex);
	} else {
		printf("signed-by none\n");
	}
}

static int cmd_ls(int argc, char **argv)
{
	const char *path = NULL, *ppath = NULL;
	struct snap_image *img, *parent;
	int longfmt = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-l"))
			longfmt = 1;
		else if (!strcmp(argv[i], "--parent") && i + 1 < argc)
			ppath = argv[++i];
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			return cli_usage("image ls", "unknown argument '%s'", argv[i]);
	}
	if (!path)
		return cli_usage("image ls", "which image? (keel image ls IMG)");
	if (open_pair("image ls", path, ppath, &img, &parent))
		return 1;
	print_info(img);
	snap_image_ref_each(img, print_ref, NULL);
	if (longfmt)
		snap_image_entry_each(img, print_entry, NULL);
	snap_image_close(img);
	snap_image_close(parent);
	return 0;
}

struct verify_ctx {
	struct snap_source src;
	unsigned bad, ok;
};

static int verify_entry(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	struct verify_ctx *v = arg;
	char hex[SNAP_HEX_LEN + 1];
	int rc = snap_source_check(&v->src, kind, id);

	if (rc < 0) {
		snap_hex(id, hex);
		fprintf(stderr, "keel image verify: bad %s %s (bytes %llu..%llu): %s\n", kind_name(kind), hex,
			(unsigned long long)off, (unsigned long long)(off + len),
			rc == -EBADMSG ? "content does not match its id" : strerror(-rc));
		v->bad++;
	} else {
		v->ok++;
	}
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	const char *path = NULL, *ppath = NULL;
	struct snap_pubkey keys[16];
	struct snap_image *img, *parent;
	struct verify_ctx v;
	size_t nkeys = 0;
	int rc, ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			if (nkeys == sizeof(keys) / sizeof(keys[0]))
				return cli_usage("image verify", "at most 16 --key");
			rc = snap_key_load_pub(argv[++i], &keys[nkeys]);
			if (rc < 0)
				return cli_error("image verify", "key %s: %s", argv[i], strerror(-rc));
			nkeys++;
		} else if (!strcmp(argv[i], "--parent") && i + 1 < argc) {
			ppath = argv[++i];
		} else if (argv[i][0] != '-' && !path) {
			path = argv[i];
		} else {
			return cli_usage("image verify", "unknown argument '%s'", argv[i]);
		}
	}
	if (!path)
		return cli_usage("image verify", "which image? (keel image verify IMG)");
	if (open_pair("image verify", path, ppath, &img, &parent))
		return 1;
	if (nkeys) {
		rc = snap_image_check_sig(img, keys, nkeys);
		if (rc < 0) {
			fprintf(stderr, "keel image verify: %s: %s\n", path,
				rc == -ENOKEY ? "not signed by any of the given keys" : "bad signature");
			ret = 1;
		}
	}
	memset(&v, 0, sizeof(v));
	snap_image_source(img, &v.src);
	snap_image_entry_each(img, verify_entry, &v);
	if (v.bad)
		ret = 1;
	printf("%s: %u entries good, %u bad%s\n", path, v.ok, v.bad,
	       nkeys ? (ret && !v.bad ? ", signature bad" : ret ? "" : ", signature good") : "");
	snap_image_close(img);
	snap_image_close(parent);
	return ret;
}

struct extract_ctx {
	struct snap_source src;
	struct snap_store *store;
	int pass;                        /* objects first, then manifests, so each manifest commits */
	unsigned n, bad;
};

static int extract_entry(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	struct extract_ctx *x = arg;
	char hex[SNAP_HEX_LEN + 1], err[200];
	uint8_t *buf, got[SNAP_HASH_LEN];
	size_t blen;
	int rc;

	(void)off;
	(void)len;
	if ((kind == SNAP_KIND_MANIFEST) != (x->pass == 1))
		return 0;
	snap_hex(id, hex);
	rc = snap_source_read(&x->src, kind, id, &buf, &blen);
	if (rc < 0) {
		fprintf(stderr, "keel image extract: %s %s: %s\n", kind_name(kind), hex, strerror(-rc));
		x->bad++;
		return 0;
	}
	err[0] = 0;
	if (kind == SNAP_KIND_MANIFEST)
		rc = snap_store_put_manifest(x->store, buf, blen, got, err, sizeof(err));
	else
		rc = snap_store_put_buf(x->store, kind, buf, blen, got);
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "keel image extract: storing %s %s: %s\n", kind_name(kind), hex,
			err[0] ? err : strerror(-rc));
		x->bad++;
		return 0;
	}
	x->n++;
	return 0;
}

static int extract_ref(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	struct extract_ctx *x = arg;
	int rc = snap_store_ref_set(x->store, name, id);

	if (rc < 0) {
		fprintf(stderr, "keel image extract: ref %s: %s\n", name, strerror(-rc));
		x->bad++;
	}
	return 0;
}

static int cmd_extract(int argc, char **argv)
{
	const char *path = NULL, *ppath = NULL, *dir = NULL;
	struct snap_image *img, *parent;
	struct extract_ctx x;
	int rc, lockfd = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--parent") && i + 1 < argc)
			ppath = argv[++i];
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			return cli_usage("image extract", "unknown argument '%s'", argv[i]);
	}
	if (!path || !dir)
		return cli_usage("image extract", "usage: keel image extract IMG --store DIR");
	if (open_pair("image extract", path, ppath, &img, &parent))
		return 1;
	memset(&x, 0, sizeof(x));
	rc = snap_store_init(dir);
	if (rc == 0)
		rc = snap_store_open(dir, &x.store);
	if (rc == 0) {
		rc = snap_store_hold(x.store, &lockfd);
		if (rc < 0)
			snap_store_close(x.store);
	}
	if (rc < 0) {
		snap_image_close(img);
		snap_image_close(parent);
		return cli_error("image extract", "store %s: %s", dir, strerror(-rc));
	}
	snap_image_source(img, &x.src);
	for (x.pass = 0; x.pass < 2; x.pass++)
		snap_image_entry_each(img, extract_entry, &x);
	if (!x.bad)
		snap_image_ref_each(img, extract_ref, &x);
	printf("%s: %u entries extracted to %s, %u failed\n", path, x.n, dir, x.bad);
	snap_store_unhold(lockfd);
	snap_store_close(x.store);
	snap_image_close(img);
	snap_image_close(parent);
	return x.bad ? 1 : 0;
}

int snap_cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return argc < 2 ? cli_usage(argv[0], "which subcommand? (keel image --help)") : cli_help(help);
	if (cli_wants_help(argc, argv))
		return cli_help(help);
	if (!strcmp(argv[1], "build"))
		return cmd_build(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ls"))
		return cmd_ls(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "extract"))
		return cmd_extract(argc - 1, argv + 1);
	return cli_usage(argv[0], "unknown subcommand '%s' (build, ls, verify, extract)", argv[1]);
}
