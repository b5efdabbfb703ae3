/* BearSSL: PEM credentials, the per-connection server engine and the blocking client of `keel push`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bearssl.h"
#include "net/net_int.h"
#include "net/net.h"

/*
 * IMPLEMENTATION NOTES
 * - Only TLS 1.2 with ECDHE key exchange and AEAD suites (AES-GCM,
 *   ChaCha20-Poly1305) is configured, by hand rather than through
 *   br_ssl_*_init_full(), so no CBC, static-RSA or legacy code is linked in.
 *   Keys and certificates may be EC (P-256/384/521) or RSA (signatures only:
 *   ECDHE-ECDSA or ECDHE-RSA suites, whichever the key allows).
 * - The server requests a client certificate, names the CAs in its request
 *   and validates the chain with an X.509 "minimal" engine whose trust
 *   anchors are exactly those CAs; BR_OPT_TOLERATE_NO_CLIENT_AUTH stays off,
 *   so a client without a valid certificate never completes the handshake
 *   and no application byte reaches the update protocol.
 * - Each server connection owns a full 16 KiB input buffer (records from the
 *   peer may be that large) and a 1 KiB output buffer (it only sends result
 *   lines).
 */

#define MAX_CERTS 8
#define PEM_FILE_MAX (1 << 20)
#define SERVER_OBUF (1024 + 85)
#define RSA_MAX_BITS 4096   /* BearSSL's own limit on RSA moduli */

struct net_tls_creds {
	br_x509_certificate chain[MAX_CERTS];
	size_t chain_len;
	int key_type;                 /* BR_KEYTYPE_EC or BR_KEYTYPE_RSA; 0: no key */
	br_ec_private_key sk;
	unsigned char skx[BR_EC_KBUF_PRIV_MAX_SIZE];
	br_rsa_private_key rsk;       /* its five numbers in one malloc'd buffer (rsk.p) */
	br_x509_trust_anchor tas[MAX_CERTS];
	size_t ntas;
};

/*
 * What a client may make the listener do before it is authenticated is bounded: at most
 * CLIENT_CHAIN_MAX certificates of at most CLIENT_CERT_MAX bytes each are decoded and checked
 * (br_x509_minimal behind a wrapper that stops feeding it past either cap); RSA moduli above
 * RSA_MAX_BITS and curves other than BearSSL's are refused by BearSSL itself.
 */
#define CLIENT_CHAIN_MAX 4
#define CLIENT_CERT_MAX (16 * 1024)

struct capped_x509 {
	const br_x509_class *vtable;   /* first: the engine holds &vtable */
	br_x509_minimal_context inner;
	unsigned certs;
	int over;
};

struct net_tls_server {
	br_ssl_server_context sc;
	struct capped_x509 cx;
	unsigned char ibuf[BR_SSL_BUFSIZE_INPUT];
	unsigned char obuf[SERVER_OBUF];
};

struct net_tls_client {
	br_ssl_client_context cc;
	br_x509_minimal_context xc;
	br_sslio_context io;
	int fd;
	int sys_err;
	unsigned char buf[BR_SSL_BUFSIZE_BIDI];
};

static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};

/* ---- PEM and DER ------------------------------------------------------------ */

struct blob {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static void blob_append(void *ctx, const void *buf, size_t len)
{
	struct blob *b = ctx;

	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		unsigned char *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buf, len);
	b->len += len;
}

static int read_file(const char *path, struct blob *out)
{
	unsigned char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (out->len + (size_t)n > PEM_FILE_MAX) {
			close(fd);
			free(out->p);
			return -EFBIG;
		}
		blob_append(out, buf, (size_t)n);
	}
	close(fd);
	if (n < 0 || out->oom) {
		int e = n < 0 ? -EIO : -ENOMEM;
		free(out->p);
		return e;
	}
	return 0;
}

struct pem_obj {
	char name[136];
	struct blob der;
};

/* Decodes every PEM object of a file; *objs is malloc'd (free each der.p too). */
static int pem_read(const char *path, struct pem_obj **objs, size_t *n, char *err, size_t errlen)
{
	br_pem_decoder_context pc;
	struct blob file;
	struct pem_obj *v = NULL, *cur = NULL;
	size_t nv = 0, off = 0;
	int r;

	*objs = NULL;
	*n = 0;
	r = read_file(path, &file);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	blob_append(&file, "\n", 1); /* the decoder needs the last line ended */
	br_pem_decoder_init(&pc);
	while (off < file.len) {
		off += br_pem_decoder_push(&pc, file.p + off, file.len - off);
		switch (br_pem_decoder_event(&pc)) {
		case BR_PEM_BEGIN_OBJ: {
			struct pem_obj *nvp;

			if (nv == MAX_CERTS * 2) {
				snprintf(err, errlen, "%s: too many PEM objects", path);
				r = -E2BIG;
				goto fail;
			}
			nvp = realloc(v, (nv + 1) * sizeof(*v));
			if (!nvp) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			v = nvp;
			cur = &v[nv++];
			memset(cur, 0, sizeof(*cur));
			snprintf(cur->name, sizeof(cur->name), "%s", br_pem_decoder_name(&pc));
			br_pem_decoder_setdest(&pc, blob_append, &cur->der);
			break;
		}
		case BR_PEM_END_OBJ:
			if (cur && cur->der.oom) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			cur = NULL;
			break;
		case BR_PEM_ERROR:
			snprintf(err, errlen, "%s: malformed PEM", path);
			r = -EINVAL;
			goto fail;
		default:
			break;
		}
	}
	if (cur || nv == 0) {
		snprintf(err, errlen, "%s: %s", path, cur ? "unterminated PEM object" : "no PEM object");
		r = -EINVAL;
		goto fail;
	}
	free(file.p);
	*objs = v;
	*n = nv;
	return 0;

fail:
	for (size_t i = 0; i < nv; i++)
		free(v[i].der.p);
	free(v);
	free(file.p);
	return r;
}

static void pem_free(struct pem_obj *v, size_t n, int keep_der)
{
	for (size_t i = 0; i < n; i++)
		if (!keep_der)
			free(v[i].der.p);
	free(v);
}

static int is_cert(const struct pem_obj *o)
{
	return !strcmp(o->name, "CERTIFICATE") || !strcmp(o->name, "X509 CERTIFICATE");
}

static int load_chain(struct net_tls_creds *c, const char *path, char *err, size_t errlen)
{
	struct pem_obj *v;
	size_t n;
	int r = pem_read(path, &v, &n, err, errlen);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (!is_cert(&v[i]))
			continue;
		if (c->chain_len == MAX_CERTS)
			break;
		c->chain[c->chain_len].data = v[i].der.p;
		c->chain[c->chain_len].data_len = v[i].der.len;
		v[i].der.p = NULL;
		c->chain_len++;
	}
	pem_free(v, n, 0);
	if (!c->chain_len) {
		snprintf(err, errlen, "%s: no CERTIFICATE in it", path);
		return -EINVAL;
	}
	return 0;
}

/* Copies len bytes of src to *b and moves *b past them; returns where they went. */
static unsigned char *take(unsigned char **b, const unsigned char *src, size_t len)
{
	unsigned char *at = *b;

	memcpy(at, src, len);
	*b += len;
	return at;
}

static int keep_rsa(struct net_tls_creds *c, const br_rsa_private_key *k)
{
	unsigned char *b = malloc(k->plen + k->qlen + k->dplen + k->dqlen + k->iqlen);

	if (!b)
		return -ENOMEM;
	c->rsk = *k;   /* bit length and the five lengths; the pointers are replaced below */
	c->rsk.p = take(&b, k->p, k->plen);
	c->rsk.q = take(&b, k->q, k->qlen);
	c->rsk.dp = take(&b, k->dp, k->dplen);
	c->rsk.dq = take(&b, k->dq, k->dqlen);
	c->rsk.iq = take(&b, k->iq, k->iqlen);
	return 0;
}

static int load_key(struct net_tls_creds *c, const char *path, char *err, size_t errlen)
{
	br_skey_decoder_context dc;
	struct pem_obj *v;
	size_t n;
	int r = pem_read(path, &v, &n, err, errlen);

	if (r < 0)
		return r;
	r = -EINVAL;
	snprintf(err, errlen, "%s: no EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY in it", path);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, "EC PRIVATE KEY") && strcmp(v[i].name, "RSA PRIVATE KEY") &&
		    strcmp(v[i].name, "PRIVATE KEY"))
			continue;
		br_skey_decoder_init(&dc);
		br_skey_decoder_push(&dc, v[i].der.p, v[i].der.len);
		if (br_skey_decoder_last_error(&dc)) {
			snprintf(err, errlen, "%s: not a private key BearSSL can decode", path);
			break;
		}
		if (br_skey_decoder_key_type(&dc) == BR_KEYTYPE_RSA) {
			const br_rsa_private_key *k = br_skey_decoder_get_rsa(&dc);

			if (k->n_bitlen < 2048 || k->n_bitlen > RSA_MAX_BITS) {
				snprintf(err, errlen, "%s: RSA key of %u bits (2048..%d supported)", path,
					 k->n_bitlen, RSA_MAX_BITS);
				break;
			}
			r = keep_rsa(c, k);
			if (r < 0) {
				snprintf(err, errlen, "out of memory");
				break;
			}
			c->key_type = BR_KEYTYPE_RSA;
			break;
		}
		{
			const br_ec_private_key *k = br_skey_decoder_get_ec(&dc);

			if (k->xlen > sizeof(c->skx)) {
				snprintf(err, errlen, "%s: EC key too large", path);
				break;
			}
			memcpy(c->skx, k->x, k->xlen);
			c->sk.curve = k->curve;
			c->sk.x = c->skx;
			c->sk.xlen = k->xlen;
			c->key_type = BR_KEYTYPE_EC;
			r = 0;
			break;
		}
	}
	memset(&dc, 0, sizeof(dc));
	for (size_t i = 0; i < n; i++)
		if (v[i].der.p)
			memset(v[i].der.p, 0, v[i].der.len);
	pem_free(v, n, 0);
	return r;
}

/* A CA certificate becomes a trust anchor: its DN and its EC public key. */
static int add_anchor(struct net_tls_creds *c, const unsigned char *der, size_t len, char *err, size_t errlen)
{
	br_x509_decoder_context dc;
	struct blob dn = { 0 };
	br_x509_pkey *pk;
	br_x509_trust_anchor *ta = &c->tas[c->ntas];
	unsigned char *q;

	br_x509_decoder_init(&dc, blob_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (!pk || dn.oom) {
		free(dn.p);
		snprintf(err, errlen, "CA certificate does not decode (BearSSL error %d)",
			 br_x509_decoder_last_error(&dc));
		return -EINVAL;
	}
	if (pk->key_type != BR_KEYTYPE_EC && pk->key_type != BR_KEYTYPE_RSA) {
		free(dn.p);
		snprintf(err, errlen, "CA key is neither EC nor RSA");
		return -ENOTSUP;
	}
	/* one buffer for the key's numbers: EC q, or RSA n then e */
	q = malloc(pk->key_type == BR_KEYTYPE_EC ? pk->key.ec.qlen : pk->key.rsa.nlen + pk->key.rsa.elen);
	if (!q) {
		free(dn.p);
		return -ENOMEM;
	}
	memset(ta, 0, sizeof(*ta));
	ta->dn.data = dn.p;
	ta->dn.len = dn.len;
	ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta->pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_EC) {
		memcpy(q, pk->key.ec.q, pk->key.ec.qlen);
		ta->pkey.key.ec.curve = pk->key.ec.curve;
		ta->pkey.key.ec.q = q;
		ta->pkey.key.ec.qlen = pk->key.ec.qlen;
	} else {
		memcpy(q, pk->key.rsa.n, pk->key.rsa.nlen);
		memcpy(q + pk->key.rsa.nlen, pk->key.rsa.e, pk->key.rsa.elen);
		ta->pkey.key.rsa.n = q;
		ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta->pkey.key.rsa.e = q + pk->key.rsa.nlen;
		ta->pkey.key.rsa.elen = pk->key.rsa.elen;
	}
	c->ntas++;
	return 0;
}

static int load_cas(struct net_tls_creds *c, const char *path, char *err, size_t errlen)
{
	struct pem_obj *v;
	size_t n;
	int r = pem_read(path, &v, &n, err, errlen);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!is_cert(&v[i]) || c->ntas == MAX_CERTS)
			continue;
		r = add_anchor(c, v[i].der.p, v[i].der.len, err, errlen);
	}
	pem_free(v, n, 0);
	if (r == 0 && !c->ntas) {
		snprintf(err, errlen, "%s: no CA CERTIFICATE in it", path);
		r = -EINVAL;
	}
	return r;
}

void net_tls_creds_free(struct net_tls_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->chain_len; i++)
		free(c->chain[i].data);
	for (size_t i = 0; i < c->ntas; i++) {
		free(c->tas[i].dn.data);
		free(c->tas[i].pkey.key_type == BR_KEYTYPE_EC ? c->tas[i].pkey.key.ec.q : c->tas[i].pkey.key.rsa.n);
	}
	if (c->rsk.p) {
		memset(c->rsk.p, 0, c->rsk.plen + c->rsk.qlen + c->rsk.dplen + c->rsk.dqlen + c->rsk.iqlen);
		free(c->rsk.p);
	}
	memset(c, 0, sizeof(*c));
	free(c);
}

int net_tls_creds_load(struct net_tls_creds **out, const char *cert, const char *key, const char *ca,
		       char *err, size_t errlen)
{
	struct net_tls_creds *c;
	int r;

	*out = NULL;
	if (!ca || !cert != !key) {
		snprintf(err, errlen, "TLS needs --ca, and --cert with --key");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = cert ? load_chain(c, cert, err, errlen) : 0;
	if (r == 0 && key)
		r = load_key(c, key, err, errlen);
	if (r == 0)
		r = load_cas(c, ca, err, errlen);
	if (r < 0) {
		net_tls_creds_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* ---- engines ---------------------------------------------------------------- */

static int seed(br_ssl_engine_context *eng)
{
	unsigned char rnd[32];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	br_ssl_engine_inject_entropy(eng, rnd, sizeof(rnd));
	memset(rnd, 0, sizeof(rnd));
	return 0;
}

/* Certificate checking against c's CAs: SHA-2 hashes, ECDSA and RSA signatures. */
static void x509_init(br_x509_minimal_context *xc, const struct net_tls_creds *c)
{
	br_x509_minimal_init(xc, &br_sha256_vtable, c->tas, c->ntas);
	br_x509_minimal_set_hash(xc, br_sha256_ID, &br_sha256_vtable);
	br_x509_minimal_set_hash(xc, br_sha384_ID, &br_sha384_vtable);
	br_x509_minimal_set_hash(xc, br_sha512_ID, &br_sha512_vtable);
	br_x509_minimal_set_ecdsa(xc, br_ec_get_default(), br_ecdsa_vrfy_asn1_get_default());
	br_x509_minimal_set_rsa(xc, br_rsa_pkcs1_vrfy_get_default());
}

/* What client and server share: versions, suites, hashes, PRFs, AEADs, EC, X.509 against the CAs. */
static void engine_common(br_ssl_engine_context *eng, br_x509_minimal_context *xc, const struct net_tls_creds *c)
{
	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, suites, sizeof(suites) / sizeof(suites[0]));
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_chapol(eng);
	br_ssl_engine_set_default_ec(eng);
	br_ssl_engine_set_default_ecdsa(eng);
	br_ssl_engine_set_default_rsavrfy(eng);

	x509_init(xc, c);
	br_ssl_engine_set_x509(eng, &xc->vtable);
}

static struct capped_x509 *capped(const br_x509_class **ctx)
{
	return (struct capped_x509 *)(void *)ctx;
}

static void cx_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct capped_x509 *x = capped(ctx);

	x->certs = 0;
	x->over = 0;
	x->inner.vtable->start_chain(&x->inner.vtable, server_name);
}

static void cx_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct capped_x509 *x = capped(ctx);

	if (++x->certs > CLIENT_CHAIN_MAX || length > CLIENT_CERT_MAX)
		x->over = 1;
	if (!x->over)
		x->inner.vtable->start_cert(&x->inner.vtable, length);
}

static void cx_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct capped_x509 *x = capped(ctx);

	if (!x->over)
		x->inner.vtable->append(&x->inner.vtable, buf, len);
}

static void cx_end_cert(const br_x509_class **ctx)
{
	struct capped_x509 *x = capped(ctx);

	if (!x->over)
		x->inner.vtable->end_cert(&x->inner.vtable);
}

static unsigned cx_end_chain(const br_x509_class **ctx)
{
	struct capped_x509 *x = capped(ctx);
	unsigned r = x->inner.vtable->end_chain(&x->inner.vtable);

	return x->over ? BR_ERR_X509_LIMIT_EXCEEDED : r;
}

static const br_x509_pkey *cx_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct capped_x509 *x = (const struct capped_x509 *)(const void *)ctx;

	return x->over ? NULL : x->inner.vtable->get_pkey(&x->inner.vtable, usages);
}

static const br_x509_class capped_vtable = {
	sizeof(struct capped_x509), cx_start_chain, cx_start_cert, cx_append, cx_end_cert, cx_end_chain, cx_get_pkey,
};

int net_tls_creds_self_trusted(const struct net_tls_creds *c)
{
	br_x509_minimal_context xc;
	const br_x509_class **v = &xc.vtable;

	if (!c->chain_len)
		return 0;
	x509_init(&xc, c);
	(*v)->start_chain(v, NULL);
	for (size_t i = 0; i < c->chain_len; i++) {
		(*v)->start_cert(v, (uint32_t)c->chain[i].data_len);
		(*v)->append(v, c->chain[i].data, c->chain[i].data_len);
		(*v)->end_cert(v);
	}
	return (*v)->end_chain(v) == BR_ERR_OK;
}

int net_tls_server_new(const struct net_tls_creds *c, struct net_tls_server **out)
{
	struct net_tls_server *t;

	*out = NULL;
	if (!c->chain_len || !c->key_type)
		return -EINVAL;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	br_ssl_server_zero(&t->sc);
	engine_common(&t->sc.eng, &t->cx.inner, c);
	t->cx.vtable = &capped_vtable;
	br_ssl_engine_set_x509(&t->sc.eng, &t->cx.vtable);
	if (c->key_type == BR_KEYTYPE_RSA)
		br_ssl_server_set_single_rsa(&t->sc, c->chain, c->chain_len, &c->rsk, BR_KEYTYPE_SIGN,
					     br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
	else
		br_ssl_server_set_single_ec(&t->sc, c->chain, c->chain_len, &c->sk, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
					    br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
	br_ssl_server_set_trust_anchor_names_alt(&t->sc, c->tas, c->ntas);
	br_ssl_engine_set_buffers_bidi(&t->sc.eng, t->ibuf, sizeof(t->ibuf), t->obuf, sizeof(t->obuf));
	if (seed(&t->sc.eng) < 0 || !br_ssl_server_reset(&t->sc)) {
		free(t);
		return -EIO;
	}
	*out = t;
	return 0;
}

void net_tls_server_free(struct net_tls_server *t)
{
	free(t);
}

void *net_tls_server_engine(struct net_tls_server *t)
{
	return &t->sc.eng;
}

static int low_read(void *ctx, unsigned char *buf, size_t len)
{
	struct net_tls_client *t = ctx;

	for (;;) {
		ssize_t n = read(t->fd, buf, len);
		if (n > 0)
			return (int)n;
		if (n < 0 && errno == EINTR)
			continue;
		t->sys_err = n == 0 ? ECONNRESET : errno;
		return -1;
	}
}

static int low_write(void *ctx, const unsigned char *buf, size_t len)
{
	struct net_tls_client *t = ctx;

	for (;;) {
		ssize_t n = write(t->fd, buf, len);
		if (n > 0)
			return (int)n;
		if (n < 0 && errno == EINTR)
			continue;
		t->sys_err = n == 0 ? EPIPE : errno;
		return -1;
	}
}

int net_tls_client_new(const struct net_tls_creds *c, const char *server_name, int fd, struct net_tls_client **out)
{
	struct net_tls_client *t;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = fd;
	br_ssl_client_zero(&t->cc);
	engine_common(&t->cc.eng, &t->xc, c);
	if (c->key_type == BR_KEYTYPE_RSA)
		br_ssl_client_set_single_rsa(&t->cc, c->chain, c->chain_len, &c->rsk, br_rsa_pkcs1_sign_get_default());
	else if (c->key_type == BR_KEYTYPE_EC)
		br_ssl_client_set_single_ec(&t->cc, c->chain, c->chain_len, &c->sk, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
					    br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
	br_ssl_engine_set_buffer(&t->cc.eng, t->buf, sizeof(t->buf), 1);
	/* Without a server name the appliance is identified by holding a certificate from the CA. */
	if (seed(&t->cc.eng) < 0 || !br_ssl_client_reset(&t->cc, server_name, 0)) {
		free(t);
		return -EIO;
	}
	br_sslio_init(&t->io, &t->cc.eng, low_read, t, low_write, t);
	*out = t;
	return 0;
}

static int client_err(struct net_tls_client *t)
{
	if (br_ssl_engine_last_error(&t->cc.eng) != BR_ERR_OK)
		return -EPROTO;
	return t->sys_err ? -t->sys_err : -EPROTO;
}

int net_tls_client_write(struct net_tls_client *t, const void *buf, size_t len)
{
	if (br_sslio_write_all(&t->io, buf, len) < 0)
		return client_err(t);
	return 0;
}

int net_tls_client_flush(struct net_tls_client *t)
{
	if (br_sslio_flush(&t->io) < 0)
		return client_err(t);
	return 0;
}

long net_tls_client_read(struct net_tls_client *t, void *buf, size_t len)
{
	int n = br_sslio_read(&t->io, buf, len);

	if (n < 0) {
		/* A clean close_notify reads as end of stream. */
		if (br_ssl_engine_last_error(&t->cc.eng) == BR_ERR_OK &&
		    (br_ssl_engine_current_state(&t->cc.eng) & BR_SSL_CLOSED))
			return 0;
		return client_err(t);
	}
	return n;
}

int net_tls_client_error(struct net_tls_client *t)
{
	return br_ssl_engine_last_error(&t->cc.eng);
}

void net_tls_client_free(struct net_tls_client *t)
{
	free(t);
}

const char *net_tls_strerror(int e)
{
	switch (e) {
	case BR_ERR_OK: return "no error";
	case BR_ERR_BAD_VERSION: return "unsupported TLS version";
	case BR_ERR_BAD_CIPHER_SUITE: return "no common cipher suite";
	case BR_ERR_NO_CLIENT_AUTH: return "client sent no certificate";
	case BR_ERR_X509_NOT_TRUSTED: return "certificate not signed by a trusted CA";
	case BR_ERR_X509_BAD_SERVER_NAME: return "the appliance's certificate does not name --server-name";
	case BR_ERR_X509_EXPIRED: return "certificate expired or not yet valid";
	case BR_ERR_X509_EMPTY_CHAIN: return "empty certificate chain";
	case BR_ERR_X509_LIMIT_EXCEEDED: return "certificate chain over the limit (4 certificates of 16 KiB at most)";
	case BR_ERR_X509_BAD_SIGNATURE: return "bad certificate signature";
	case BR_ERR_BAD_SIGNATURE: return "bad handshake signature";
	case BR_ERR_UNEXPECTED: return "unexpected message";
	case BR_ERR_IO: return "I/O error";
	case BR_ERR_BAD_MAC: return "bad record MAC";
	default:
		if (e >= BR_ERR_RECV_FATAL_ALERT && e < BR_ERR_RECV_FATAL_ALERT + 256)
			return "peer sent a fatal alert";
		if (e >= BR_ERR_SEND_FATAL_ALERT && e < BR_ERR_SEND_FATAL_ALERT + 256)
			return "sent a fatal alert";
		if (e >= 32 && e < 64)
			return "certificate rejected";
		return "handshake failed";
	}
}

const char *net_tls_selftest(void)
{
	/* FIPS 180-2 example: SHA-256("abc"). */
	static const unsigned char want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	unsigned char got[32];
	br_sha256_context sc;

	br_sha256_init(&sc);
	br_sha256_update(&sc, "abc", 3);
	br_sha256_out(&sc, got);
	if (memcmp(got, want, sizeof(got)) != 0)
		return "sha256 self-test FAILED";
	return "sha256 known-answer ok";
}
