/* Early interface landing: every entry point reports -ENOSYS until the real files replace this one. */
#include <errno.h>

#include "snap/snap.h"

int snap_source_read(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN], uint8_t **buf, size_t *len)
{
	(void)src;
	(void)kind;
	(void)id;
	(void)buf;
	(void)len;
	return -ENOSYS;
}

int snap_source_check(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	(void)src;
	(void)kind;
	(void)id;
	return -ENOSYS;
}

int snap_source_resolve(const struct snap_source *src, const char *name_or_hex, uint8_t id[SNAP_HASH_LEN])
{
	(void)src;
	(void)name_or_hex;
	(void)id;
	return -ENOSYS;
}

int snap_store_init(const char *dir)
{
	(void)dir;
	return -ENOSYS;
}

int snap_store_open(const char *dir, struct snap_store **out)
{
	(void)dir;
	(void)out;
	return -ENOSYS;
}

void snap_store_close(struct snap_store *s)
{
	(void)s;
}

const char *snap_store_dir(const struct snap_store *s)
{
	(void)s;
	return "";
}

void snap_store_source(struct snap_store *s, struct snap_source *src)
{
	(void)s;
	(void)src;
}

int snap_store_begin(struct snap_store *s, struct snap_store_writer *w)
{
	(void)s;
	(void)w;
	return -ENOSYS;
}

int snap_store_write(struct snap_store_writer *w, const void *buf, size_t len)
{
	(void)w;
	(void)buf;
	(void)len;
	return -ENOSYS;
}

int snap_store_commit(struct snap_store_writer *w, const uint8_t *expect, uint8_t *id)
{
	(void)w;
	(void)expect;
	(void)id;
	return -ENOSYS;
}

void snap_store_abort(struct snap_store_writer *w)
{
	(void)w;
}

int snap_store_put_buf(struct snap_store *s, int kind, const void *buf, size_t len, uint8_t id[SNAP_HASH_LEN])
{
	(void)s;
	(void)kind;
	(void)buf;
	(void)len;
	(void)id;
	return -ENOSYS;
}

int snap_store_put_manifest(struct snap_store *s, const void *buf, size_t len, uint8_t id[SNAP_HASH_LEN], char *err, size_t errlen)
{
	(void)s;
	(void)buf;
	(void)len;
	(void)id;
	(void)err;
	(void)errlen;
	return -ENOSYS;
}

int snap_store_has(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	(void)s;
	(void)kind;
	(void)id;
	return -ENOSYS;
}

int snap_store_get(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN], uint8_t **buf, size_t *len)
{
	(void)s;
	(void)kind;
	(void)id;
	(void)buf;
	(void)len;
	return -ENOSYS;
}

int snap_store_ref_get(struct snap_store *s, const char *name, uint8_t id[SNAP_HASH_LEN])
{
	(void)s;
	(void)name;
	(void)id;
	return -ENOSYS;
}

int snap_store_ref_set(struct snap_store *s, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	(void)s;
	(void)name;
	(void)id;
	return -ENOSYS;
}

int snap_store_ref_delete(struct snap_store *s, const char *name)
{
	(void)s;
	(void)name;
	return -ENOSYS;
}

int snap_store_ref_each(struct snap_store *s, int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]), void *arg)
{
	(void)s;
	(void)fn;
	(void)arg;
	return -ENOSYS;
}

int snap_store_activate(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN])
{
	(void)s;
	(void)id;
	return -ENOSYS;
}

int snap_store_verify(struct snap_store *s, void (*bad)(void *arg, const char *path, int err), void *arg)
{
	(void)s;
	(void)bad;
	(void)arg;
	return -ENOSYS;
}

int snap_store_gc(struct snap_store *s, uint64_t *bytes_freed)
{
	(void)s;
	(void)bytes_freed;
	return -ENOSYS;
}

void snap_manifest_init(struct snap_manifest *m)
{
	(void)m;
}

int snap_manifest_parse(const void *buf, size_t len, struct snap_manifest *m, char *err, size_t errlen)
{
	(void)buf;
	(void)len;
	(void)m;
	(void)err;
	(void)errlen;
	return -ENOSYS;
}

int snap_manifest_format(const struct snap_manifest *m, char **buf, size_t *len)
{
	(void)m;
	(void)buf;
	(void)len;
	return -ENOSYS;
}

void snap_manifest_free(struct snap_manifest *m)
{
	(void)m;
}

int snap_manifest_each_object(const struct snap_manifest *m, int (*fn)(void *arg, const uint8_t id[SNAP_HASH_LEN]), void *arg)
{
	(void)m;
	(void)fn;
	(void)arg;
	return -ENOSYS;
}

int snap_key_parse_pub(const void *pem, size_t len, struct snap_pubkey *k)
{
	(void)pem;
	(void)len;
	(void)k;
	return -ENOSYS;
}

int snap_key_load_pub(const char *path, struct snap_pubkey *k)
{
	(void)path;
	(void)k;
	return -ENOSYS;
}

int snap_key_parse_priv(const void *pem, size_t len, struct snap_privkey *k)
{
	(void)pem;
	(void)len;
	(void)k;
	return -ENOSYS;
}

int snap_key_load_priv(const char *path, struct snap_privkey *k)
{
	(void)path;
	(void)k;
	return -ENOSYS;
}

int snap_key_generate(struct snap_privkey *k)
{
	(void)k;
	return -ENOSYS;
}

int snap_key_save_priv(const char *path, const struct snap_privkey *k)
{
	(void)path;
	(void)k;
	return -ENOSYS;
}

int snap_key_save_pub(const char *path, const struct snap_pubkey *k)
{
	(void)path;
	(void)k;
	return -ENOSYS;
}

int snap_sign_digest(const struct snap_privkey *k, const uint8_t digest[32], uint8_t sig[SNAP_SIG_LEN])
{
	(void)k;
	(void)digest;
	(void)sig;
	return -ENOSYS;
}

int snap_verify_digest(const struct snap_pubkey *k, const uint8_t digest[32], const uint8_t sig[SNAP_SIG_LEN])
{
	(void)k;
	(void)digest;
	(void)sig;
	return -ENOSYS;
}

int snap_manifest_sign(const void *buf, size_t len, const struct snap_privkey *k, uint8_t **out, size_t *outlen)
{
	(void)buf;
	(void)len;
	(void)k;
	(void)out;
	(void)outlen;
	return -ENOSYS;
}

int snap_manifest_verify(const void *buf, size_t len, const struct snap_pubkey *keys, size_t nkeys)
{
	(void)buf;
	(void)len;
	(void)keys;
	(void)nkeys;
	return -ENOSYS;
}

int snap_pack_rx_init(struct snap_pack_rx *rx, struct snap_store *s, const struct snap_pack_limits *lim)
{
	(void)rx;
	(void)s;
	(void)lim;
	return -ENOSYS;
}

int snap_pack_rx_feed(struct snap_pack_rx *rx, const void *buf, size_t len)
{
	(void)rx;
	(void)buf;
	(void)len;
	return -ENOSYS;
}

int snap_pack_rx_done(const struct snap_pack_rx *rx)
{
	(void)rx;
	return -ENOSYS;
}

int snap_pack_rx_finish(struct snap_pack_rx *rx, int *has_manifest, uint8_t manifest_id[SNAP_HASH_LEN])
{
	(void)rx;
	(void)has_manifest;
	(void)manifest_id;
	return -ENOSYS;
}

const char *snap_pack_rx_error(const struct snap_pack_rx *rx)
{
	(void)rx;
	return "";
}

void snap_pack_rx_free(struct snap_pack_rx *rx)
{
	(void)rx;
}

int snap_pack_send(int fd, const struct snap_source *src, const uint8_t (*ids)[SNAP_HASH_LEN], size_t n, const uint8_t *manifest_id)
{
	(void)fd;
	(void)src;
	(void)ids;
	(void)n;
	(void)manifest_id;
	return -ENOSYS;
}

int snap_pack_send_manifest(int fd, const struct snap_source *src, const uint8_t manifest_id[SNAP_HASH_LEN])
{
	(void)fd;
	(void)src;
	(void)manifest_id;
	return -ENOSYS;
}

int snap_cmd_store(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return -ENOSYS;
}

int snap_cmd_manifest(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return -ENOSYS;
}

int snap_cmd_key(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return -ENOSYS;
}

int snap_cmd_pack(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return -ENOSYS;
}
