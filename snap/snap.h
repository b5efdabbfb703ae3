/* snap: BLAKE3, the object store, manifests, SNAPPACK 1, CAR v1 and the partition image. */
#ifndef KEEL_SNAP_H
#define KEEL_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- BLAKE3-256 (snap/blake3*.c) ---------------------------------------- */

#define SNAP_HASH_LEN 32
#define SNAP_HEX_LEN 64

/* Incremental hasher; caller-allocated, no interior pointers, copyable. */
struct snap_b3 {
	uint32_t key[8];
	uint32_t cv[8];          /* chaining value of the chunk in progress */
	uint64_t chunk_counter;
	uint8_t buf[64];         /* partial block of the chunk in progress */
	uint8_t buf_len;
	uint8_t blocks_compressed;
	uint8_t flags;
	uint8_t stack_len;
	uint8_t stack[55 * 32];  /* chaining values of completed subtrees */
};

void snap_b3_init(struct snap_b3 *h);
void snap_b3_init_keyed(struct snap_b3 *h, const uint8_t key[32]);
void snap_b3_init_derive_key(struct snap_b3 *h, const char *context);
void snap_b3_update(struct snap_b3 *h, const void *buf, size_t len);
/* Extendable output: any outlen; does not change h (more updates may follow). */
void snap_b3_final(const struct snap_b3 *h, uint8_t *out, size_t outlen);
/* One-shot hash of a buffer using up to nthreads threads (0: one per online CPU). */
void snap_b3_hash(const void *buf, size_t len, int nthreads, uint8_t out[SNAP_HASH_LEN]);
/* Name of the compression path picked at run time: "avx512", "avx2", "sse41" or "portable". */
const char *snap_b3_impl(void);
/* Forces a path by name ("portable", "sse41", "avx2", "avx512"); -ENOTSUP if the CPU lacks it. */
int snap_b3_force_impl(const char *name);

/* ---- content addresses -------------------------------------------------- */

/* Lowercase hex of a hash, NUL-terminated (65 bytes). */
void snap_hex(const uint8_t h[SNAP_HASH_LEN], char out[SNAP_HEX_LEN + 1]);
/* 1 when s[0..len) is exactly 64 lowercase hex characters. */
int snap_is_hex64(const char *s, size_t len);
/* Parses a hex64; 0 or -EINVAL. */
int snap_unhex(const char *s, size_t len, uint8_t out[SNAP_HASH_LEN]);

/* 1 when s[0..len) is a valid ref / sandbox name: [A-Za-z0-9._-]{1,64}, not "." or "..". */
int snap_name_valid(const char *s, size_t len);
#define SNAP_NAME_MAX 64

/* ---- one store interface (directory store and partition image) ---------- */

/* What an id names: raw objects live in objects/, manifests in manifests/. */
#define SNAP_KIND_OBJECT 1
#define SNAP_KIND_MANIFEST 2

/*
 * The read side every store offers. locate() gives an fd OWNED BY THE SOURCE
 * (valid until the source is closed; do not close it) and the byte range of
 * the item in it: off is page-aligned in the partition image and 0 in the
 * directory store, so guest memory chunks can be mmap'ed MAP_PRIVATE without
 * copying. locate() does NOT verify the bytes; callers that do not verify
 * themselves use snap_source_read(). Both return 0 or -errno (-ENOENT absent).
 */
struct snap_source {
	void *ctx;
	int (*locate)(void *ctx, int kind, const uint8_t id[SNAP_HASH_LEN], int *fd, uint64_t *off,
		      uint64_t *len);
	int (*ref)(void *ctx, const char *name, uint8_t id[SNAP_HASH_LEN]);
};

/*
 * Reads an item and re-verifies its hash into a malloc'd buffer (free() it). -EBADMSG: corrupt;
 * -EFBIG: the source says it is longer than max (manifests: CONFIG_SNAP_MAX_MANIFEST_BYTES),
 * refused before anything is allocated.
 */
int snap_source_read(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN],
		     uint8_t **buf, size_t *len);
int snap_source_read_max(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN], size_t max,
			 uint8_t **buf, size_t *len);
/* Re-hashes an item in place (streaming, O(1) memory); 0, -EBADMSG (corrupt) or -errno. */
int snap_source_check(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN]);
/* A ref name or a manifest hex64 -> manifest id. -ENOENT unknown ref, -EINVAL neither form. */
int snap_source_resolve(const struct snap_source *src, const char *name_or_hex,
			uint8_t id[SNAP_HASH_LEN]);

/* ---- directory store (snap/store.c) -------------------------------------- */

/*
 * Layout: DIR/objects/<hex64>, DIR/manifests/<hex64>, DIR/refs/<name> (a
 * hex64 line), DIR/logs/<name> (the ref's history; optional). Every path
 * is derived only from a validated hex64 or a validated name. Writes:
 * unique temp file in the same directory, fsync, rename, fsync of the
 * directory. Objects are write-once.
 */
struct snap_store;

/* Creates DIR (if missing) and its layout; 0 also when it is already a store. */
int snap_store_init(const char *dir);
/* Opens an existing store; -ENOTDIR / -ENOENT when DIR is not one. */
int snap_store_open(const char *dir, struct snap_store **out);
void snap_store_close(struct snap_store *s);
const char *snap_store_dir(const struct snap_store *s);
/* Fills src with this store's read side (valid while s is open). */
void snap_store_source(struct snap_store *s, struct snap_source *src);

/* Streaming verified writer for OBJECTS (manifests go through snap_store_put_manifest). */
struct snap_store_writer {
	struct snap_store *store;
	int fd;                  /* staged temp file; -1 when idle */
	uint64_t len;            /* bytes written so far */
	struct snap_b3 hash;     /* incremental hash of those bytes */
	char tmp[40];            /* temp file name in objects/ */
};
int snap_store_begin(struct snap_store *s, struct snap_store_writer *w);
int snap_store_write(struct snap_store_writer *w, const void *buf, size_t len);
/*
 * Finishes the object: if expect is non-NULL and the hash differs, removes
 * the temp file and returns -EBADMSG. id (may be NULL) gets the computed id.
 * The writer is idle afterwards, whatever the result.
 */
int snap_store_commit(struct snap_store_writer *w, const uint8_t *expect, uint8_t *id);
/* Drops the staged bytes (no-op when idle). */
void snap_store_abort(struct snap_store_writer *w);

/* Whole-buffer put of an object (kind SNAP_KIND_OBJECT) or a manifest. */
int snap_store_put_buf(struct snap_store *s, int kind, const void *buf, size_t len,
		       uint8_t id[SNAP_HASH_LEN]);
/*
 * Puts a manifest: parses it strictly (message in err) and refuses (-ENOENT,
 * err names the id) unless every object it references (kernel, initrd,
 * chunks, vcpu, vm-state, devices; not parent) is present.
 */
int snap_store_put_manifest(struct snap_store *s, const void *buf, size_t len,
			    uint8_t id[SNAP_HASH_LEN], char *err, size_t errlen);
/* 1 present, 0 absent, -errno. Does not re-hash. */
int snap_store_has(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN]);
/*
 * snap_store_put_manifest where the objects may also be among have[0..nhave) (ascending ids
 * the box keeps elsewhere: the partition image's).
 */
int snap_store_put_manifest_have(struct snap_store *s, const void *buf, size_t len, const uint8_t (*have)[SNAP_HASH_LEN],
				 size_t nhave, uint8_t id[SNAP_HASH_LEN], char *err, size_t errlen);
/* 1 when id is among have[0..n) (ids in the order snap_ids_sort leaves them), else 0. */
int snap_id_among(const uint8_t (*have)[SNAP_HASH_LEN], size_t n, const uint8_t id[SNAP_HASH_LEN]);
void snap_ids_sort(uint8_t (*ids)[SNAP_HASH_LEN], size_t n);
/* Verified read into a malloc'd buffer; -EBADMSG when corrupt. */
int snap_store_get(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN], uint8_t **buf,
		   size_t *len);

/*
 * Refs: name -> manifest id. get: -ENOENT when absent. set moves it by atomic
 * rename and first records the new value in the ref's history (DIR/logs/NAME,
 * rewritten whole by temp + fsync + rename, the newest SNAP_REF_LOG_MAX
 * values). delete drops the ref and its history.
 */
int snap_store_ref_get(struct snap_store *s, const char *name, uint8_t id[SNAP_HASH_LEN]);
int snap_store_ref_set(struct snap_store *s, const char *name, const uint8_t id[SNAP_HASH_LEN]);
int snap_store_ref_delete(struct snap_store *s, const char *name);

/*
 * Ref history: one "HEX64 UNIXSECONDS" line per value the ref was set to,
 * oldest first (time 0: the value the ref had when history began). The log is
 * written BEFORE the ref moves, so after a crash between the two its newest
 * entry may be a value the ref never took: a reader that wants "what ran
 * before" looks for the ref's current id in the log and walks back from there.
 */
#define SNAP_REF_LOG_MAX 16
struct snap_ref_log_entry {
	uint8_t id[SNAP_HASH_LEN];
	uint64_t time;
};
/*
 * Parses untrusted log bytes buf[0..len): lines that are not exactly
 * "HEX64 DIGITS\n" are skipped and counted in *bad (may be NULL). Keeps the
 * newest max entries, oldest first; returns how many.
 */
int snap_ref_log_parse(const char *buf, size_t len, struct snap_ref_log_entry *out, int max, int *bad);
/* The history of ref name (see above): entry count (0: none), or -errno. */
int snap_store_ref_log(struct snap_store *s, const char *name, struct snap_ref_log_entry *out, int max,
		       int *bad);
/* Calls fn for every ref (stops early and returns fn's value when it is non-zero). */
int snap_store_ref_each(struct snap_store *s,
			int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]), void *arg);
/*
 * Activation by a peer (listener, `pack receive --activate`): points ref <manifest's name> at
 * manifest id (present, parsable) only if its `created` is above the highest ever accepted for
 * that name, which is raised first (-ESTALE otherwise; err names both versions). `created` is
 * the signed version: every manifest has it, so no format change; two builds of one name in the
 * same second cannot both be activated. Re-activating the current ref is a no-op (0).
 * PID 1's own rollback along a ref's history moves refs directly and is not refused.
 * a (may be NULL) says which ref, whether it moved and where it pointed before. The signature
 * is the caller's to have checked (the pack parser does, against its trusted keys).
 */
struct snap_activation {
	char name[SNAP_NAME_MAX + 1];
	int moved;                       /* 0: the ref already pointed there */
	int had_prev;
	uint8_t prev[SNAP_HASH_LEN];
	size_t filled;                   /* objects taken from snap_store_activate_signed's fill */
	uint64_t filled_bytes;
};
int snap_store_activate(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN], struct snap_activation *a,
			char *err, size_t errlen);
struct snap_pubkey;
/*
 * snap_store_activate for a caller that trusts nothing else in the store: the manifest's
 * signature is checked here against keys (nkeys 0: -ENOKEY, nothing activates) on the bytes
 * that are then parsed (re-hashed on read, so a file swapped under it fails), and every object
 * it names must be present. The privileged half of the listener (PID 1) uses it. fill (may be
 * NULL): where objects the store lacks may be taken from (PID 1: the partition image, so an
 * update only sends what the box has in neither), once the signature is good; each is hashed
 * as it is stored and must match its id; progress (may be NULL) is called after every
 * SNAP_FILL_STEP bytes copied. a->filled / filled_bytes count them.
 */
#define SNAP_FILL_STEP (16u << 20)
struct snap_fill {
	const struct snap_source *src;
	void (*progress)(void *arg);
	void *arg;
};
int snap_store_activate_signed(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN],
			       const struct snap_pubkey *keys, size_t nkeys, const struct snap_fill *fill,
			       struct snap_activation *a, char *err, size_t errlen);
/* The floor itself: 0 and *created, -ENOENT none yet; raise never lowers it. */
int snap_store_floor_get(struct snap_store *s, const char *name, uint64_t *created);
int snap_store_floor_raise(struct snap_store *s, const char *name, uint64_t created);
/* 0 (floor raised to created) when created is above the floor or there is none; -ESTALE + err otherwise. */
int snap_store_floor_accept(struct snap_store *s, const char *name, uint64_t created, char *err, size_t errlen);

/*
 * Re-hashes every object and manifest and checks every ref. bad() (may be
 * NULL) is called once per problem with the path relative to DIR and an
 * -errno (-EBADMSG: corrupt). Returns the number of problems or -errno.
 */
int snap_store_verify(struct snap_store *s, void (*bad)(void *arg, const char *path, int err), void *arg);
/*
 * Removes objects and manifests no ref reaches (a manifest keeps its objects
 * and its parent chain; a ref reaches what its history names) and stale temp
 * files. Returns the number removed or -errno.
 */
int snap_store_gc(struct snap_store *s, uint64_t *bytes_freed);
/*
 * A writer holds the store (a shared lock on DIR/lock) from before its first object until the
 * ref that names what it wrote is set; snap_store_gc takes the lock exclusively and returns
 * -EBUSY while anyone holds it, so it never sweeps objects filed but not yet referenced.
 * *fd is -1 (and 0 returned) for a store that cannot be written at all; release with
 * snap_store_unhold.
 */
int snap_store_hold(struct snap_store *s, int *fd);
void snap_store_unhold(int fd);

/* ---- manifest v1 (snap/manifest.c) --------------------------------------- */

#define SNAP_MANIFEST_MAGIC "keel-manifest 1\n"
#define SNAP_CMDLINE_MAX 4096
#define SNAP_MARKER_MAX 256
#define SNAP_MAX_VCPUS 64        /* format limit; the parser enforces CONFIG_VMM_MAX_VCPUS */
#define SNAP_SIG_LEN 64          /* r || s, 32 bytes each */

struct snap_manifest_chunk {
	uint64_t index;
	uint8_t id[SNAP_HASH_LEN];
};

/*
 * A read-only disk of the snapshot ("disk NAME BYTES CHUNK-BYTES ro", then its "disk-chunk INDEX
 * ID" lines): its image split into chunks like memory, so versions that share most of a root
 * filesystem share most of its objects. Chunks not listed read as zeros. Disks in name order.
 */
#define SNAP_MAX_DISKS 4
#define SNAP_DISK_NAME_MAX 16            /* [a-z0-9]{1,16} */
struct snap_manifest_disk {
	char name[SNAP_DISK_NAME_MAX + 1];
	uint64_t bytes;                      /* a non-zero multiple of 512 (the last chunk may be short) */
	uint64_t chunk_bytes;                /* a power of two >= 4096 */
	struct snap_manifest_chunk *chunks;  /* malloc'd, index strictly ascending */
	size_t nchunks;
};

struct snap_manifest {
	char name[SNAP_NAME_MAX + 1];
	int has_parent, has_kernel, has_initrd;      /* 0: "none" */
	uint8_t parent[SNAP_HASH_LEN];
	uint8_t kernel[SNAP_HASH_LEN];
	uint8_t initrd[SNAP_HASH_LEN];
	char cmdline[SNAP_CMDLINE_MAX + 1];
	uint64_t memory_bytes;
	uint64_t chunk_bytes;
	struct snap_manifest_chunk *chunks;          /* malloc'd, index strictly ascending */
	size_t nchunks;
	uint32_t vcpus;
	uint8_t vcpu[SNAP_MAX_VCPUS][SNAP_HASH_LEN];
	uint8_t vm_state[SNAP_HASH_LEN];
	uint8_t devices[SNAP_HASH_LEN];
	struct snap_manifest_disk disks[SNAP_MAX_DISKS];
	size_t ndisks;
	uint32_t cpu_quota;                          /* percent, 1..100*vcpus */
	int net;                                     /* policy-net on */
	char health_marker[SNAP_MARKER_MAX + 1];
	uint32_t health_timeout;                     /* seconds */
	uint64_t created;                            /* unix seconds */
	int has_signature;
	uint8_t sig_keyid[SNAP_HASH_LEN];
	uint8_t sig[SNAP_SIG_LEN];
	size_t signed_len;                           /* parse: bytes before the signature line */
};

/* Zeroes m and sets the defaults of optional values (no parent/kernel/initrd, 1 vCPU, ...). */
void snap_manifest_init(struct snap_manifest *m);
/*
 * Strict parse of untrusted bytes. On error returns -EINVAL (-E2BIG over the
 * size cap, -ENOMEM) and err gets one line naming the line number and what
 * was wrong; m is left freed. On success free m with snap_manifest_free.
 */
int snap_manifest_parse(const void *buf, size_t len, struct snap_manifest *m, char *err, size_t errlen);
/* Canonical bytes of m (signature line included when m->has_signature); malloc'd. */
int snap_manifest_format(const struct snap_manifest *m, char **buf, size_t *len);
void snap_manifest_free(struct snap_manifest *m);
/*
 * A manifest's read-only disk, read straight from its chunk objects in src (snap/disk.c).
 * open: every listed chunk must be in src with its length, else a negative errno and err names
 * the object. read: [off, off + len) of the disk into buf; chunks not listed are zeros; each
 * chunk is re-hashed the first time it is read, and a corrupt one fails every read of it
 * (-EBADMSG, err names the object). src must outlive the disk.
 */
struct snap_disk;
int snap_disk_open(const struct snap_source *src, const struct snap_manifest_disk *d, struct snap_disk **out,
		   char *err, size_t errlen);
int snap_disk_read(struct snap_disk *k, void *buf, size_t len, uint64_t off, char *err, size_t errlen);
uint64_t snap_disk_bytes(const struct snap_disk *k);
void snap_disk_close(struct snap_disk *k);
/*
 * Splits fd's first size bytes into chunk_bytes pieces stored as objects in s, all-zero ones
 * left out, a short last piece stored as it is; *list (malloc'd, room for every chunk) gets the
 * stored ones in order, *n how many. 0 or -errno.
 */
int snap_chunks_put(struct snap_store *s, int fd, uint64_t size, uint64_t chunk_bytes,
		    struct snap_manifest_chunk **list, size_t *n);
/* A disk's size: a regular file's length or a block device's; -EINVAL for anything else. */
int snap_file_bytes(int fd, uint64_t *bytes);

/* Calls fn for each object id m references (not parent); stops on non-zero and returns it. */
int snap_manifest_each_object(const struct snap_manifest *m,
			      int (*fn)(void *arg, const uint8_t id[SNAP_HASH_LEN]), void *arg);

/* ---- signatures: ECDSA P-256 (snap/sig.c, BearSSL) ------------------------ */

struct snap_pubkey {
	uint8_t q[65];                   /* uncompressed point 04 || X || Y */
	uint8_t id[SNAP_HASH_LEN];       /* BLAKE3 of q: the KEYID of signature lines */
};
struct snap_privkey {
	uint8_t x[32];                   /* big-endian scalar */
	struct snap_pubkey pub;
};

/* PEM "PUBLIC KEY" (SubjectPublicKeyInfo, P-256). 0, -EINVAL, -ENOTSUP (other curve/alg), -errno. */
int snap_key_parse_pub(const void *pem, size_t len, struct snap_pubkey *k);
int snap_key_load_pub(const char *path, struct snap_pubkey *k);
/* PEM "EC PRIVATE KEY" (SEC1) or "PRIVATE KEY" (PKCS#8), P-256. */
int snap_key_parse_priv(const void *pem, size_t len, struct snap_privkey *k);
int snap_key_load_priv(const char *path, struct snap_privkey *k);
/* A fresh key from getrandom(); PEM writers (SEC1 private, SPKI public), files mode 0600/0644. */
int snap_key_generate(struct snap_privkey *k);
int snap_key_save_priv(const char *path, const struct snap_privkey *k);
int snap_key_save_pub(const char *path, const struct snap_pubkey *k);
/* Raw signature (r||s) over a 32-byte digest, always low-s; verify returns 0, -EKEYREJECTED,
 * or -EDOM for s > n/2 (the malleable twin of a valid signature, refused). */
int snap_sign_digest(const struct snap_privkey *k, const uint8_t digest[32], uint8_t sig[SNAP_SIG_LEN]);
int snap_verify_digest(const struct snap_pubkey *k, const uint8_t digest[32], const uint8_t sig[SNAP_SIG_LEN]);

/*
 * Signs a manifest: drops any signature line, appends "signature ecdsa-p256
 * KEYID HEX128\n" over SHA-256 of the bytes before it. out is malloc'd.
 */
int snap_manifest_sign(const void *buf, size_t len, const struct snap_privkey *k, uint8_t **out,
		       size_t *outlen);
/*
 * 0 when buf parses and is signed by one of keys; -ENOKEY unsigned or no
 * key with its KEYID, -EKEYREJECTED bad signature, -EDOM high-s, -EINVAL unparsable.
 */
int snap_manifest_verify(const void *buf, size_t len, const struct snap_pubkey *keys, size_t nkeys);
/* What a verify result means, in words for an error line (the one mapping every caller uses). */
const char *snap_sig_strerror(int r);

/* ---- SNAPPACK 1 (snap/pack.c) -------------------------------------------- */

#define SNAP_WIRE_VERSION 1
#define SNAP_WIRE_MAGIC "SNAPPACK 1\n"
/* Cap on a header line including its "\n"; the longest valid one is 95 bytes. */
#define SNAP_PACK_MAX_HEADER_BYTES 128

struct snap_pack_limits {
	uint64_t max_object_bytes;       /* 0: no limit */
	uint64_t max_stream_bytes;       /* 0: no limit */
	uint64_t reserve_bytes;          /* free space to keep on the store's filesystem */
	size_t max_manifest_bytes;       /* 0: CONFIG_SNAP_MAX_MANIFEST_BYTES */
	const struct snap_pubkey *keys;  /* nkeys > 0: the manifest must verify with one of them */
	size_t nkeys;
	/* ids the box has outside the store (ascending), which the manifest may name without them */
	const uint8_t (*have)[SNAP_HASH_LEN];
	size_t nhave;
};

/*
 * Push parser: fixed-size state, O(1) memory per record (the manifest
 * payload, capped, is the one buffered thing). Objects are filed as they
 * verify; the manifest is committed only by finish(), after "end" and EOF.
 * The first error is sticky: feed/finish return it again and
 * snap_pack_rx_error() gives one line naming what and at which byte offset.
 */
struct snap_pack_rx {
	struct snap_store *store;
	struct snap_pack_limits lim;
	int state;
	int err;                         /* sticky first error (-errno), 0 while fine */
	uint64_t off;                    /* stream bytes consumed */
	uint64_t rec_off;                /* offset of the current record's header */
	char line[SNAP_PACK_MAX_HEADER_BYTES];
	size_t line_len;
	uint64_t remaining;              /* payload bytes still due */
	int is_manifest;
	int duplicate;                   /* object present: hash only, do not stage */
	uint8_t claimed[SNAP_HASH_LEN];
	struct snap_b3 hash;             /* for duplicates */
	struct snap_store_writer w;
	uint8_t *manifest;               /* malloc'd payload, <= the cap */
	size_t manifest_len;
	uint64_t objects, stored, duplicates, bytes;
	int held, lockfd;                /* snap_store_hold from the first record on */
	char msg[200];
};

/* One record header line (without its "\n"): "end", or "obj"/"manifest" HEX64 LEN (decimal, no sign,
 * no leading zeros). 0, or -ENOMSG unknown keyword, -EBADMSG bad hex64, -EINVAL non-decimal length,
 * -ERANGE overflowing length; bad_at is where the fault starts. The one parser of this grammar. */
enum { SNAP_PACK_END, SNAP_PACK_OBJ, SNAP_PACK_MANIFEST };
struct snap_pack_header {
	int kind;
	uint8_t id[SNAP_HASH_LEN];
	uint64_t len;
	size_t bad_at;
};
int snap_pack_header_parse(const char *line, size_t n, struct snap_pack_header *h);

int snap_pack_rx_init(struct snap_pack_rx *rx, struct snap_store *s, const struct snap_pack_limits *lim);
int snap_pack_rx_feed(struct snap_pack_rx *rx, const void *buf, size_t len);
/* 1 once "end\n" has been read (more bytes are then an error). */
int snap_pack_rx_done(const struct snap_pack_rx *rx);
/* At EOF: checks "end" was seen, commits the manifest (if any). manifest_id may be NULL. */
int snap_pack_rx_finish(struct snap_pack_rx *rx, int *has_manifest, uint8_t manifest_id[SNAP_HASH_LEN]);
/* The sticky error as one line ("" when none). */
const char *snap_pack_rx_error(const struct snap_pack_rx *rx);
/* Drops any staged object and the manifest buffer. Safe after finish. */
void snap_pack_rx_free(struct snap_pack_rx *rx);

/* Writes magic, one obj record per id (in order), the manifest (if any) last, "end". */
int snap_pack_send(int fd, const struct snap_source *src, const uint8_t (*ids)[SNAP_HASH_LEN], size_t n,
		   const uint8_t *manifest_id);
/* Sends every object a manifest names (each once) and then the manifest. */
int snap_pack_send_manifest(int fd, const struct snap_source *src, const uint8_t manifest_id[SNAP_HASH_LEN]);

/* Prints the SNAPPACK wire version and capabilities (`keel version --capabilities`). */
int snap_print_capabilities(FILE *f);

/* ---- partition image (snap/image.c) -------------------------------------- */

/*
 * One file (dd-able to a partition) holding refs, manifests and objects, laid
 * out so guest memory chunks can be mmap'ed straight from the device:
 *   [header 4096][ref table][index][metadata][signature] pad to 4096
 *   [objects, each at a 4096-aligned offset, in index order] pad to 4096
 * All integers little-endian. Header: magic "KEELIMG\0", version, header
 * size, block size, flags, generation, image size, region offsets/counts,
 * first object offset, parent image id (thin images), and at 4064 the
 * BLAKE3 of header[0..4064) + table + index + metadata. Table entries (96
 * bytes): name (64, NUL-padded) + manifest id, sorted by name. Index entries
 * (56 bytes): id, u32 kind, u32 0, u64 offset, u64 length, sorted by (id,
 * kind). Signature (96 bytes, optional): KEYID + ECDSA P-256 r||s over
 * SHA-256 of header + table + index + metadata. The image id is the BLAKE3
 * of those same bytes.
 */
#define SNAP_IMAGE_MAGIC "KEELIMG"        /* 8 bytes with its NUL */
#define SNAP_IMAGE_VERSION 1
#define SNAP_IMAGE_HEADER_BYTES 4096
#define SNAP_IMAGE_BLOCK 4096
#define SNAP_IMAGE_F_THIN 1u               /* objects missing here come from the parent image */
#define SNAP_IMAGE_F_SIGNED 2u

struct snap_image;

struct snap_image_info {
	uint32_t version, flags;
	uint64_t generation;
	uint64_t size;                         /* bytes the image occupies */
	uint64_t nrefs, nobjects;
	uint8_t id[SNAP_HASH_LEN];
	uint8_t parent[SNAP_HASH_LEN];         /* valid with SNAP_IMAGE_F_THIN */
	uint8_t sig_keyid[SNAP_HASH_LEN];      /* valid with SNAP_IMAGE_F_SIGNED */
	const char *meta;                      /* metadata text (NUL-terminated), valid while open */
};

/*
 * Opens an image read-only and checks its structure and checksum without
 * reading past the end of the file or device (fstat / BLKGETSIZE64). Errors:
 * -EINVAL malformed (err says what, with the byte offset), -EPROTONOSUPPORT
 * unknown version, -EBADMSG checksum mismatch, -ENODATA truncated.
 */
int snap_image_open(const char *path, struct snap_image **out, char *err, size_t errlen);
/* Same on an fd the image then owns (closed by snap_image_close, also on failure). */
int snap_image_open_fd(int fd, struct snap_image **out, char *err, size_t errlen);
void snap_image_close(struct snap_image *img);
/* The descriptors img reads through (its own, then its parents'): at most max; how many. */
int snap_image_fds(const struct snap_image *img, int *fds, int max);
void snap_image_get_info(const struct snap_image *img, struct snap_image_info *info);
/* 0 signed by one of keys; -ENOKEY unsigned or unknown KEYID; -EKEYREJECTED bad signature. */
int snap_image_check_sig(const struct snap_image *img, const struct snap_pubkey *keys, size_t nkeys);
/* Thin images: parent must be the image whose id the header names (-EINVAL otherwise). Not owned. */
int snap_image_set_parent(struct snap_image *img, struct snap_image *parent);
/* The image's read side (locate falls back to the parent for thin images). */
void snap_image_source(struct snap_image *img, struct snap_source *src);
int snap_image_ref_each(const struct snap_image *img,
			int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]), void *arg);
int snap_image_entry_each(const struct snap_image *img,
			  int (*fn)(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off,
				    uint64_t len),
			  void *arg);

struct snap_image_build_opts {
	struct snap_store *store;              /* where the snapshots come from */
	const char *const *refs;               /* refs to include; nrefs == 0: every ref */
	size_t nrefs;
	struct snap_image *parent;             /* thin image on top of parent, or NULL */
	const struct snap_privkey *key;        /* sign, or NULL */
	uint64_t generation;                   /* 0: parent's + 1, or 1 */
	const char *out;                       /* written to OUT.tmp, then renamed */
};
/* Each ref's manifest, its parent chain (as far as the store has it) and their objects. */
int snap_image_build(const struct snap_image_build_opts *o, char *err, size_t errlen);

/* ---- tool commands ------------------------------------------------------- */

int snap_cmd_store(int argc, char **argv);      /* keel store init|put|get|verify|gc|ref */
int snap_cmd_manifest(int argc, char **argv);   /* keel manifest show|create|sign|verify */
int snap_cmd_key(int argc, char **argv);        /* keel key gen */
int snap_cmd_pack(int argc, char **argv);       /* keel pack send|receive */
int snap_cmd_b3sum(int argc, char **argv);      /* keel b3sum */
int snap_cmd_image(int argc, char **argv);      /* keel image build|ls|verify|extract */
int snap_cmd_car(int argc, char **argv);        /* keel car export|import|ls (snap/cmd_car.c) */

#endif
