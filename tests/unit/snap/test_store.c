/* The directory store: paths from ids only, write-once, verified reads, atomic refs, verify and gc. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snap.h"
#include "tests/harness.h"
#include "tests/unit/snap/fixtures.h"

static void path_of(struct snap_store *s, const char *sub, const uint8_t id[32], char *out, size_t n)
{
	char hex[65];

	snap_hex(id, hex);
	snprintf(out, n, "%s/%s/%s", snap_store_dir(s), sub, hex);
}

/* Overwrites the first byte in place (objects are 0444; the test owns the store). */
static void corrupt(const char *path)
{
	int fd;

	chmod(path, 0644);
	fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, "Z", 1, 0) != 1)
		t_fail(__FILE__, __LINE__, "cannot damage %s", path);
	if (fd >= 0)
		close(fd);
}

struct bad_list {
	char paths[8][128];
	int errs[8];
	int n;
};

static void collect_bad(void *arg, const char *path, int err)
{
	struct bad_list *b = arg;

	if (b->n < 8) {
		snprintf(b->paths[b->n], sizeof(b->paths[0]), "%s", path);
		b->errs[b->n] = err;
	}
	b->n++;
}

TEST(put_files_the_object_under_its_hex_id_and_get_verifies_it)
{
	struct snap_store *s = fx_store("s");
	uint8_t id[32], want[32], *buf;
	char path[600];
	size_t len;
	struct stat st;

	REQUIRE(s);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "hello", 5, id) == 0);
	snap_b3_hash("hello", 5, 1, want);
	CHECK(!memcmp(id, want, 32));
	path_of(s, "objects", id, path, sizeof(path));
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 5);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, id), 1);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, id), 0);
	REQUIRE(snap_store_get(s, SNAP_KIND_OBJECT, id, &buf, &len) == 0);
	CHECK(len == 5 && !memcmp(buf, "hello", 5));
	free(buf);
	/* write-once: the same bytes again change nothing */
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "hello", 5, id) == 0);
	CHECK_EQ(fx_temps(s), 0);
	snap_store_close(s);
}

TEST(every_read_reverifies_and_names_the_corrupt_id)
{
	struct snap_store *s = fx_store("s");
	struct snap_source src;
	struct bad_list bad = { 0 };
	uint8_t id[32], *buf;
	char path[600], hex[65];
	size_t len;

	REQUIRE(s);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "precious", 8, id) == 0);
	path_of(s, "objects", id, path, sizeof(path));
	corrupt(path);
	CHECK_EQ(snap_store_get(s, SNAP_KIND_OBJECT, id, &buf, &len), -EBADMSG);
	snap_store_source(s, &src);
	CHECK_EQ(snap_source_check(&src, SNAP_KIND_OBJECT, id), -EBADMSG);
	CHECK_EQ(snap_store_verify(s, collect_bad, &bad), 1);
	snap_hex(id, hex);
	CHECK(strstr(bad.paths[0], hex) != NULL);
	CHECK_EQ(bad.errs[0], -EBADMSG);
	snap_store_close(s);
}

TEST(streaming_writer_commits_only_on_matching_hash)
{
	struct snap_store *s = fx_store("s");
	struct snap_store_writer w;
	uint8_t want[32], other[32], got[32];

	REQUIRE(s);
	snap_b3_hash("abcdef", 6, 1, want);
	snap_b3_hash("zzz", 3, 1, other);
	REQUIRE(snap_store_begin(s, &w) == 0);
	CHECK_EQ(fx_temps(s), 1);                 /* staged beside the final path */
	REQUIRE(snap_store_write(&w, "abc", 3) == 0);
	REQUIRE(snap_store_write(&w, "def", 3) == 0);
	CHECK_EQ(snap_store_commit(&w, other, got), -EBADMSG);
	CHECK(!memcmp(got, want, 32));
	CHECK_EQ(fx_temps(s), 0);                 /* the mismatch removed the staged bytes */
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, other), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, want), 0);

	REQUIRE(snap_store_begin(s, &w) == 0);
	REQUIRE(snap_store_write(&w, "abcdef", 6) == 0);
	CHECK_EQ(snap_store_commit(&w, want, NULL), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, want), 1);
	CHECK_EQ(fx_temps(s), 0);

	REQUIRE(snap_store_begin(s, &w) == 0);
	snap_store_abort(&w);
	CHECK_EQ(fx_temps(s), 0);
	snap_store_close(s);
}

TEST(ref_names_are_validated)
{
	static const char *const bad[] = { "", ".", "..", "a/b", "../x", "x y", "ä",
		"0123456789012345678901234567890123456789012345678901234567890123456789" };
	struct snap_store *s = fx_store("s");
	uint8_t keep[32], id[32];

	REQUIRE(s);
	fx_seed(s, keep);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(snap_store_ref_set(s, bad[i], keep), -EINVAL);
		CHECK_EQ(snap_store_ref_get(s, bad[i], id), -EINVAL);
	}
	CHECK_EQ(snap_store_ref_set(s, "Ok.name_1-2", keep), 0);
	CHECK(fx_intact(s, keep));
	snap_store_close(s);
}

TEST(refs_point_only_at_present_manifests_and_move_atomically)
{
	struct snap_store *s = fx_store("s");
	uint8_t keep[32], ghost[32], id[32], obj[32], m2[32];
	char *t, err[256];
	size_t l;

	REQUIRE(s);
	fx_seed(s, keep);
	snap_b3_hash("no such manifest", 16, 1, ghost);
	CHECK_EQ(snap_store_ref_set(s, "keep", ghost), -ENOENT);
	REQUIRE(snap_store_ref_get(s, "keep", id) == 0);
	CHECK(!memcmp(id, keep, 32));
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "v2", 2, obj) == 0);
	t = fx_manifest_text("keep", obj, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, m2, NULL, 0) == 0);
	CHECK_EQ(snap_store_activate(s, m2, NULL, err, sizeof(err)), 0);      /* ref <manifest name> -> m2 */
	REQUIRE(snap_store_ref_get(s, "keep", id) == 0);
	CHECK(!memcmp(id, m2, 32));
	CHECK_EQ(fx_temps(s), 0);
	CHECK_EQ(snap_store_ref_get(s, "absent", id), -ENOENT);
	CHECK_EQ(snap_store_ref_delete(s, "keep"), 0);
	CHECK_EQ(snap_store_ref_get(s, "keep", id), -ENOENT);
	free(t);
	snap_store_close(s);
}

TEST(a_damaged_ref_reads_as_corrupt)
{
	struct snap_store *s = fx_store("s");
	uint8_t keep[32], id[32];
	char path[600];

	REQUIRE(s);
	fx_seed(s, keep);
	snprintf(path, sizeof(path), "%s/refs/keep", snap_store_dir(s));
	REQUIRE(t_write_file(path, "not-a-hex64\n", 12) == 0);
	CHECK_EQ(snap_store_ref_get(s, "keep", id), -EBADMSG);
	CHECK_EQ(snap_store_verify(s, NULL, NULL), 1);
	snap_store_close(s);
}

TEST(manifest_refused_unless_every_object_it_names_is_present)
{
	struct snap_store *s = fx_store("s");
	uint8_t ghost[32], id[32];
	char *t, err[200], hex[65];
	size_t l;

	REQUIRE(s);
	snap_b3_hash("absent", 6, 1, ghost);
	t = fx_manifest_text("box", ghost, &l);
	CHECK_EQ(snap_store_put_manifest(s, t, l, id, err, sizeof(err)), -ENOENT);
	snap_hex(ghost, hex);
	CHECK(strstr(err, hex) != NULL);
	CHECK_EQ(snap_store_put_buf(s, SNAP_KIND_MANIFEST, "keel-manifest 9\n", 16, id), -EINVAL);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "absent", 6, ghost) == 0);
	CHECK_EQ(snap_store_put_manifest(s, t, l, id, err, sizeof(err)), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, id), 1);
	free(t);
	snap_store_close(s);
}

TEST(gc_keeps_what_refs_and_parent_chains_reach_and_drops_the_rest)
{
	struct snap_store *s = fx_store("s");
	struct snap_manifest m;
	uint8_t o_old[32], o_new[32], o_orphan[32], m_old[32], m_new[32], m_orphan[32];
	char *t, *t2;
	size_t l, l2;
	uint64_t freed;

	REQUIRE(s);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "old", 3, o_old) == 0);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "new", 3, o_new) == 0);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "orphan", 6, o_orphan) == 0);
	t = fx_manifest_text("box", o_old, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, m_old, NULL, 0) == 0);
	free(t);
	t = fx_manifest_text("box", o_new, &l);
	REQUIRE(snap_manifest_parse(t, l, &m, NULL, 0) == 0);
	m.has_parent = 1;                      /* new's parent is old: rollback needs old's objects */
	memcpy(m.parent, m_old, 32);
	REQUIRE(snap_manifest_format(&m, &t2, &l2) == 0);
	snap_manifest_free(&m);
	REQUIRE(snap_store_put_manifest(s, t2, l2, m_new, NULL, 0) == 0);
	free(t);
	free(t2);
	t = fx_manifest_text("other", o_orphan, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, m_orphan, NULL, 0) == 0);
	free(t);
	REQUIRE(snap_store_ref_set(s, "box", m_new) == 0);

	CHECK_EQ(snap_store_gc(s, &freed), 2);  /* the orphan object and its manifest */
	CHECK(freed > 6);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, o_old), 1);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, o_new), 1);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, m_old), 1);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, m_new), 1);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, o_orphan), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, m_orphan), 0);
	CHECK_EQ(snap_store_verify(s, NULL, NULL), 0);
	snap_store_close(s);
}

TEST(gc_removes_nothing_when_a_ref_cannot_be_read)
{
	struct snap_store *s = fx_store("s");
	uint8_t keep[32], loose[32];
	char path[600];

	REQUIRE(s);
	fx_seed(s, keep);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "loose", 5, loose) == 0);
	snprintf(path, sizeof(path), "%s/refs/broken", snap_store_dir(s));
	REQUIRE(t_write_file(path, "garbage", 7) == 0);
	CHECK(snap_store_gc(s, NULL) < 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_OBJECT, loose), 1);
	snap_store_close(s);
}

TEST(verify_names_stray_files_and_manifests_missing_objects)
{
	struct snap_store *s = fx_store("s");
	struct bad_list bad = { 0 };
	uint8_t keep[32], obj[32];
	char path[600];

	REQUIRE(s);
	fx_seed(s, keep);
	CHECK_EQ(snap_store_verify(s, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/objects/evil-name", snap_store_dir(s));
	REQUIRE(t_write_file(path, "x", 1) == 0);
	snap_b3_hash("keep-object", 11, 1, obj);
	path_of(s, "objects", obj, path, sizeof(path));
	REQUIRE(unlink(path) == 0);
	CHECK_EQ(snap_store_verify(s, collect_bad, &bad), 2);
	CHECK(strstr(bad.paths[0], "evil-name") || strstr(bad.paths[1], "evil-name"));
	CHECK(!strncmp(bad.paths[0], "manifests/", 10) || !strncmp(bad.paths[1], "manifests/", 10));
	snap_store_close(s);
}

TEST(source_locates_by_id_and_resolves_names_and_ids)
{
	struct snap_store *s = fx_store("s");
	struct snap_source src;
	uint8_t keep[32], obj[32], id[32], *buf;
	uint64_t off, len;
	size_t blen;
	char hex[65], data[16];
	int fd;

	REQUIRE(s);
	fx_seed(s, keep);
	snap_store_source(s, &src);
	snap_b3_hash("keep-object", 11, 1, obj);
	REQUIRE(src.locate(src.ctx, SNAP_KIND_OBJECT, obj, &fd, &off, &len) == 0);
	CHECK_EQ(off, 0);
	CHECK_EQ(len, 11);
	CHECK(pread(fd, data, 11, 0) == 11 && !memcmp(data, "keep-object", 11));
	REQUIRE(snap_source_read(&src, SNAP_KIND_OBJECT, obj, &buf, &blen) == 0);
	CHECK(blen == 11 && !memcmp(buf, "keep-object", 11));
	free(buf);
	CHECK_EQ(src.locate(src.ctx, SNAP_KIND_MANIFEST, obj, &fd, &off, &len), -ENOENT);
	REQUIRE(snap_source_resolve(&src, "keep", id) == 0);
	CHECK(!memcmp(id, keep, 32));
	snap_hex(keep, hex);
	REQUIRE(snap_source_resolve(&src, hex, id) == 0);
	CHECK(!memcmp(id, keep, 32));
	CHECK_EQ(snap_source_resolve(&src, "no-such-ref", id), -ENOENT);
	CHECK_EQ(snap_source_resolve(&src, "../../etc", id), -EINVAL);
	snap_store_close(s);
}

TEST(init_is_idempotent_and_open_needs_all_three_parts)
{
	char path[512], sub[600];
	struct snap_store *s;

	snprintf(path, sizeof(path), "%s/st", t_tmpdir());
	REQUIRE(snap_store_init(path) == 0);
	REQUIRE(snap_store_init(path) == 0);
	REQUIRE(snap_store_open(path, &s) == 0);
	snap_store_close(s);
	snprintf(sub, sizeof(sub), "%s/refs", path);
	REQUIRE(rmdir(sub) == 0);
	CHECK_EQ(snap_store_open(path, &s), -ENOTDIR);
}

TEST(locate_keeps_every_fd_valid_past_the_soft_fd_limit)
{
	struct snap_store *s = fx_store("s");
	struct snap_source src;
	struct rlimit rl;
	uint8_t ids[200][32];
	int fds[200];

	REQUIRE(s);
	REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 512)
		t_skip("hard fd limit %llu is too low to test raising the soft one", (unsigned long long)rl.rlim_max);
	for (int i = 0; i < 200; i++) {
		char data[16];
		snprintf(data, sizeof(data), "object %d", i);
		REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, data, strlen(data), ids[i]) == 0);
	}
	rl.rlim_cur = 64;
	REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	snap_store_source(s, &src);
	for (int i = 0; i < 200; i++) {
		uint64_t off, len;
		REQUIRE(src.locate(src.ctx, SNAP_KIND_OBJECT, ids[i], &fds[i], &off, &len) == 0);
	}
	/* the first fd is still the first object */
	{
		char buf[16] = { 0 };
		CHECK(pread(fds[0], buf, sizeof(buf) - 1, 0) == 8 && !strcmp(buf, "object 0"));
	}
	snap_store_close(s);
}

TEST(gc_removes_stale_temp_files_but_not_fresh_ones)
{
	struct snap_store *s = fx_store("s");
	struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
	char stale[600], fresh[600];

	REQUIRE(s);
	snprintf(stale, sizeof(stale), "%s/objects/~tmp-1-1-deadbeef", snap_store_dir(s));
	snprintf(fresh, sizeof(fresh), "%s/objects/~tmp-1-2-deadbeef", snap_store_dir(s));
	REQUIRE(t_write_file(stale, "left by a crash", 15) == 0);
	REQUIRE(t_write_file(fresh, "a write in progress", 19) == 0);
	REQUIRE(utimensat(AT_FDCWD, stale, old, 0) == 0);
	CHECK_EQ(snap_store_verify(s, NULL, NULL), 0);   /* temp files are not objects */
	CHECK_EQ(snap_store_gc(s, NULL), 1);
	CHECK(access(stale, F_OK) != 0);
	CHECK(access(fresh, F_OK) == 0);
	snap_store_close(s);
}

/* A source whose index claims a terabyte for every item (a forged image index). */
static int huge_locate(void *ctx, int kind, const uint8_t id[SNAP_HASH_LEN], int *fd, uint64_t *off, uint64_t *len)
{
	(void)ctx, (void)kind, (void)id;
	*fd = 0;
	*off = 0;
	*len = 1ULL << 40;
	return 0;
}

TEST(a_huge_claimed_length_is_refused_before_any_allocation)
{
	struct snap_source src = { .locate = huge_locate };
	uint8_t id[SNAP_HASH_LEN] = { 0 }, *buf = NULL;
	size_t len = 0;

	/* under ASan a terabyte malloc aborts the test: reaching the checks proves none was made */
	CHECK_EQ(snap_source_read(&src, SNAP_KIND_MANIFEST, id, &buf, &len), -EFBIG);
	CHECK_EQ(snap_source_read_max(&src, SNAP_KIND_OBJECT, id, 4U << 20, &buf, &len), -EFBIG);
	CHECK(buf == NULL);
}

TEST(activation_refuses_replays_and_downgrades_and_the_floor_survives_reopening)
{
	struct snap_store *s = fx_store("s");
	uint8_t obj[32], v1[32], v2[32], v3[32], same[32], id[32];
	uint64_t floor = 0;
	char *t, err[256];
	size_t l;

	REQUIRE(s);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "o", 1, obj) == 0);
	t = fx_manifest_text_at("web", obj, 1000, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, v1, NULL, 0) == 0);
	free(t);
	t = fx_manifest_text_at("web", obj, 2000, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, v2, NULL, 0) == 0);
	free(t);
	t = fx_manifest_text_at("web", obj, 3000, &l);
	REQUIRE(snap_store_put_manifest(s, t, l, v3, NULL, 0) == 0);
	free(t);
	CHECK_EQ(snap_store_floor_get(s, "web", &floor), -ENOENT);
	CHECK_EQ(snap_store_activate(s, v1, NULL, err, sizeof(err)), 0);
	CHECK_EQ(snap_store_activate(s, v2, NULL, err, sizeof(err)), 0);
	CHECK_EQ(snap_store_activate(s, v2, NULL, err, sizeof(err)), 0);   /* the current ref again: nothing moves */
	/* the replay of v1: refused in one line naming both versions, ref unchanged */
	err[0] = 0;
	CHECK_EQ(snap_store_activate(s, v1, NULL, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "1000") && strstr(err, "2000") && !strchr(err, '\n'));
	REQUIRE(snap_store_ref_get(s, "web", id) == 0);
	CHECK(!memcmp(id, v2, 32));
	/* a different manifest of the same version is no newer either */
	{
		uint8_t o2[32];

		REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "p", 1, o2) == 0);
		t = fx_manifest_text_at("web", o2, 2000, &l);
		REQUIRE(snap_store_put_manifest(s, t, l, same, NULL, 0) == 0);
		free(t);
		CHECK_EQ(snap_store_activate(s, same, NULL, err, sizeof(err)), -ESTALE);
	}
	/* PID 1's own rollback moves the ref back; the floor stays, and a peer cannot follow */
	REQUIRE(snap_store_ref_set(s, "web", v1) == 0);
	snap_store_close(s);
	s = fx_store("s");
	REQUIRE(s);
	CHECK_EQ(snap_store_floor_get(s, "web", &floor), 0);
	CHECK_EQ(floor, 2000);
	CHECK_EQ(snap_store_activate(s, v2, NULL, err, sizeof(err)), -ESTALE);
	CHECK_EQ(snap_store_activate(s, v3, NULL, err, sizeof(err)), 0);
	REQUIRE(snap_store_ref_get(s, "web", id) == 0);
	CHECK(!memcmp(id, v3, 32));
	CHECK_EQ(snap_store_floor_raise(s, "web", 5), 0);   /* never lowered */
	CHECK_EQ(snap_store_floor_get(s, "web", &floor), 0);
	CHECK_EQ(floor, 3000);
	CHECK_EQ(fx_temps(s), 0);
	snap_store_close(s);
}
