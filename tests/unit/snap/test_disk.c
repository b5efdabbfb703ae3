/* A manifest's read-only disk read from its chunk objects (snap/disk.c): zeros, chunk edges, corruption. */
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

#define CH 4096

/* A 3.5-chunk disk: chunk 0 'a's, chunk 1 absent (zeros), chunk 2 'c's, the short tail 'd's. */
static struct snap_store *s;
static struct snap_source src;
static struct snap_manifest_disk d;
static struct snap_manifest_chunk list[3];

static void put(unsigned idx, int byte, size_t len)
{
	uint8_t *b = malloc(len);

	memset(b, byte, len);
	list[d.nchunks].index = idx;
	if (snap_store_put_buf(s, SNAP_KIND_OBJECT, b, len, list[d.nchunks].id) < 0)
		t_fail(__FILE__, __LINE__, "put");
	d.nchunks++;
	free(b);
}

static void setup(const char *name)
{
	s = fx_store(name);
	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "root");
	d.bytes = 3 * CH + 2048;
	d.chunk_bytes = CH;
	d.chunks = list;
	put(0, 'a', CH);
	put(2, 'c', CH);
	put(3, 'd', 2048);
	snap_store_source(s, &src);
}

TEST(a_disk_reads_from_its_chunks_with_zeros_between_across_edges)
{
	struct snap_disk *k;
	uint8_t buf[3 * CH + 2048];
	char err[200];

	setup("disk-read");
	REQUIRE(snap_disk_open(&src, &d, &k, err, sizeof(err)) == 0);
	CHECK_EQ(snap_disk_bytes(k), 3 * CH + 2048);
	REQUIRE(snap_disk_read(k, buf, sizeof(buf), 0, err, sizeof(err)) == 0);
	CHECK(buf[0] == 'a' && buf[CH - 1] == 'a' && buf[CH] == 0 && buf[2 * CH - 1] == 0 && buf[2 * CH] == 'c' &&
	      buf[3 * CH] == 'd' && buf[sizeof(buf) - 1] == 'd');
	/* a read across a chunk edge, and one in the short tail */
	REQUIRE(snap_disk_read(k, buf, 10, CH - 5, err, sizeof(err)) == 0);
	CHECK(!memcmp(buf, "aaaaa\0\0\0\0\0", 10));
	REQUIRE(snap_disk_read(k, buf, 512, 3 * CH + 1536, err, sizeof(err)) == 0);
	CHECK(buf[0] == 'd' && buf[511] == 'd');
	/* past the end */
	CHECK_EQ(snap_disk_read(k, buf, 1, 3 * CH + 2048, err, sizeof(err)), -EINVAL);
	CHECK_EQ(snap_disk_read(k, buf, 2, 3 * CH + 2047, err, sizeof(err)), -EINVAL);
	snap_disk_close(k);
	snap_store_close(s);
}

/* The attack: a flipped byte in a chunk object (in the store); a chunk missing; a wrong length. */
TEST(a_corrupt_chunk_fails_its_reads_naming_the_object_and_the_rest_still_reads)
{
	struct snap_disk *k;
	uint8_t buf[CH];
	char err[200], hex[65], path[512];
	int fd;

	setup("disk-corrupt");
	REQUIRE(snap_disk_open(&src, &d, &k, err, sizeof(err)) == 0);
	snap_hex(list[1].id, hex);
	snprintf(path, sizeof(path), "%s/objects/%s", snap_store_dir(s), hex);
	chmod(path, 0644);
	fd = open(path, O_WRONLY);
	REQUIRE(fd >= 0 && pwrite(fd, "Z", 1, 100) == 1);
	close(fd);
	CHECK_EQ(snap_disk_read(k, buf, 16, 2 * CH + 200, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, hex) && strstr(err, "corrupt") && strstr(err, "disk root"));
	CHECK_EQ(snap_disk_read(k, buf, 16, 2 * CH, err, sizeof(err)), -EBADMSG);   /* stays refused */
	REQUIRE(snap_disk_read(k, buf, 16, 0, err, sizeof(err)) == 0);              /* the others read */
	CHECK_EQ(buf[0], 'a');
	snap_disk_close(k);
	/* a chunk the source lacks, or of the wrong length, refuses the disk when it opens */
	unlink(path);
	{
		char dir[400];

		snprintf(dir, sizeof(dir), "%s", snap_store_dir(s));
		snap_store_close(s);   /* the store keeps what it located open: a fresh one */
		REQUIRE(snap_store_open(dir, &s) == 0);
		snap_store_source(s, &src);
	}
	CHECK(snap_disk_open(&src, &d, &k, err, sizeof(err)) < 0);
	CHECK(strstr(err, hex) != NULL);
	list[1] = list[0];
	list[1].index = 2;
	d.bytes = 3 * CH + 2048;
	REQUIRE(snap_disk_open(&src, &d, &k, err, sizeof(err)) == 0);   /* chunk 2 = chunk 0's bytes: fine */
	snap_disk_close(k);
	list[2] = list[0];
	list[2].index = 3;                                               /* a whole chunk as the short tail */
	CHECK_EQ(snap_disk_open(&src, &d, &k, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "wrong length") != NULL);
	snap_store_close(s);
}
