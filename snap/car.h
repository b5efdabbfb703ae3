/* CAR v1 wire format (snap/car.c): varints, binary CIDs, the DAG-CBOR header and a push reader. */
#ifndef KEEL_SNAP_CAR_H
#define KEEL_SNAP_CAR_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl_hash.h>

#include "snap/snap.h"

/*
 * A CAR v1 file is
 *     varint(H) header[H]  { varint(S) cid data[S - |cid|] }*
 * where header is the DAG-CBOR map {"roots": [tag42(0x00 || cid)...], "version": 1}
 * and every cid is a binary CIDv1: varint(1) varint(codec) varint(mh) varint(32) digest[32].
 *
 * What keel accepts (anything else is an error naming the byte offset):
 *   - varints: unsigned LEB128, minimal (no trailing 0x00 group), at most 9 bytes (63 bits);
 *   - CIDv1 only (CIDv0, a bare sha2-256 multihash, is refused);
 *   - codecs raw (0x55), dag-pb (0x70) and dag-cbor (0x71): the block bytes are verified and
 *     stored as opaque objects; keel never interprets dag-pb or dag-cbor contents;
 *   - multihashes blake3 (0x1e) and sha2-256 (0x12), both with 32-byte digests;
 *   - a header of at most SNAP_CAR_MAX_HEADER bytes and SNAP_CAR_MAX_ROOTS roots, in strict
 *     DAG-CBOR (minimal integer encodings, definite lengths, exactly the two keys, in either order);
 *   - blocks (the bytes after the CID) up to the reader's limit.
 * keel writes raw/blake3 CIDs only, and the header in canonical DAG-CBOR key order.
 */
#define SNAP_CAR_VERSION 1
#define SNAP_CAR_MAX_HEADER 65536
#define SNAP_CAR_MAX_ROOTS 1024
/* Blocks stream to disk, so the cap is a sanity bound, not a memory bound. */
#define SNAP_CAR_DEFAULT_MAX_BLOCK (16ULL << 30)

#define SNAP_CAR_VARINT_MAX 9
#define SNAP_CAR_DIGEST_LEN 32
/* version, codec, multihash code and digest length are one byte each in every CID we accept,
 * but the codec and the hash code may take two when read from other tools. */
#define SNAP_CAR_CID_MAX (4 * SNAP_CAR_VARINT_MAX + SNAP_CAR_DIGEST_LEN)
/* Length of "b" + base32 of the largest CID + NUL. */
#define SNAP_CAR_CID_STR_MAX (2 + (SNAP_CAR_CID_MAX * 8 + 4) / 5 + 1)

#define SNAP_CAR_CODEC_RAW 0x55
#define SNAP_CAR_CODEC_DAG_PB 0x70
#define SNAP_CAR_CODEC_DAG_CBOR 0x71
#define SNAP_CAR_MH_SHA2_256 0x12
#define SNAP_CAR_MH_BLAKE3 0x1e

struct snap_car_cid {
	uint64_t codec;
	uint64_t mh;
	uint8_t digest[SNAP_CAR_DIGEST_LEN];
};

/* Writes the minimal varint of v (v < 2^63); returns its length. */
size_t snap_car_varint_put(uint64_t v, uint8_t out[SNAP_CAR_VARINT_MAX]);
/*
 * Reads one varint from p[0..len): returns the bytes it took, -EAGAIN when p ends inside it,
 * -EBADMSG when it is not minimal, -EOVERFLOW when it is longer than 9 bytes.
 */
int snap_car_varint_get(const uint8_t *p, size_t len, uint64_t *v);

/* The CIDv1 keel writes for an object: raw codec, BLAKE3-256 multihash. */
void snap_car_cid_from_id(struct snap_car_cid *cid, const uint8_t id[SNAP_HASH_LEN]);
/* Binary form; returns its length (<= SNAP_CAR_CID_MAX). */
size_t snap_car_cid_encode(const struct snap_car_cid *cid, uint8_t out[SNAP_CAR_CID_MAX]);
/*
 * Reads one binary CID from p[0..len): returns its length, -EAGAIN when p ends inside it, or
 * another -errno with *why set to a static reason (CIDv0, unknown codec, unknown multihash, ...).
 */
int snap_car_cid_parse(const uint8_t *p, size_t len, struct snap_car_cid *cid, const char **why);
/* The usual text form: multibase "b" + lowercase base32 without padding (e.g. "bafkr4i..."). */
void snap_car_cid_string(const struct snap_car_cid *cid, char out[SNAP_CAR_CID_STR_MAX]);

/* DAG-CBOR header body (without its varint length); returns its length or -ENOSPC / -E2BIG. */
int snap_car_header_encode(const struct snap_car_cid *roots, size_t nroots, uint8_t *out, size_t cap);
/*
 * Strictly parses a header body of exactly len bytes into roots[0..max); 0 or -errno with *why
 * set. -E2BIG when there are more than max roots.
 */
int snap_car_header_parse(const uint8_t *p, size_t len, struct snap_car_cid *roots, size_t max,
			  size_t *nroots, const char **why);
/* varint(|cid| + datalen) || cid: what precedes a block's bytes; returns its length. */
size_t snap_car_block_prefix(const struct snap_car_cid *cid, uint64_t datalen,
			     uint8_t out[SNAP_CAR_VARINT_MAX + SNAP_CAR_CID_MAX]);

/*
 * Push reader. The caller feeds the file in pieces of any size; the reader parses the header
 * (buffered, at most SNAP_CAR_MAX_HEADER bytes), then streams each block's bytes to the sink
 * while hashing them, and tells the sink whether they matched the block's CID. Memory is the
 * struct plus the bounded header, whatever the block sizes. Errors are sticky.
 *
 * Sink contract: begin() opens a block of len bytes with the given CID; data() gets its bytes
 * in order; then exactly one of end() (all bytes arrived and match the CID; b3 is their
 * BLAKE3-256, the id keel files them under) or abort() (mismatch, truncation, or any error).
 * Any callback returning -errno stops the reader with that error. NULL callbacks are skipped.
 *
 * hashes_blake3: set by a sink that computes the BLAKE3 of every block itself (the store's
 * verified writer does, to name and check what it files), so the bytes are not hashed twice.
 * The reader then still verifies sha2-256 CIDs, but a blake3 CID is the sink's to check: end()
 * gets b3 = the CID's digest, UNVERIFIED, for a blake3 CID and b3 = NULL for a sha2-256 one
 * (the sink computes the id). Without it, end()'s b3 is always the verified BLAKE3 of the bytes.
 */
struct snap_car_sink {
	void *ctx;
	int (*roots)(void *ctx, const struct snap_car_cid *roots, size_t n);
	int (*begin)(void *ctx, const struct snap_car_cid *cid, uint64_t len);
	int (*data)(void *ctx, const void *buf, size_t len);
	int (*end)(void *ctx, const struct snap_car_cid *cid, const uint8_t b3[SNAP_HASH_LEN]);
	void (*abort)(void *ctx);
	int hashes_blake3;
};

struct snap_car_rx {
	const struct snap_car_sink *sink;
	uint64_t max_block;
	uint64_t off;              /* bytes consumed so far */
	uint64_t item_off;         /* where the item being read started (for messages) */
	uint64_t blocks;
	int state;
	int err;                   /* sticky first error, 0 or -errno */
	char msg[200];
	uint8_t vbuf[SNAP_CAR_VARINT_MAX];
	uint8_t vlen;
	uint8_t cbuf[SNAP_CAR_CID_MAX];
	uint8_t clen;
	uint8_t in_block;          /* begin() was called and neither end() nor abort() yet */
	uint8_t *hdr;
	size_t hdr_len, hdr_have;
	uint64_t sec_left;         /* bytes of the current section not yet read */
	struct snap_car_cid cid;
	struct snap_car_cid *roots;
	size_t nroots;
	struct snap_b3 b3;
	br_sha256_context sha;
};

/* max_block: largest block (bytes after the CID) accepted; 0 means SNAP_CAR_DEFAULT_MAX_BLOCK. */
void snap_car_rx_init(struct snap_car_rx *rx, const struct snap_car_sink *sink, uint64_t max_block);
/* 0 or the sticky -errno. */
int snap_car_rx_feed(struct snap_car_rx *rx, const void *buf, size_t len);
/* End of input: 0 only when the header and every block were complete. */
int snap_car_rx_finish(struct snap_car_rx *rx);
/* One line naming the byte offset and what was wrong ("" when no error). */
const char *snap_car_rx_error(const struct snap_car_rx *rx);
/* Frees the header buffers; aborts an open block. */
void snap_car_rx_free(struct snap_car_rx *rx);

/* Feeds everything read from fd to rx until EOF (then finish); 0 or -errno with one line in err
 * (sink_msg, when the sink explained a refusal, placed at its block's byte offset). */
int snap_car_rx_read_fd(struct snap_car_rx *rx, int fd, char *err, size_t errlen, const char *sink_msg);

/* ---- a store to and from CAR files (snap/car_store.c) ---------------------- */

/*
 * Writes to fd a CAR v1 whose roots are args (hex64 object or manifest ids, or ref names for
 * their manifests); a manifest goes out after every object it names, each block once. Every
 * block is located before the first byte is written. 0 or -errno with one line in err.
 */
int snap_car_export(struct snap_store *st, const char *const *args, size_t nargs, int fd, char *err, size_t errlen);
/*
 * Reads a CAR v1 from fd into st (held for the whole import): each block verified against its
 * CID (BLAKE3 or SHA-256) before it is filed under its BLAKE3 id; blocks that start like a
 * manifest are committed only after the whole file was valid and every object they name is
 * present. Moves no ref. Then root(arg, id) for each root found in the file, in order (may be
 * NULL). 0 or -errno with one line in err (with the byte offset where the file is at fault).
 */
int snap_car_import(struct snap_store *st, int fd, uint64_t max_block,
		    int (*root)(void *arg, const uint8_t id[SNAP_HASH_LEN]), void *arg, char *err, size_t errlen);

#endif
