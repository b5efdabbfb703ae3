/* `keel manifest` (show, create, sign, verify) and `keel key` (gen, id): snapshots and their signatures. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel_config.h"
#include "init/cli.h"
#include "snap/cmd_int.h"
#include "snap/snap.h"

static const char help[] =
	"usage: keel manifest show (--store DIR NAME|ID | FILE)\n"
	"       keel manifest create --store DIR --name NAME [options]   prints the new manifest id\n"
	"       keel manifest sign --key PRIV.pem (--store DIR NAME|ID | FILE [-o OUT])\n"
	"       keel manifest verify --key PUB.pem [--key PUB.pem]... (--store DIR NAME|ID | FILE)\n"
	"  show: checks the id and the strict format, then prints the manifest.\n"
	"  sign: with --store files the signed manifest in the store and prints its id; with FILE\n"
	"    writes the signed bytes to OUT (default stdout). Signature: ECDSA P-256 over SHA-256\n"
	"    of the bytes before the signature line.\n"
	"  verify: exit 0 when signed by one of the keys, 1 otherwise.\n"
	"  create options (VALUE: a hex64 id already in the store, or a FILE stored as an object):\n"
	"    --parent ID  --kernel VALUE  --initrd VALUE  --cmdline TEXT\n"
	"    --memory-file FILE   guest memory, split into chunks (all-zero chunks are left out)\n"
	"    --memory BYTES       guest memory size (default: the memory file's, rounded up)\n"
	"    --chunk BYTES        chunk size (default CONFIG_SNAP_CHUNK_KIB)\n"
	"    --disk NAME=FILE     a read-only disk image (up to 4; NAME [a-z0-9]{1,16}), split into\n"
	"                         --disk-chunk BYTES pieces (default 65536; all-zero ones left out)\n"
	"    --vcpu VALUE         one per vCPU, in order (default: one empty state)\n"
	"    --vm-state VALUE  --devices VALUE   (default: empty objects)\n"
	"    --cpu-quota PERCENT  --net on|off  --health-marker TEXT  --health-timeout SECONDS\n"
	"    --created UNIXSECONDS (default: now)  --sign PRIV.pem  --activate (move ref NAME to it)\n";

static const char key_help[] =
	"usage: keel key gen PRIV.pem PUB.pem   a fresh ECDSA P-256 key pair (SEC1 and SPKI PEM)\n"
	"       keel key id PUB.pem             the KEYID (BLAKE3 of the public point) signatures name\n";

#define CMD "manifest"

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	size_t cap = 65536, got = 0;
	uint8_t *p = malloc(cap);
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0 || !p) {
		int e = fd < 0 ? -errno : -ENOMEM;
		free(p);
		if (fd > 0)
			close(fd);
		return e;
	}
	for (;;) {
		ssize_t n;
		if (got == cap) {
			uint8_t *np;
			/* Bigger than any acceptable manifest: stop reading rather than grow without bound. */
			if (cap > (size_t)CONFIG_SNAP_MAX_MANIFEST_BYTES) {
				free(p);
				if (fd > 0)
					close(fd);
				return -E2BIG;
			}
			np = realloc(p, cap * 2);
			if (!np) {
				free(p);
				if (fd > 0)
					close(fd);
				return -ENOMEM;
			}
			p = np;
			cap *= 2;
		}
		n = read(fd, p + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			free(p);
			if (fd > 0)
				close(fd);
			return e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (fd > 0)
		close(fd);
	*buf = p;
	*len = got;
	return 0;
}

static int write_out(const char *path, const uint8_t *buf, size_t len)
{
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 1;
	int r = 0;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	if (fd != 1 && close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* The manifest named on the command line: --store DIR NAME|ID, or a FILE. Returns 0 or an exit code. */
struct target {
	const char *store_dir;
	const char *arg;
	struct snap_store *s;
	uint8_t id[SNAP_HASH_LEN];
	uint8_t *buf;
	size_t len;
};

static int target_load(struct target *t)
{
	int r;

	if (!t->arg)
		return cli_usage(CMD, "want a manifest: --store DIR NAME|ID, or FILE");
	if (!t->store_dir) {
		r = read_file(t->arg, &t->buf, &t->len);
		if (r < 0)
			return cli_error(CMD, "%s: %s", t->arg, strerror(-r));
		return 0;
	}
	if (snap_cli_open(CMD, t->store_dir, &t->s))
		return 1;
	{
		struct snap_source src;
		snap_store_source(t->s, &src);
		r = snap_source_resolve(&src, t->arg, t->id);
		if (r == -EINVAL)
			return cli_usage(CMD, "'%.80s' is neither a manifest id nor a ref name", t->arg);
		if (r < 0)
			return cli_error(CMD, "%s: %s", t->arg, r == -ENOENT ? "no such ref" : strerror(-r));
		r = snap_source_read(&src, SNAP_KIND_MANIFEST, t->id, &t->buf, &t->len);
	}
	if (r == -ENOENT)
		return cli_error(CMD, "%s: no such manifest in the store", t->arg);
	if (r == -EBADMSG)
		return cli_error(CMD, "%s: manifest corrupt (bytes do not hash to the id)", t->arg);
	if (r < 0)
		return cli_error(CMD, "%s: %s", t->arg, strerror(-r));
	return 0;
}

static void target_free(struct target *t)
{
	free(t->buf);
	snap_store_close(t->s);
}

static int do_show(int argc, char **argv)
{
	struct target t = { 0 };
	struct snap_manifest m;
	char err[200];
	int ret;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			t.store_dir = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage(CMD, "show: unknown option '%.40s'", argv[i]);
		else if (!t.arg)
			t.arg = argv[i];
		else
			return cli_usage(CMD, "show takes one manifest");
	}
	ret = target_load(&t);
	if (ret)
		goto out;
	if (snap_manifest_parse(t.buf, t.len, &m, err, sizeof(err)) < 0) {
		ret = cli_error(CMD, "%s: %s", t.arg, err);
		goto out;
	}
	snap_manifest_free(&m);
	ret = write_out(NULL, t.buf, t.len) < 0 ? cli_error(CMD, "cannot write to stdout") : 0;
out:
	target_free(&t);
	return ret;
}

static int load_keys(struct snap_pubkey *keys, size_t *n, const char *path)
{
	int r;

	if (*n == 16)
		return cli_usage(CMD, "at most 16 keys");
	r = snap_key_load_pub(path, &keys[*n]);
	if (r < 0)
		return cli_error(CMD, "%s: %s", path,
				 r == -EINVAL || r == -ENOTSUP ? "not a P-256 PUBLIC KEY in PEM" : strerror(-r));
	(*n)++;
	return 0;
}

static int do_verify(int argc, char **argv)
{
	struct target t = { 0 };
	struct snap_pubkey keys[16];
	size_t nkeys = 0;
	int ret, r;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			t.store_dir = argv[++i];
		else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			if ((ret = load_keys(keys, &nkeys, argv[++i])))
				return ret;
		} else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage(CMD, "verify: unknown option '%.40s'", argv[i]);
		else if (!t.arg)
			t.arg = argv[i];
		else
			return cli_usage(CMD, "verify takes one manifest");
	}
	if (!nkeys)
		return cli_usage(CMD, "verify needs --key PUB.pem");
	ret = target_load(&t);
	if (ret)
		goto out;
	r = snap_manifest_verify(t.buf, t.len, keys, nkeys);
	if (r == -ENOKEY)
		ret = cli_error(CMD, "%s: not signed by any of the given keys", t.arg);
	else if (r < 0)
		ret = cli_error(CMD, "%s: %s", t.arg, snap_sig_strerror(r));
out:
	target_free(&t);
	return ret;
}

static int load_priv(const char *path, struct snap_privkey *k)
{
	int r = snap_key_load_priv(path, k);

	if (r < 0)
		return cli_error(CMD, "%s: %s", path,
				 r == -EINVAL || r == -ENOTSUP ? "not a P-256 private key in PEM (EC PRIVATE KEY or PRIVATE KEY)"
							   : strerror(-r));
	return 0;
}

static int print_id(const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];

	snap_hex(id, hex);
	printf("%s\n", hex);
	return 0;
}

static int do_sign(int argc, char **argv)
{
	struct target t = { 0 };
	struct snap_privkey k;
	const char *keypath = NULL, *out = NULL;
	uint8_t *signed_buf, id[SNAP_HASH_LEN];
	size_t slen;
	char err[200];
	int ret, r;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			t.store_dir = argv[++i];
		else if (!strcmp(argv[i], "--key") && i + 1 < argc)
			keypath = argv[++i];
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage(CMD, "sign: unknown option '%.40s'", argv[i]);
		else if (!t.arg)
			t.arg = argv[i];
		else
			return cli_usage(CMD, "sign takes one manifest");
	}
	if (!keypath)
		return cli_usage(CMD, "sign needs --key PRIV.pem");
	if (out && t.store_dir)
		return cli_usage(CMD, "-o goes with FILE; with --store the signed manifest is filed in the store");
	if ((ret = load_priv(keypath, &k)))
		return ret;
	ret = target_load(&t);
	if (ret)
		goto out;
	r = snap_manifest_sign(t.buf, t.len, &k, &signed_buf, &slen);
	if (r < 0) {
		struct snap_manifest m;
		if (snap_manifest_parse(t.buf, t.len, &m, err, sizeof(err)) == 0) {
			snap_manifest_free(&m);
			snprintf(err, sizeof(err), "%s", strerror(-r));
		}
		ret = cli_error(CMD, "%s: %s", t.arg, err);
		goto out;
	}
	if (t.s) {
		r = snap_store_put_manifest(t.s, signed_buf, slen, id, err, sizeof(err));
		ret = r < 0 ? cli_error(CMD, "%s: %s", t.arg, err) : print_id(id);
	} else {
		r = write_out(out, signed_buf, slen);
		ret = r < 0 ? cli_error(CMD, "%s: %s", out ? out : "stdout", strerror(-r)) : 0;
	}
	free(signed_buf);
out:
	explicit_bzero(&k, sizeof(k));
	target_free(&t);
	return ret;
}

/* --- create ---------------------------------------------------------------- */

/* A hex64 already in the store, or a file to store. 0 or an exit code. */
static int object_arg(struct snap_store *s, const char *what, const char *v, uint8_t id[SNAP_HASH_LEN])
{
	int r;

	if (snap_is_hex64(v, strlen(v))) {
		snap_unhex(v, SNAP_HEX_LEN, id);
		if (snap_store_has(s, SNAP_KIND_OBJECT, id) != 1)
			return cli_error(CMD, "%s: object %s is not in the store", what, v);
		return 0;
	}
	r = snap_cli_put_file(s, v, id);
	if (r < 0)
		return cli_error(CMD, "%s: %s: %s", what, v, strerror(-r));
	return 0;
}

static int parse_u64_arg(const char *what, const char *v, uint64_t max, uint64_t *out)
{
	unsigned long long x;

	if (cli_parse_size(v, &x) < 0 || x > max)
		return cli_usage(CMD, "bad %s '%.40s'", what, v);
	*out = x;
	return 0;
}

/* snap_chunks_put with its failure said as the command's one line. 0 or an exit code. */
static int store_chunks(struct snap_store *s, const char *what, int fd, uint64_t size, uint64_t chunk_bytes,
			struct snap_manifest_chunk **list, size_t *n)
{
	int r = snap_chunks_put(s, fd, size, chunk_bytes, list, n);

	return r < 0 ? cli_error(CMD, "%s: cannot store its chunks: %s", what, strerror(-r)) : 0;
}

static int add_memory_file(struct snap_store *s, struct snap_manifest *m, const char *path, int have_memory)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = cli_error(CMD, "--memory-file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!have_memory)
		m->memory_bytes = ((uint64_t)st.st_size + m->chunk_bytes - 1) / m->chunk_bytes * m->chunk_bytes;
	if ((uint64_t)st.st_size > m->memory_bytes) {
		ret = cli_usage(CMD, "--memory-file %s is larger than --memory", path);
		goto out;
	}
	/* memory chunks are whole: the file's tail is padded with zeros */
	ret = store_chunks(s, "--memory-file", fd, m->memory_bytes, m->chunk_bytes, &m->chunks, &m->nchunks);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* --disk NAME=FILE: a read-only disk image, split into disk_chunk pieces. 0 or an exit code. */
static int add_disk(struct snap_store *s, struct snap_manifest *m, const char *spec, uint64_t disk_chunk)
{
	struct snap_manifest_disk *d;
	const char *eq = strchr(spec, '=');
	int fd, ret, r = 0;

	if (!eq || eq == spec || (size_t)(eq - spec) > SNAP_DISK_NAME_MAX)
		return cli_usage(CMD, "--disk wants NAME=FILE (NAME [a-z0-9]{1,%d})", SNAP_DISK_NAME_MAX);
	for (const char *c = spec; c < eq; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
			return cli_usage(CMD, "--disk wants NAME=FILE (NAME [a-z0-9]{1,%d})", SNAP_DISK_NAME_MAX);
	if (m->ndisks == SNAP_MAX_DISKS)
		return cli_usage(CMD, "more than %d --disk", SNAP_MAX_DISKS);
	/* disks in name order, each name once */
	d = &m->disks[m->ndisks];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, spec, (size_t)(eq - spec));
	for (size_t i = 0; i < m->ndisks; i++)
		if (!strcmp(m->disks[i].name, d->name))
			return cli_usage(CMD, "--disk %s given twice", d->name);
	fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (r = snap_file_bytes(fd, &d->bytes)) < 0) {
		ret = cli_error(CMD, "--disk %s: %s", eq + 1, fd < 0 ? strerror(errno) :
				r == -EINVAL ? "not a file or block device" : strerror(-r));
		goto out;
	}
	if (d->bytes == 0 || d->bytes % 512) {
		ret = cli_usage(CMD, "--disk %s: %llu bytes is not a non-zero multiple of 512", eq + 1,
				(unsigned long long)d->bytes);
		goto out;
	}
	d->chunk_bytes = disk_chunk;
	ret = store_chunks(s, "--disk", fd, d->bytes, disk_chunk, &d->chunks, &d->nchunks);
	m->ndisks++;
	while (!ret && d > m->disks && strcmp(d[-1].name, d->name) > 0) {
		struct snap_manifest_disk t = d[-1];

		d[-1] = *d;
		*d = t;
		d--;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int do_create(int argc, char **argv)
{
	struct snap_manifest m;
	struct snap_store *s = NULL;
	struct snap_privkey k;
	const char *dir = NULL, *memfile = NULL, *signkey = NULL, *disks[SNAP_MAX_DISKS + 1];
	const char *kernel = NULL, *initrd = NULL, *vm_state = NULL, *devices = NULL, *vcpu[SNAP_MAX_VCPUS];
	uint8_t *text = NULL, id[SNAP_HASH_LEN];
	size_t tlen, nvcpu = 0, ndisk = 0;
	uint64_t v, disk_chunk = 65536;
	int have_memory = 0, have_created = 0, activate = 0, ret = 0, r;
	char err[200];

	snap_manifest_init(&m);
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--activate")) {
			activate = 1;
			continue;
		}
		if (o[0] != '-' || !val)
			return cli_usage(CMD, "create: unexpected '%.40s'", o);
		i++;
		if (!strcmp(o, "--store")) {
			dir = val;
		} else if (!strcmp(o, "--name")) {
			if (!snap_name_valid(val, strlen(val)))
				return cli_usage(CMD, "bad name '%.80s' (want [A-Za-z0-9._-]{1,64})", val);
			snprintf(m.name, sizeof(m.name), "%s", val);
		} else if (!strcmp(o, "--parent")) {
			if (snap_cli_id(CMD, val, m.parent))
				return 2;
			m.has_parent = 1;
		} else if (!strcmp(o, "--kernel")) {
			kernel = val;
		} else if (!strcmp(o, "--initrd")) {
			initrd = val;
		} else if (!strcmp(o, "--cmdline")) {
			if (strlen(val) > SNAP_CMDLINE_MAX)
				return cli_usage(CMD, "--cmdline is longer than %d bytes", SNAP_CMDLINE_MAX);
			snprintf(m.cmdline, sizeof(m.cmdline), "%s", val);
		} else if (!strcmp(o, "--memory-file")) {
			memfile = val;
		} else if (!strcmp(o, "--memory")) {
			if ((r = parse_u64_arg("--memory", val, UINT64_MAX, &m.memory_bytes)))
				return r;
			have_memory = 1;
		} else if (!strcmp(o, "--chunk")) {
			if ((r = parse_u64_arg("--chunk", val, (uint64_t)1 << 40, &m.chunk_bytes)))
				return r;
		} else if (!strcmp(o, "--disk")) {
			if (ndisk > SNAP_MAX_DISKS)
				return cli_usage(CMD, "more than %d --disk", SNAP_MAX_DISKS);
			disks[ndisk++] = val;
		} else if (!strcmp(o, "--disk-chunk")) {
			if ((r = parse_u64_arg("--disk-chunk", val, (uint64_t)1 << 30, &disk_chunk)))
				return r;
			if (disk_chunk < 4096 || (disk_chunk & (disk_chunk - 1)))
				return cli_usage(CMD, "--disk-chunk must be a power of two >= 4096");
		} else if (!strcmp(o, "--vcpu")) {
			if (nvcpu == SNAP_MAX_VCPUS)
				return cli_usage(CMD, "too many --vcpu");
			vcpu[nvcpu++] = val;
		} else if (!strcmp(o, "--vm-state")) {
			vm_state = val;
		} else if (!strcmp(o, "--devices")) {
			devices = val;
		} else if (!strcmp(o, "--cpu-quota")) {
			if ((r = parse_u64_arg("--cpu-quota", val, 6400, &v)))
				return r;
			m.cpu_quota = (uint32_t)v;
		} else if (!strcmp(o, "--net")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				return cli_usage(CMD, "--net takes on or off");
			m.net = !strcmp(val, "on");
		} else if (!strcmp(o, "--health-marker")) {
			if (strlen(val) > SNAP_MARKER_MAX)
				return cli_usage(CMD, "--health-marker is longer than %d bytes", SNAP_MARKER_MAX);
			snprintf(m.health_marker, sizeof(m.health_marker), "%s", val);
		} else if (!strcmp(o, "--health-timeout")) {
			if ((r = parse_u64_arg("--health-timeout", val, UINT32_MAX, &v)))
				return r;
			m.health_timeout = (uint32_t)v;
		} else if (!strcmp(o, "--created")) {
			if ((r = parse_u64_arg("--created", val, UINT64_MAX, &m.created)))
				return r;
			have_created = 1;
		} else if (!strcmp(o, "--sign")) {
			signkey = val;
		} else {
			return cli_usage(CMD, "create: unknown option '%.40s'", o);
		}
	}
	if (!dir || !m.name[0])
		return cli_usage(CMD, "create needs --store DIR and --name NAME");
	if (m.chunk_bytes < 4096 || (m.chunk_bytes & (m.chunk_bytes - 1)))
		return cli_usage(CMD, "--chunk must be a power of two >= 4096");
	if (!have_memory && !memfile)
		return cli_usage(CMD, "create needs --memory BYTES or --memory-file FILE");
	if (have_memory && (m.memory_bytes == 0 || m.memory_bytes % m.chunk_bytes))
		return cli_usage(CMD, "--memory must be a non-zero multiple of the chunk size");
	if (!have_created)
		m.created = (uint64_t)time(NULL);
	if (signkey && (ret = load_priv(signkey, &k)))
		return ret;
	if (snap_cli_open(CMD, dir, &s))
		return 1;
	if (kernel && (ret = object_arg(s, "--kernel", kernel, m.kernel)))
		goto out;
	m.has_kernel = !!kernel;
	if (initrd && (ret = object_arg(s, "--initrd", initrd, m.initrd)))
		goto out;
	m.has_initrd = !!initrd;
	if (memfile && (ret = add_memory_file(s, &m, memfile, have_memory)))
		goto out;
	for (size_t i = 0; i < ndisk; i++)
		if ((ret = add_disk(s, &m, disks[i], disk_chunk)))
			goto out;
	if (nvcpu == 0) {
		snap_store_put_buf(s, SNAP_KIND_OBJECT, "", 0, m.vcpu[0]);
		nvcpu = 1;
		vcpu[0] = NULL;
	} else {
		for (size_t i = 0; i < nvcpu; i++)
			if ((ret = object_arg(s, "--vcpu", vcpu[i], m.vcpu[i])))
				goto out;
	}
	m.vcpus = (uint32_t)nvcpu;
	if (vm_state)
		ret = object_arg(s, "--vm-state", vm_state, m.vm_state);
	else
		snap_store_put_buf(s, SNAP_KIND_OBJECT, "", 0, m.vm_state);
	if (ret)
		goto out;
	if (devices)
		ret = object_arg(s, "--devices", devices, m.devices);
	else
		snap_store_put_buf(s, SNAP_KIND_OBJECT, "", 0, m.devices);
	if (ret)
		goto out;
	r = snap_manifest_format(&m, (char **)&text, &tlen);
	if (r < 0) {
		ret = cli_usage(CMD, "inconsistent manifest (vcpus %u, cpu quota %u, ...)", m.vcpus, m.cpu_quota);
		goto out;
	}
	if (signkey) {
		uint8_t *sbuf;
		size_t slen;
		r = snap_manifest_sign(text, tlen, &k, &sbuf, &slen);
		if (r < 0) {
			ret = cli_error(CMD, "cannot sign: %s", strerror(-r));
			goto out;
		}
		free(text);
		text = sbuf;
		tlen = slen;
	}
	r = snap_store_put_manifest(s, text, tlen, id, err, sizeof(err));
	if (r < 0) {
		ret = cli_error(CMD, "%s", err);
		goto out;
	}
	if (activate && (r = snap_store_ref_set(s, m.name, id)) < 0) {
		ret = cli_error(CMD, "ref %s: %s", m.name, strerror(-r));
		goto out;
	}
	print_id(id);
out:
	if (signkey)
		explicit_bzero(&k, sizeof(k));
	free(text);
	snap_manifest_free(&m);
	snap_store_close(s);
	return ret;
}

int snap_cmd_manifest(int argc, char **argv)
{
	if (cli_wants_help(argc, argv))
		return cli_help(help);
	if (argc < 2)
		return cli_usage(CMD, "want show, create, sign or verify (see keel manifest --help)");
	if (!strcmp(argv[1], "show"))
		return do_show(argc - 2, argv + 2);
	if (!strcmp(argv[1], "create"))
		return do_create(argc - 2, argv + 2);
	if (!strcmp(argv[1], "sign"))
		return do_sign(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return do_verify(argc - 2, argv + 2);
	return cli_usage(CMD, "unknown subcommand '%.40s'", argv[1]);
}

int snap_cmd_key(int argc, char **argv)
{
	struct snap_privkey k;
	struct snap_pubkey p;
	int r;

	if (cli_wants_help(argc, argv))
		return cli_help(key_help);
	if (argc == 4 && !strcmp(argv[1], "gen")) {
		r = snap_key_generate(&k);
		if (r == 0)
			r = snap_key_save_priv(argv[2], &k);
		if (r == 0)
			r = snap_key_save_pub(argv[3], &k.pub);
		explicit_bzero(&k, sizeof(k));
		return r < 0 ? cli_error("key", "gen: %s", strerror(-r)) : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "id")) {
		r = snap_key_load_pub(argv[2], &p);
		if (r < 0)
			return cli_error("key", "%s: %s", argv[2],
					 r == -EINVAL || r == -ENOTSUP ? "not a P-256 PUBLIC KEY in PEM" : strerror(-r));
		return print_id(p.id);
	}
	return cli_usage("key", "want: key gen PRIV.pem PUB.pem | key id PUB.pem");
}
