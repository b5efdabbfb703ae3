/* Ref histories: every ref move is recorded, bounded, parsed defensively, kept by gc, dropped with the ref. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snap.h"
#include "tests/harness.h"
#include "tests/unit/snap/fixtures.h"

/* A manifest named name over a fresh object "payload-N": distinct ids per n. */
static void put_version(struct snap_store *s, const char *name, int n, uint8_t id[SNAP_HASH_LEN])
{
	uint8_t obj[SNAP_HASH_LEN];
	char payload[32];
	size_t len;
	char *text;
	int plen = snprintf(payload, sizeof(payload), "payload-%d", n);

	if (snap_store_put_buf(s, SNAP_KIND_OBJECT, payload, (size_t)plen, obj) < 0)
		abort();
	text = fx_manifest_text(name, obj, &len);
	if (!text || snap_store_put_manifest(s, text, len, id, NULL, 0) < 0)
		abort();
	free(text);
}

static void log_path(struct snap_store *s, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/logs/%s", snap_store_dir(s), name);
}

TEST(every_ref_move_is_recorded_oldest_first_and_repeats_are_not)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t v1[32], v2[32], v3[32];
	int bad = -1;

	REQUIRE(s);
	put_version(s, "web", 1, v1);
	put_version(s, "web", 2, v2);
	put_version(s, "web", 3, v3);
	CHECK_EQ(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, &bad), 0);
	REQUIRE(snap_store_ref_set(s, "web", v1) == 0);
	REQUIRE(snap_store_ref_set(s, "web", v2) == 0);
	REQUIRE(snap_store_ref_set(s, "web", v2) == 0);
	REQUIRE(snap_store_ref_set(s, "web", v3) == 0);
	REQUIRE(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, &bad) == 3);
	CHECK_EQ(bad, 0);
	CHECK(!memcmp(e[0].id, v1, 32));
	CHECK(!memcmp(e[1].id, v2, 32));
	CHECK(!memcmp(e[2].id, v3, 32));
	CHECK(e[0].time > 1600000000 && e[2].time >= e[0].time);
	CHECK_EQ(fx_temps(s), 0);
	snap_store_close(s);
}

TEST(history_keeps_only_the_newest_entries)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t ids[SNAP_REF_LOG_MAX + 5][32];
	struct stat st;
	char path[600];

	REQUIRE(s);
	for (int i = 0; i < SNAP_REF_LOG_MAX + 5; i++) {
		put_version(s, "web", i, ids[i]);
		REQUIRE(snap_store_ref_set(s, "web", ids[i]) == 0);
	}
	REQUIRE(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, NULL) == SNAP_REF_LOG_MAX);
	CHECK(!memcmp(e[0].id, ids[5], 32));
	CHECK(!memcmp(e[SNAP_REF_LOG_MAX - 1].id, ids[SNAP_REF_LOG_MAX + 4], 32));
	log_path(s, "web", path, sizeof(path));
	REQUIRE(stat(path, &st) == 0);
	CHECK(st.st_size <= SNAP_REF_LOG_MAX * (64 + 1 + 20 + 1));
	snap_store_close(s);
}

TEST(a_ref_from_before_histories_opens_its_history_with_time_zero)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t v1[32], v2[32];
	char path[600];

	REQUIRE(s);
	put_version(s, "web", 1, v1);
	put_version(s, "web", 2, v2);
	REQUIRE(snap_store_ref_set(s, "web", v1) == 0);
	/* As a store made before logs/ existed: ref present, no history. */
	snprintf(path, sizeof(path), "rm -rf '%s/logs'", snap_store_dir(s));
	REQUIRE(t_sh("%s", path) == 0);
	snap_store_close(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/s", t_tmpdir());
	REQUIRE(snap_store_open(path, &s) == 0);
	REQUIRE(snap_store_ref_set(s, "web", v2) == 0);
	REQUIRE(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, NULL) == 2);
	CHECK(!memcmp(e[0].id, v1, 32));
	CHECK_EQ(e[0].time, 0);
	CHECK(!memcmp(e[1].id, v2, 32));
	snap_store_close(s);
}

TEST(malformed_history_lines_are_skipped_and_counted)
{
	struct snap_ref_log_entry e[4];
	char hex[65], buf[1024];
	uint8_t a[32], b[32];
	int bad = 0, n;

	memset(a, 0x11, 32);
	memset(b, 0x22, 32);
	snap_hex(a, hex);
	n = snprintf(buf, sizeof(buf),
		     "%s 100\n"                  /* good */
		     "garbage\n"
		     "%.63s 5\n"                 /* short id */
		     "%s 99999999999999999999\n" /* time overflows 64 bits */
		     "%s -1\n"
		     "%s 7 extra\n"
		     "\n",
		     hex, hex, hex, hex, hex);
	snap_hex(b, hex);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s 200\n%s 300", hex, hex); /* last: no newline */
	CHECK_EQ(snap_ref_log_parse(buf, (size_t)n, e, 4, &bad), 2);
	CHECK_EQ(bad, 7);
	CHECK(!memcmp(e[0].id, a, 32));
	CHECK_EQ(e[0].time, 100);
	CHECK(!memcmp(e[1].id, b, 32));
	CHECK_EQ(e[1].time, 200);
	/* Bytes that are not text at all. */
	memset(buf, 0, 200);
	CHECK_EQ(snap_ref_log_parse(buf, 200, e, 4, &bad), 0);
	CHECK_EQ(bad, 1);
}

TEST(a_corrupt_history_file_does_not_stop_the_next_ref_move)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t v1[32], v2[32];
	char path[600];
	int bad = 0;

	REQUIRE(s);
	put_version(s, "web", 1, v1);
	put_version(s, "web", 2, v2);
	REQUIRE(snap_store_ref_set(s, "web", v1) == 0);
	log_path(s, "web", path, sizeof(path));
	chmod(path, 0644);
	REQUIRE(t_sh("printf 'not a line\\n\\001\\002\\n' >> '%s'", path) == 0);
	REQUIRE(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, &bad) == 1);
	CHECK_EQ(bad, 2);
	REQUIRE(snap_store_ref_set(s, "web", v2) == 0);
	REQUIRE(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, &bad) == 2);
	CHECK_EQ(bad, 0);   /* rewritten whole: the bad lines are gone */
	CHECK(!memcmp(e[1].id, v2, 32));
	snap_store_close(s);
}

TEST(gc_keeps_snapshots_the_history_names_and_delete_drops_the_history)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	uint8_t v1[32], v2[32];
	char path[600];

	REQUIRE(s);
	put_version(s, "web", 1, v1);
	put_version(s, "web", 2, v2);
	REQUIRE(snap_store_ref_set(s, "web", v1) == 0);
	REQUIRE(snap_store_ref_set(s, "web", v2) == 0);
	CHECK_EQ(snap_store_gc(s, NULL), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, v1), 1);
	REQUIRE(snap_store_ref_delete(s, "web") == 0);
	CHECK_EQ(snap_store_ref_log(s, "web", e, SNAP_REF_LOG_MAX, NULL), 0);
	log_path(s, "web", path, sizeof(path));
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECK(snap_store_gc(s, NULL) > 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, v1), 0);
	CHECK_EQ(snap_store_has(s, SNAP_KIND_MANIFEST, v2), 0);
	snap_store_close(s);
}

TEST(history_of_a_bad_name_is_refused)
{
	struct snap_store *s = fx_store("s");
	struct snap_ref_log_entry e[2];

	REQUIRE(s);
	CHECK_EQ(snap_store_ref_log(s, "../x", e, 2, NULL), -EINVAL);
	CHECK_EQ(snap_store_ref_log(s, "", e, 2, NULL), -EINVAL);
	snap_store_close(s);
}
