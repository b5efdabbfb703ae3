/* `keel store`: create, fill, read, check and collect a directory store; move refs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init/cli.h"
#include "snap/cmd_int.h"
#include "snap/snap.h"
#include "snap/store_int.h"

static const char help[] =
	"usage: keel store init DIR\n"
	"       keel store put DIR FILE|-...    store files as objects; prints one id per line\n"
	"       keel store get DIR ID            verified bytes of an object (or manifest) to stdout\n"
	"       keel store verify DIR            re-hash everything; exit 1 naming each problem\n"
	"       keel store gc DIR                drop objects and manifests no ref reaches\n"
	"       keel store ref DIR               list refs\n"
	"       keel store ref DIR NAME [ID|--delete]  show, move (atomically) or delete a ref\n"
	"       keel store log DIR NAME          the ref's history, newest first: ID, when it was set\n"
	"                                        (UTC; '-' = before history began), 'current' marks\n"
	"                                        the ref's value (init rolls back along this list)\n"
	"  Objects live at DIR/objects/<hex64>, manifests at DIR/manifests/<hex64>, refs at\n"
	"  DIR/refs/NAME (NAME: [A-Za-z0-9._-]{1,64}), the newest %d values of each ref at\n"
	"  DIR/logs/NAME. Every read re-verifies the BLAKE3 id.\n";

#define CMD "store"

int snap_cli_open(const char *cmd, const char *dir, struct snap_store **s)
{
	int r = snap_store_open(dir, s);

	if (r < 0)
		return cli_error(cmd, "%s: %s", dir,
				 r == -ENOTDIR ? "not a keel store (run keel store init)" : strerror(-r));
	return 0;
}

int snap_cli_id(const char *cmd, const char *s, uint8_t id[SNAP_HASH_LEN])
{
	if (snap_unhex(s, strlen(s), id) < 0)
		return cli_usage(cmd, "'%.80s' is not an id (want 64 lowercase hex digits)", s);
	return 0;
}

int snap_cli_put_file(struct snap_store *s, const char *path, uint8_t id[SNAP_HASH_LEN])
{
	struct snap_store_writer w;
	uint8_t *buf;
	int fd, r;

	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		return -errno;
	buf = malloc(1 << 20);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	r = snap_store_begin(s, &w);
	if (r < 0)
		goto out_free;
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snap_store_abort(&w);
			goto out_free;
		}
		if (n == 0)
			break;
		r = snap_store_write(&w, buf, (size_t)n);
		if (r < 0) {
			snap_store_abort(&w);
			goto out_free;
		}
	}
	r = snap_store_commit(&w, NULL, id);
out_free:
	free(buf);
out_close:
	if (fd > 0)
		close(fd);
	return r;
}

static int do_get(struct snap_store *s, const char *arg)
{
	struct snap_source src;
	uint8_t id[SNAP_HASH_LEN], *buf;
	uint64_t off, len, done = 0;
	int kind = SNAP_KIND_OBJECT, fd, r;

	if (snap_cli_id(CMD, arg, id))
		return 2;
	snap_store_source(s, &src);
	if (snap_store_has(s, kind, id) != 1)
		kind = SNAP_KIND_MANIFEST;
	/* Check the whole object before the first byte leaves: stdout cannot take bytes back. */
	r = snap_source_check(&src, kind, id);
	if (r == -ENOENT)
		return cli_error(CMD, "%s: no such object or manifest", arg);
	if (r == -EBADMSG)
		return cli_error(CMD, "%s: corrupt (bytes do not hash to the id)", arg);
	if (r < 0)
		return cli_error(CMD, "%s: %s", arg, strerror(-r));
	r = src.locate(src.ctx, kind, id, &fd, &off, &len);
	if (r < 0)
		return cli_error(CMD, "%s: %s", arg, strerror(-r));
	buf = malloc(1 << 20);
	if (!buf)
		return cli_error(CMD, "out of memory");
	while (done < len) {
		size_t want = len - done < (1 << 20) ? (size_t)(len - done) : (1 << 20);
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (r = snap_write_all(1, buf, (size_t)n)) < 0) {
			free(buf);
			return cli_error(CMD, "%s: %s", arg, n <= 0 ? "short read" : strerror(-r));
		}
		done += (uint64_t)n;
	}
	free(buf);
	return 0;
}

static void print_bad(void *arg, const char *path, int err)
{
	(void)arg;
	fprintf(stderr, "keel store verify: %s: %s\n", path,
		err == -EBADMSG ? "corrupt (bytes do not hash to the id)"
		: err == -EINVAL ? "unexpected or malformed entry"
		: err == -ENOENT ? "names something missing from the store" : strerror(-err));
}

static int print_ref(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];

	(void)arg;
	snap_hex(id, hex);
	printf("%s %s\n", name, hex);
	return 0;
}

static int do_log(struct snap_store *s, const char *name)
{
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t cur[SNAP_HASH_LEN];
	int n, bad, have_cur;

	if (!snap_name_valid(name, strlen(name)))
		return cli_usage(CMD, "bad ref name '%.80s' (want [A-Za-z0-9._-]{1,64})", name);
	n = snap_store_ref_log(s, name, e, SNAP_REF_LOG_MAX, &bad);
	if (n < 0)
		return cli_error(CMD, "log %s: %s", name, strerror(-n));
	if (bad)
		fprintf(stderr, "keel store: log %s: %d malformed line%s skipped\n", name, bad, bad == 1 ? "" : "s");
	have_cur = snap_store_ref_get(s, name, cur) == 0;
	if (n == 0 && !have_cur)
		return cli_error(CMD, "log %s: no such ref and no history", name);
	for (int i = n - 1; i >= 0; i--) {
		char hex[SNAP_HEX_LEN + 1], when[32] = "-";
		time_t t = (time_t)e[i].time;
		struct tm tm;

		snap_hex(e[i].id, hex);
		if (e[i].time && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s %s%s\n", hex, when,
		       have_cur && !memcmp(e[i].id, cur, SNAP_HASH_LEN) ? " current" : "");
		/* Only the newest entry equal to the ref is the current one. */
		if (have_cur && !memcmp(e[i].id, cur, SNAP_HASH_LEN))
			have_cur = 0;
	}
	return 0;
}

static int do_ref(struct snap_store *s, int argc, char **argv)
{
	uint8_t id[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1];
	const char *name;
	int r;

	if (argc == 0)
		return snap_store_ref_each(s, print_ref, NULL) < 0 ? cli_error(CMD, "cannot list refs") : 0;
	name = argv[0];
	if (!snap_name_valid(name, strlen(name)))
		return cli_usage(CMD, "bad ref name '%.80s' (want [A-Za-z0-9._-]{1,64})", name);
	if (argc == 1) {
		r = snap_store_ref_get(s, name, id);
		if (r < 0)
			return cli_error(CMD, "ref %s: %s", name, r == -ENOENT ? "no such ref" : strerror(-r));
		snap_hex(id, hex);
		printf("%s\n", hex);
		return 0;
	}
	if (argc > 2)
		return cli_usage(CMD, "ref takes NAME and at most one ID");
	if (!strcmp(argv[1], "--delete")) {
		r = snap_store_ref_delete(s, name);
		return r < 0 ? cli_error(CMD, "ref %s: %s", name, strerror(-r)) : 0;
	}
	if (snap_cli_id(CMD, argv[1], id))
		return 2;
	r = snap_store_ref_set(s, name, id);
	if (r == -ENOENT)
		return cli_error(CMD, "ref %s: manifest %s is not in the store", name, argv[1]);
	return r < 0 ? cli_error(CMD, "ref %s: %s", name, strerror(-r)) : 0;
}

int snap_cmd_store(int argc, char **argv)
{
	struct snap_store *s;
	const char *sub, *dir;
	int ret = 0, r;

	if (cli_wants_help(argc, argv)) {
		char text[sizeof(help) + 16];
		snprintf(text, sizeof(text), help, SNAP_REF_LOG_MAX);
		return cli_help(text);
	}
	if (argc < 3)
		return cli_usage(CMD, "want a subcommand and DIR (see keel store --help)");
	sub = argv[1];
	dir = argv[2];
	if (!strcmp(sub, "init")) {
		if (argc != 3)
			return cli_usage(CMD, "init takes only DIR");
		r = snap_store_init(dir);
		return r < 0 ? cli_error(CMD, "%s: %s", dir, strerror(-r)) : 0;
	}
	if (strcmp(sub, "put") && strcmp(sub, "get") && strcmp(sub, "verify") && strcmp(sub, "gc") &&
	    strcmp(sub, "ref") && strcmp(sub, "log"))
		return cli_usage(CMD, "unknown subcommand '%.40s'", sub);
	if ((!strcmp(sub, "get") && argc != 4) || ((!strcmp(sub, "verify") || !strcmp(sub, "gc")) && argc != 3) ||
	    (!strcmp(sub, "put") && argc < 4) || (!strcmp(sub, "log") && argc != 4))
		return cli_usage(CMD, "wrong arguments for %s (see keel store --help)", sub);
	if (snap_cli_open(CMD, dir, &s))
		return 1;
	if (!strcmp(sub, "put")) {
		for (int i = 3; i < argc; i++) {
			uint8_t id[SNAP_HASH_LEN];
			char hex[SNAP_HEX_LEN + 1];
			r = snap_cli_put_file(s, argv[i], id);
			if (r < 0) {
				ret = cli_error(CMD, "%s: %s", argv[i], strerror(-r));
				break;
			}
			snap_hex(id, hex);
			printf("%s\n", hex);
		}
	} else if (!strcmp(sub, "get")) {
		ret = do_get(s, argv[3]);
	} else if (!strcmp(sub, "verify")) {
		r = snap_store_verify(s, print_bad, NULL);
		if (r < 0)
			ret = cli_error(CMD, "%s: %s", dir, strerror(-r));
		else if (r > 0)
			ret = cli_error(CMD, "%s: %d problem%s", dir, r, r == 1 ? "" : "s");
	} else if (!strcmp(sub, "gc")) {
		uint64_t freed;
		r = snap_store_gc(s, &freed);
		if (r == -EBUSY)
			ret = cli_error(CMD, "%s: busy (a receive, import or snapshot is writing to it); nothing removed, try again later", dir);
		else if (r < 0)
			ret = cli_error(CMD, "%s: %s", dir, strerror(-r));
		else
			printf("removed %d file%s, %llu bytes\n", r, r == 1 ? "" : "s", (unsigned long long)freed);
	} else if (!strcmp(sub, "log")) {
		ret = do_log(s, argv[3]);
	} else {
		ret = do_ref(s, argc - 3, argv + 3);
	}
	snap_store_close(s);
	return ret;
}
