/* The partition image: build from a store, read back through snap_source, refuse every corruption. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "snap/snap.h"
#include "tests/harness.h"

static char dir[512], img_path[600], err[256];
static uint8_t man1[SNAP_HASH_LEN], man2[SNAP_HASH_LEN];
static uint8_t obj_a[SNAP_HASH_LEN], obj_b[SNAP_HASH_LEN];

/* A store with ref "web" -> man2 (parent man1); each manifest names its own memory chunk. */
static int make_store(struct snap_store **out)
{
	struct snap_store *s;
	struct snap_manifest m;
	uint8_t chunk[4096];
	char *text;
	size_t len;
	int rc;

	snprintf(dir, sizeof(dir), "%s/store", t_tmpdir());
	if (snap_store_init(dir) || snap_store_open(dir, &s))
		return -1;
	memset(chunk, 0xa5, sizeof(chunk));
	if (snap_store_put_buf(s, SNAP_KIND_OBJECT, chunk, sizeof(chunk), obj_a))
		return -1;
	memset(chunk, 0x5a, sizeof(chunk));
	if (snap_store_put_buf(s, SNAP_KIND_OBJECT, chunk, 100, obj_b))
		return -1;
	for (int i = 0; i < 2; i++) {
		snap_manifest_init(&m);
		snprintf(m.name, sizeof(m.name), "web");
		m.created = 100 + 100 * (uint64_t)i;
		m.memory_bytes = 8192;
		m.chunk_bytes = 4096;
		m.chunks = calloc(1, sizeof(*m.chunks));
		m.nchunks = 1;
		m.chunks[0].index = (uint64_t)i;
		memcpy(m.chunks[0].id, i ? obj_b : obj_a, SNAP_HASH_LEN);
		memcpy(m.vcpu[0], obj_a, SNAP_HASH_LEN);
		memcpy(m.vm_state, obj_a, SNAP_HASH_LEN);
		memcpy(m.devices, obj_b, SNAP_HASH_LEN);
		if (i) {
			m.has_parent = 1;
			memcpy(m.parent, man1, SNAP_HASH_LEN);
		}
		rc = snap_manifest_format(&m, &text, &len);
		snap_manifest_free(&m);
		if (rc)
			return -1;
		rc = snap_store_put_manifest(s, text, len, i ? man2 : man1, err, sizeof(err));
		free(text);
		if (rc)
			return -1;
	}
	if (snap_store_ref_set(s, "web", man2))
		return -1;
	*out = s;
	return 0;
}

static int build(struct snap_store *s, const struct snap_privkey *key, struct snap_image *parent, const char *out)
{
	struct snap_image_build_opts o;

	memset(&o, 0, sizeof(o));
	o.store = s;
	o.key = key;
	o.parent = parent;
	o.out = out;
	return snap_image_build(&o, err, sizeof(err));
}

static void flip(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	if (fd < 0 || pread(fd, &b, 1, at) != 1)
		abort();
	b ^= 0x40;
	if (pwrite(fd, &b, 1, at) != 1)
		abort();
	close(fd);
}

static off_t file_size(const char *path)
{
	int fd = open(path, O_RDONLY);
	off_t n = lseek(fd, 0, SEEK_END);

	close(fd);
	return n;
}

TEST(image_round_trip_through_snap_source)
{
	struct snap_store *s;
	struct snap_image *img;
	struct snap_image_info info;
	struct snap_source src;
	uint8_t id[SNAP_HASH_LEN], *buf;
	size_t len;
	int fd;
	uint64_t off, l;

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/snap.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_get_info(img, &info);
	CHECK_EQ(info.version, SNAP_IMAGE_VERSION);
	CHECK_EQ(info.generation, 1);
	CHECK_EQ(info.nrefs, 1);
	CHECK_EQ(info.nobjects, 4);            /* 2 manifests (chain) + 2 objects */
	CHECK_EQ(info.size % 4096, 0);
	CHECK_EQ(info.size, (uint64_t)file_size(img_path));
	snap_image_source(img, &src);
	REQUIRE(src.ref(src.ctx, "web", id) == 0);
	CHECK(!memcmp(id, man2, SNAP_HASH_LEN));
	CHECK_EQ(src.ref(src.ctx, "nope", id), -ENOENT);
	REQUIRE(src.locate(src.ctx, SNAP_KIND_OBJECT, obj_a, &fd, &off, &l) == 0);
	CHECK_EQ(off % 4096, 0);
	CHECK_EQ(l, 4096);
	CHECK_EQ(src.locate(src.ctx, SNAP_KIND_MANIFEST, obj_a, &fd, &off, &l), -ENOENT);
	REQUIRE(snap_source_read(&src, SNAP_KIND_MANIFEST, man1, &buf, &len) == 0);
	free(buf);
	CHECK_EQ(snap_source_check(&src, SNAP_KIND_OBJECT, obj_b), 0);
	CHECK_EQ(snap_image_check_sig(img, NULL, 0), -ENOKEY);
	snap_image_close(img);
	snap_store_close(s);
}

TEST(image_signature_checks_the_key)
{
	struct snap_store *s;
	struct snap_privkey k1, k2;
	struct snap_image *img;

	REQUIRE(make_store(&s) == 0);
	REQUIRE(snap_key_generate(&k1) == 0);
	REQUIRE(snap_key_generate(&k2) == 0);
	snprintf(img_path, sizeof(img_path), "%s/signed.img", t_tmpdir());
	REQUIRE(build(s, &k1, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	CHECK_EQ(snap_image_check_sig(img, &k1.pub, 1), 0);
	CHECK_EQ(snap_image_check_sig(img, &k2.pub, 1), -ENOKEY);
	snap_image_close(img);
	/* The signature block itself is outside the checksum: a flip there is a bad signature. */
	struct snap_image_info info;
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_get_info(img, &info);
	snap_image_close(img);
	int fd = open(img_path, O_RDONLY);
	uint8_t hdr[4096];
	REQUIRE(pread(fd, hdr, sizeof(hdr), 0) == 4096);
	close(fd);
	uint64_t sig_off = 0;
	for (int i = 0; i < 8; i++)
		sig_off |= (uint64_t)hdr[88 + i] << (8 * i);
	flip(img_path, (off_t)sig_off + 40);
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	CHECK_EQ(snap_image_check_sig(img, &k1.pub, 1), -EKEYREJECTED);
	snap_image_close(img);
	snap_store_close(s);
}

TEST(image_every_header_and_index_byte_is_covered)
{
	struct snap_store *s;
	struct snap_image *img;
	char copy[700];
	uint64_t data_off = 0;
	uint8_t hdr[4096];
	int fd, refused = 0, tried = 0;

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/snap.img", t_tmpdir());
	snprintf(copy, sizeof(copy), "%s/copy.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	fd = open(img_path, O_RDONLY);
	REQUIRE(pread(fd, hdr, sizeof(hdr), 0) == 4096);
	close(fd);
	for (int i = 0; i < 8; i++)
		data_off |= (uint64_t)hdr[104 + i] << (8 * i);
	/* Every byte before the first object: header, table, index, metadata, padding. */
	off_t size = file_size(img_path);
	uint8_t *whole = malloc((size_t)size);
	REQUIRE(whole);
	fd = open(img_path, O_RDONLY);
	REQUIRE(pread(fd, whole, (size_t)size, 0) == size);
	close(fd);
	for (uint64_t at = 0; at < data_off; at++) {
		whole[at] ^= 0x40;
		REQUIRE(t_write_file(copy, whole, (size_t)size) == 0);
		whole[at] ^= 0x40;
		tried++;
		if (snap_image_open(copy, &img, err, sizeof(err)) < 0)
			refused++;
		else
			snap_image_close(img);
	}
	free(whole);
	CHECK_EQ(refused, tried);
	CHECK(tried >= 4096);
	snap_store_close(s);
}

TEST(image_refuses_unknown_version_and_truncation)
{
	struct snap_store *s;
	struct snap_image *img;
	char copy[700];

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/snap.img", t_tmpdir());
	snprintf(copy, sizeof(copy), "%s/copy.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	REQUIRE(t_sh("cp %s %s", img_path, copy) == 0);
	flip(copy, 8);
	CHECK_EQ(snap_image_open(copy, &img, err, sizeof(err)), -EPROTONOSUPPORT);
	CHECK(strstr(err, "version"));
	for (off_t cut = file_size(img_path) - 1; cut > 0; cut -= 1000) {
		REQUIRE(t_sh("head -c %lld %s > %s", (long long)cut, img_path, copy) == 0);
		CHECK(snap_image_open(copy, &img, err, sizeof(err)) < 0);
	}
	REQUIRE(t_sh(": > %s", copy) == 0);
	CHECK_EQ(snap_image_open(copy, &img, err, sizeof(err)), -ENODATA);
	CHECK(strstr(err, "truncated"));
	CHECK_EQ(snap_image_open("/nonexistent.img", &img, err, sizeof(err)), -ENOENT);
	snap_store_close(s);
}

TEST(image_flipped_object_byte_fails_its_hash_only)
{
	struct snap_store *s;
	struct snap_image *img;
	struct snap_source src;
	int fd;
	uint64_t off, len;

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/snap.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_source(img, &src);
	REQUIRE(src.locate(src.ctx, SNAP_KIND_OBJECT, obj_b, &fd, &off, &len) == 0);
	snap_image_close(img);
	flip(img_path, (off_t)(off + len - 1));
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_source(img, &src);
	CHECK_EQ(snap_source_check(&src, SNAP_KIND_OBJECT, obj_b), -EBADMSG);
	CHECK_EQ(snap_source_check(&src, SNAP_KIND_OBJECT, obj_a), 0);
	snap_image_close(img);
	snap_store_close(s);
}

/* Attack: an image built on top of the one in the field that moves a ref back to an older manifest. */
TEST(image_thin_child_cannot_take_a_ref_back)
{
	struct snap_store *s;
	struct snap_image *parent;
	struct snap_image_build_opts o;
	char thin_path[700];

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/base.img", t_tmpdir());
	snprintf(thin_path, sizeof(thin_path), "%s/old.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &parent, err, sizeof(err)) == 0);
	REQUIRE(snap_store_ref_set(s, "web", man1) == 0);
	CHECK_EQ(build(s, NULL, parent, thin_path), -ESTALE);
	CHECK(strstr(err, "'web': version 100 (created) is not newer than version 200") != NULL);
	CHECK(access(thin_path, F_OK) < 0);
	/* The same ref again is no downgrade, but a generation not above the parent's is. */
	REQUIRE(snap_store_ref_set(s, "web", man2) == 0);
	memset(&o, 0, sizeof(o));
	o.store = s;
	o.parent = parent;
	o.generation = 1;
	o.out = thin_path;
	CHECK_EQ(snap_image_build(&o, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "generation 1 is not above the parent image's 1") != NULL);
	o.generation = 2;
	CHECK_EQ(snap_image_build(&o, err, sizeof(err)), 0);
	snap_image_close(parent);
	snap_store_close(s);
}

TEST(image_thin_child_reads_through_its_parent)
{
	struct snap_store *s;
	struct snap_image *parent, *thin;
	struct snap_image_info info;
	struct snap_source src;
	char thin_path[700];
	int fd;
	uint64_t off, len;

	REQUIRE(make_store(&s) == 0);
	snprintf(img_path, sizeof(img_path), "%s/base.img", t_tmpdir());
	snprintf(thin_path, sizeof(thin_path), "%s/thin.img", t_tmpdir());
	REQUIRE(build(s, NULL, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &parent, err, sizeof(err)) == 0);
	REQUIRE(build(s, NULL, parent, thin_path) == 0);
	REQUIRE(snap_image_open(thin_path, &thin, err, sizeof(err)) == 0);
	snap_image_get_info(thin, &info);
	CHECK(info.flags & SNAP_IMAGE_F_THIN);
	CHECK_EQ(info.nobjects, 0);          /* the parent already holds everything */
	CHECK_EQ(info.generation, 2);
	snap_image_source(thin, &src);
	CHECK_EQ(src.locate(src.ctx, SNAP_KIND_OBJECT, obj_a, &fd, &off, &len), -ENOENT);
	REQUIRE(snap_image_set_parent(thin, parent) == 0);
	CHECK_EQ(src.locate(src.ctx, SNAP_KIND_OBJECT, obj_a, &fd, &off, &len), 0);
	CHECK_EQ(snap_source_check(&src, SNAP_KIND_MANIFEST, man2), 0);
	CHECK_EQ(snap_image_set_parent(parent, thin), -EINVAL);
	snap_image_close(thin);
	snap_image_close(parent);
	snap_store_close(s);
}

/*
 * An update that shares objects with the partition image: the manifest is filed with those
 * objects only in the image (the listener's objects-needed said it had them), and activation
 * takes them from the image into the store; a corrupt image object refuses the activation.
 */
struct id_list {
	uint8_t id[8][SNAP_HASH_LEN];
	size_t n;
};

static int image_ids(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	struct id_list *l = arg;

	(void)off;
	(void)len;
	if (kind == SNAP_KIND_OBJECT && l->n < 8)
		memcpy(l->id[l->n++], id, SNAP_HASH_LEN);
	return 0;
}

TEST(update_takes_the_objects_the_image_has)
{
	struct snap_store *s, *box;
	struct snap_privkey k;
	struct snap_image *img;
	struct snap_source src;
	struct snap_fill fill = { .src = &src };
	struct snap_activation a;
	struct snap_manifest m;
	struct id_list ids = { .n = 0 };
	uint8_t chunk[4096], obj_c[SNAP_HASH_LEN], v3[SNAP_HASH_LEN], got[SNAP_HASH_LEN], *signed_text;
	size_t len, slen;
	char bdir[600], *text;
	int fd;
	uint64_t off, l;

	REQUIRE(make_store(&s) == 0);
	REQUIRE(snap_key_generate(&k) == 0);
	snprintf(img_path, sizeof(img_path), "%s/fill.img", t_tmpdir());
	REQUIRE(build(s, &k, NULL, img_path) == 0);
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	REQUIRE(snap_image_entry_each(img, image_ids, &ids) == 0);
	CHECK_EQ(ids.n, 2);
	snap_ids_sort(ids.id, ids.n);
	snap_image_source(img, &src);

	/* v3 of "web": the image's obj_a and obj_b plus a new chunk obj_c, signed */
	snprintf(bdir, sizeof(bdir), "%s/box", t_tmpdir());
	REQUIRE(snap_store_init(bdir) == 0 && snap_store_open(bdir, &box) == 0);
	memset(chunk, 0x3c, sizeof(chunk));
	REQUIRE(snap_store_put_buf(box, SNAP_KIND_OBJECT, chunk, sizeof(chunk), obj_c) == 0);
	snap_manifest_init(&m);
	snprintf(m.name, sizeof(m.name), "web");
	m.created = 300;
	m.memory_bytes = 8192;
	m.chunk_bytes = 4096;
	m.chunks = calloc(2, sizeof(*m.chunks));
	m.nchunks = 2;
	m.chunks[0].index = 0;
	memcpy(m.chunks[0].id, obj_a, SNAP_HASH_LEN);
	m.chunks[1].index = 1;
	memcpy(m.chunks[1].id, obj_c, SNAP_HASH_LEN);
	memcpy(m.vcpu[0], obj_a, SNAP_HASH_LEN);
	memcpy(m.vm_state, obj_b, SNAP_HASH_LEN);
	memcpy(m.devices, obj_c, SNAP_HASH_LEN);
	REQUIRE(snap_manifest_format(&m, &text, &len) == 0);
	snap_manifest_free(&m);
	REQUIRE(snap_manifest_sign(text, len, &k, &signed_text, &slen) == 0);
	free(text);

	/* without the image's ids the box refuses the manifest; with them it files it */
	CHECK_EQ(snap_store_put_manifest(box, signed_text, slen, v3, err, sizeof(err)), -ENOENT);
	CHECK_EQ(snap_id_among((const uint8_t (*)[SNAP_HASH_LEN])ids.id, ids.n, obj_a), 1);
	CHECK_EQ(snap_id_among((const uint8_t (*)[SNAP_HASH_LEN])ids.id, ids.n, obj_c), 0);
	REQUIRE(snap_store_put_manifest_have(box, signed_text, slen, (const uint8_t (*)[SNAP_HASH_LEN])ids.id, ids.n,
					     v3, err, sizeof(err)) == 0);

	/* attack: the image's obj_b flipped on the partition; activation refuses, files nothing under its id */
	REQUIRE(src.locate(src.ctx, SNAP_KIND_OBJECT, obj_b, &fd, &off, &l) == 0);
	snap_image_close(img);
	flip(img_path, (off_t)(off + l - 1));
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_source(img, &src);
	CHECK_EQ(snap_store_activate_signed(box, v3, &k.pub, 1, &fill, &a, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "could not be taken from the image: corrupt") != NULL);
	CHECK_EQ(snap_store_has(box, SNAP_KIND_OBJECT, obj_b), 0);
	CHECK_EQ(snap_store_ref_get(box, "web", got), -ENOENT);
	snap_image_close(img);

	/* the good image: what is still missing (obj_b; obj_a was taken before it) is copied, the ref moves */
	flip(img_path, (off_t)(off + l - 1));
	REQUIRE(snap_image_open(img_path, &img, err, sizeof(err)) == 0);
	snap_image_source(img, &src);
	CHECK_EQ(snap_store_activate_signed(box, v3, &k.pub, 1, NULL, &a, err, sizeof(err)), -ENOENT);
	REQUIRE(snap_store_activate_signed(box, v3, &k.pub, 1, &fill, &a, err, sizeof(err)) == 0);
	CHECK_EQ(a.moved, 1);
	CHECK_EQ(a.filled, 1);
	CHECK_EQ(a.filled_bytes, 100);
	CHECK_EQ(snap_store_has(box, SNAP_KIND_OBJECT, obj_a), 1);
	CHECK_EQ(snap_store_has(box, SNAP_KIND_OBJECT, obj_b), 1);
	snap_image_close(img);
	free(signed_text);
	snap_store_close(box);
	snap_store_close(s);
}

/* PID 1 copying objects from the image says "busy" first: the listener keeps waiting for the answer. */
TEST(activation_request_waits_through_busy)
{
	struct snap_activation a;
	uint8_t id[SNAP_HASH_LEN] = { 1 };
	char buf[128];
	int sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	REQUIRE(send(sv[1], "busy", 4, 0) == 4);
	REQUIRE(send(sv[1], "busy", 4, 0) == 4);
	REQUIRE(send(sv[1], "ok 1 0 - web", 12, 0) == 12);
	CHECK_EQ(net_activation_request(sv[0], id, &a, err, sizeof(err)), 0);
	CHECK_EQ(a.moved, 1);
	CHECK_EQ(strcmp(a.name, "web"), 0);
	CHECK(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 9);   /* the request itself */
	REQUIRE(send(sv[1], "busy", 4, 0) == 4);
	REQUIRE(send(sv[1], "error no", 8, 0) == 8);
	CHECK_EQ(net_activation_request(sv[0], id, &a, err, sizeof(err)), -EPERM);
	CHECK_EQ(strcmp(err, "no"), 0);
	close(sv[0]);
	close(sv[1]);
}
