/* ECDSA P-256 keys (PEM) and manifest signatures, on BearSSL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bearssl.h>

#include "snap/snap.h"

/*
 * IMPLEMENTATION NOTES
 * BearSSL decodes PEM (br_pem_decoder) and private keys in both SEC1 and
 * PKCS#8 (br_skey_decoder) but has no decoder for a bare SubjectPublicKeyInfo.
 * For P-256 with an uncompressed point that DER is one fixed 26-byte prefix
 * followed by the 65-byte point, so it is matched byte for byte rather than
 * parsed generally: anything else (other curve, compressed point, extra
 * fields) is refused. Signatures are raw r||s over SHA-256 of the signed
 * bytes; BearSSL derives k deterministically (RFC 6979).
 * Low-s only: (r, s) and (r, n - s) both satisfy the ECDSA equation, so anyone could mint a
 * second valid signature (and a manifest with another id) from a signed one. keel signs with
 * s <= n/2 and verification refuses anything else (as Bitcoin's BIP 62/146 rule does).
 */

static const uint8_t spki_p256_prefix[26] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};

/* The order n of P-256, big-endian: private scalars must be in [1, n-1]. */
static const uint8_t p256_order[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* floor(n / 2): the largest s a signature may carry. */
static const uint8_t p256_half_order[32] = {
	0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};

static int s_is_low(const uint8_t s[32])
{
	return memcmp(s, p256_half_order, 32) <= 0;   /* big-endian, same length */
}

/* s = n - s (big-endian), for 0 < s < n. */
static void s_negate(uint8_t s[32])
{
	unsigned borrow = 0;
	int i;

	for (i = 31; i >= 0; i--) {
		unsigned d = (unsigned)p256_order[i] - s[i] - borrow;

		s[i] = (uint8_t)d;
		borrow = (d >> 8) & 1;
	}
}

#define PEM_DER_MAX 512

struct der_sink {
	uint8_t buf[PEM_DER_MAX];
	size_t len;
	int overflow;
};

static void der_append(void *ctx, const void *data, size_t len)
{
	struct der_sink *d = ctx;

	if (len > sizeof(d->buf) - d->len) {
		d->overflow = 1;
		return;
	}
	memcpy(d->buf + d->len, data, len);
	d->len += len;
}

/*
 * Decodes the first PEM object of pem[0..len) whose banner is one of want[];
 * returns the index of the banner matched, or -errno.
 */
static int pem_first(const void *pem, size_t len, const char *const *want, int nwant, struct der_sink *out)
{
	br_pem_decoder_context pc;
	const uint8_t *p = pem;
	int which = -1, in_obj = 0;

	br_pem_decoder_init(&pc);
	while (len > 0) {
		size_t n = br_pem_decoder_push(&pc, p, len);
		p += n;
		len -= n;
		switch (br_pem_decoder_event(&pc)) {
		case BR_PEM_BEGIN_OBJ:
			which = -1;
			for (int i = 0; i < nwant; i++)
				if (!strcmp(br_pem_decoder_name(&pc), want[i]))
					which = i;
			out->len = 0;
			out->overflow = 0;
			in_obj = 1;
			br_pem_decoder_setdest(&pc, which >= 0 ? der_append : NULL, out);
			break;
		case BR_PEM_END_OBJ:
			if (in_obj && which >= 0)
				return out->overflow ? -EINVAL : which;
			in_obj = 0;
			break;
		case BR_PEM_ERROR:
			return -EINVAL;
		default:
			break;
		}
	}
	return -EINVAL;
}

static int read_small_file(const char *path, char **buf, size_t *len)
{
	char *p;
	ssize_t n;
	size_t got = 0, cap = 16384;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	p = malloc(cap);
	if (!p) {
		ret = -ENOMEM;
		goto out_close;
	}
	while ((n = read(fd, p + got, cap - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			free(p);
			goto out_close;
		}
		got += (size_t)n;
		if (got == cap) {   /* a key file is a few hundred bytes; more is not a key */
			ret = -EFBIG;
			free(p);
			goto out_close;
		}
	}
	*buf = p;
	*len = got;
	ret = 0;
out_close:
	close(fd);
	return ret;
}

static void pub_set(struct snap_pubkey *k, const uint8_t q[65])
{
	memcpy(k->q, q, 65);
	snap_b3_hash(k->q, sizeof(k->q), 1, k->id);
}

int snap_key_parse_pub(const void *pem, size_t len, struct snap_pubkey *k)
{
	static const char *const banners[] = { "PUBLIC KEY" };
	struct der_sink d;
	int r;

	r = pem_first(pem, len, banners, 1, &d);
	if (r < 0)
		return r;
	if (d.len != sizeof(spki_p256_prefix) + 65 || memcmp(d.buf, spki_p256_prefix, sizeof(spki_p256_prefix)) ||
	    d.buf[sizeof(spki_p256_prefix)] != 0x04)
		return -ENOTSUP;
	pub_set(k, d.buf + sizeof(spki_p256_prefix));
	return 0;
}

/* x[0..xlen) as a 32-byte big-endian scalar in [1, n-1]; 0 or -EINVAL. */
static int scalar_set(uint8_t out[32], const uint8_t *x, size_t xlen)
{
	uint8_t any = 0;

	while (xlen > 32 && *x == 0) {
		x++;
		xlen--;
	}
	if (xlen > 32)
		return -EINVAL;
	memset(out, 0, 32);
	memcpy(out + 32 - xlen, x, xlen);
	for (int i = 0; i < 32; i++)
		any |= out[i];
	if (!any || memcmp(out, p256_order, 32) >= 0)
		return -EINVAL;
	return 0;
}

static int priv_complete(struct snap_privkey *k)
{
	br_ec_private_key sk = { BR_EC_secp256r1, k->x, 32 };
	uint8_t q[BR_EC_KBUF_PUB_MAX_SIZE];

	if (br_ec_compute_pub(&br_ec_p256_m31, NULL, q, &sk) != 65)
		return -EINVAL;
	pub_set(&k->pub, q);
	return 0;
}

int snap_key_parse_priv(const void *pem, size_t len, struct snap_privkey *k)
{
	static const char *const banners[] = { "EC PRIVATE KEY", "PRIVATE KEY" };
	br_skey_decoder_context sd;
	const br_ec_private_key *ec;
	struct der_sink d;
	int r;

	r = pem_first(pem, len, banners, 2, &d);
	if (r < 0)
		return r;
	br_skey_decoder_init(&sd);
	br_skey_decoder_push(&sd, d.buf, d.len);
	r = br_skey_decoder_last_error(&sd);
	ec = br_skey_decoder_get_ec(&sd);
	if (r != 0 || !ec)
		r = r == 0 || r == BR_ERR_X509_UNSUPPORTED ? -ENOTSUP : -EINVAL;
	else if (ec->curve != BR_EC_secp256r1)
		r = -ENOTSUP;
	else
		r = scalar_set(k->x, ec->x, ec->xlen);
	if (r == 0)
		r = priv_complete(k);
	explicit_bzero(&sd, sizeof(sd));
	explicit_bzero(&d, sizeof(d));
	return r;
}

int snap_key_load_pub(const char *path, struct snap_pubkey *k)
{
	char *buf;
	size_t len;
	int r = read_small_file(path, &buf, &len);

	if (r < 0)
		return r;
	r = snap_key_parse_pub(buf, len, k);
	free(buf);
	return r;
}

int snap_key_load_priv(const char *path, struct snap_privkey *k)
{
	char *buf;
	size_t len;
	int r = read_small_file(path, &buf, &len);

	if (r < 0)
		return r;
	r = snap_key_parse_priv(buf, len, k);
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

int snap_key_generate(struct snap_privkey *k)
{
	uint8_t seed[48];

	/* Rejection sampling straight from the kernel CSPRNG: a scalar in [1, n-1]. */
	for (int tries = 0; tries < 64; tries++) {
		if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
			return -EIO;
		if (scalar_set(k->x, seed, 32) == 0) {
			explicit_bzero(seed, sizeof(seed));
			return priv_complete(k);
		}
	}
	return -EIO;
}

static int write_pem(const char *path, mode_t mode, const void *der, size_t dlen, const char *banner)
{
	size_t plen = br_pem_encode(NULL, der, dlen, banner, BR_PEM_LINE64);
	char *pem = malloc(plen + 1);
	char tmp[4096];
	int fd, ret = 0;
	ssize_t n;

	if (!pem)
		return -ENOMEM;
	br_pem_encode(pem, der, dlen, banner, BR_PEM_LINE64);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		ret = -ENAMETOOLONG;
		goto out_free;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	n = write(fd, pem, plen);
	if (n != (ssize_t)plen || fsync(fd) < 0)
		ret = n < 0 ? -errno : -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
out_free:
	explicit_bzero(pem, plen);
	free(pem);
	return ret;
}

int snap_key_save_priv(const char *path, const struct snap_privkey *k)
{
	br_ec_private_key sk = { BR_EC_secp256r1, (unsigned char *)k->x, 32 };
	br_ec_public_key pk = { BR_EC_secp256r1, (unsigned char *)k->pub.q, 65 };
	uint8_t der[PEM_DER_MAX];
	size_t n = br_encode_ec_raw_der(der, &sk, &pk);
	int r;

	if (n == 0)
		return -EINVAL;
	r = write_pem(path, 0600, der, n, "EC PRIVATE KEY");
	explicit_bzero(der, sizeof(der));
	return r;
}

int snap_key_save_pub(const char *path, const struct snap_pubkey *k)
{
	uint8_t der[sizeof(spki_p256_prefix) + 65];

	memcpy(der, spki_p256_prefix, sizeof(spki_p256_prefix));
	memcpy(der + sizeof(spki_p256_prefix), k->q, 65);
	return write_pem(path, 0644, der, sizeof(der), "PUBLIC KEY");
}

int snap_sign_digest(const struct snap_privkey *k, const uint8_t digest[32], uint8_t sig[SNAP_SIG_LEN])
{
	br_ec_private_key sk = { BR_EC_secp256r1, (unsigned char *)k->x, 32 };

	if (br_ecdsa_i31_sign_raw(&br_ec_p256_m31, &br_sha256_vtable, digest, &sk, sig) != SNAP_SIG_LEN)
		return -EINVAL;
	if (!s_is_low(sig + 32))
		s_negate(sig + 32);
	return 0;
}

int snap_verify_digest(const struct snap_pubkey *k, const uint8_t digest[32], const uint8_t sig[SNAP_SIG_LEN])
{
	br_ec_public_key pk = { BR_EC_secp256r1, (unsigned char *)k->q, 65 };

	if (!s_is_low(sig + 32))
		return -EDOM;   /* the malleable twin of a low-s signature */
	return br_ecdsa_i31_vrfy_raw(&br_ec_p256_m31, digest, 32, &pk, sig, SNAP_SIG_LEN) == 1 ? 0 : -EKEYREJECTED;
}

static void sha256(const void *buf, size_t len, uint8_t out[32])
{
	br_sha256_context c;

	br_sha256_init(&c);
	br_sha256_update(&c, buf, len);
	br_sha256_out(&c, out);
}

int snap_manifest_sign(const void *buf, size_t len, const struct snap_privkey *k, uint8_t **out, size_t *outlen)
{
	struct snap_manifest m;
	uint8_t digest[32];
	char *text;
	size_t tlen;
	int r;

	r = snap_manifest_parse(buf, len, &m, NULL, 0);
	if (r < 0)
		return r;
	/* Re-format: the signature always covers the canonical bytes. */
	m.has_signature = 0;
	r = snap_manifest_format(&m, &text, &tlen);
	if (r < 0)
		goto out_free;
	sha256(text, tlen, digest);
	r = snap_sign_digest(k, digest, m.sig);
	if (r < 0) {
		free(text);
		goto out_free;
	}
	free(text);
	memcpy(m.sig_keyid, k->pub.id, SNAP_HASH_LEN);
	m.has_signature = 1;
	r = snap_manifest_format(&m, &text, &tlen);
	if (r == 0) {
		*out = (uint8_t *)text;
		*outlen = tlen;
	}
out_free:
	snap_manifest_free(&m);
	return r;
}

const char *snap_sig_strerror(int r)
{
	switch (r) {
	case 0:
		return "signed by a trusted key";
	case -ENOKEY:
		return "not signed by a trusted key";
	case -EKEYREJECTED:
		return "bad signature";
	case -EDOM:
		return "high-s signature (the malleable twin of a signed one: only s <= n/2 is accepted)";
	case -EINVAL:
		return "does not parse";
	default:
		return strerror(-r);
	}
}

int snap_manifest_verify(const void *buf, size_t len, const struct snap_pubkey *keys, size_t nkeys)
{
	struct snap_manifest m;
	uint8_t digest[32];
	int r = -ENOKEY;

	if (snap_manifest_parse(buf, len, &m, NULL, 0) < 0)
		return -EINVAL;
	if (!m.has_signature)
		goto out;
	sha256(buf, m.signed_len, digest);
	for (size_t i = 0; i < nkeys; i++) {
		if (memcmp(keys[i].id, m.sig_keyid, SNAP_HASH_LEN))
			continue;
		r = snap_verify_digest(&keys[i], digest, m.sig);
		if (r == 0)
			break;
	}
out:
	snap_manifest_free(&m);
	return r;
}
