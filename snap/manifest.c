/* Manifest v1: the strict parser of untrusted manifest bytes and the canonical formatter. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel_config.h"
#include "snap/snap.h"

/*
 * IMPLEMENTATION NOTES
 * The format has exactly one spelling per manifest (single spaces, decimal
 * without leading zeros, lowercase hex, fixed field order, "\n" after every
 * line), so parse(format(m)) == m and format(parse(b)) == b byte for byte:
 * the id of a manifest is a function of its meaning. The parser walks a
 * table of fields in order; `next` is the first field not yet seen, which is
 * how it tells a duplicate (seen before) from a field out of order (ahead of
 * a required one) apart. It stops at the first error; the message names the
 * line.
 */

enum field {
	F_NAME, F_PARENT, F_KERNEL, F_INITRD, F_CMDLINE, F_MEMORY, F_CHUNK, F_VCPUS, F_VCPU, F_VM_STATE,
	F_DEVICES, F_DISK, F_DISK_CHUNK, F_CPU_QUOTA, F_NET, F_MARKER, F_TIMEOUT, F_CREATED, F_SIGNATURE, F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"name", "parent", "kernel", "initrd", "cmdline", "memory", "chunk", "vcpus", "vcpu", "vm-state",
	"devices", "disk", "disk-chunk", "policy-cpu-quota", "policy-net", "policy-health-marker",
	"policy-health-timeout", "created", "signature",
};

/* Lines that may be left out (runs of zero or more). */
static int optional(int f)
{
	return f == F_CHUNK || f == F_DISK || f == F_DISK_CHUNK;
}

struct parser {
	const char *p;          /* the current line's value (after "field ") */
	size_t len;             /* its length */
	unsigned line;
	char *err;
	size_t errlen;
	int failed;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return -EINVAL;
	ps->failed = 1;
	if (ps->err && ps->errlen) {
		n = snprintf(ps->err, ps->errlen, "line %u: ", ps->line);
		if (n >= 0 && (size_t)n < ps->errlen) {
			va_start(ap, fmt);
			vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

/* Takes the next space-separated token of the value; -1 when there is none. */
static int token(struct parser *ps, const char **tok, size_t *tlen)
{
	size_t i = 0;

	if (ps->len == 0)
		return -1;
	while (i < ps->len && ps->p[i] != ' ')
		i++;
	*tok = ps->p;
	*tlen = i;
	if (i < ps->len) {
		i++;    /* the separator */
		if (i == ps->len)
			return -2;   /* a trailing space: not canonical */
	}
	ps->p += i;
	ps->len -= i;
	return 0;
}

static int need_token(struct parser *ps, const char *what, const char **tok, size_t *tlen)
{
	int r = token(ps, tok, tlen);

	if (r == -1)
		return fail(ps, "missing %s", what);
	if (r == -2 || *tlen == 0)
		return fail(ps, "stray space in %s", what);
	return 0;
}

static int end_of_line(struct parser *ps, const char *field)
{
	if (ps->len)
		return fail(ps, "trailing garbage after the '%s' value", field);
	return 0;
}

static int parse_u64(struct parser *ps, const char *what, uint64_t max, uint64_t *out)
{
	const char *t;
	size_t n;
	uint64_t v = 0;

	if (need_token(ps, what, &t, &n) < 0)
		return -EINVAL;
	if (n > 1 && t[0] == '0')
		return fail(ps, "%s has a leading zero", what);
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)t[i] - '0';
		if (d > 9)
			return fail(ps, "%s is not a decimal number", what);
		if (v > (UINT64_MAX - d) / 10)
			return fail(ps, "%s overflows", what);
		v = v * 10 + d;
	}
	if (v > max)
		return fail(ps, "%s %llu is out of range (max %llu)", what, (unsigned long long)v,
			    (unsigned long long)max);
	*out = v;
	return 0;
}

static int parse_hex(struct parser *ps, const char *what, uint8_t id[SNAP_HASH_LEN])
{
	const char *t;
	size_t n;

	if (need_token(ps, what, &t, &n) < 0)
		return -EINVAL;
	if (snap_unhex(t, n, id) < 0)
		return fail(ps, "bad hex in %s (want 64 lowercase hex digits)", what);
	return 0;
}

/* HEX64 or "none". */
static int parse_opt_hex(struct parser *ps, const char *what, int *has, uint8_t id[SNAP_HASH_LEN])
{
	if (ps->len == 4 && !memcmp(ps->p, "none", 4)) {
		*has = 0;
		memset(id, 0, SNAP_HASH_LEN);
		ps->p += 4;
		ps->len = 0;
		return 0;
	}
	*has = 1;
	return parse_hex(ps, what, id);
}

/* The rest of the line as printable ASCII text (may be empty). */
static int parse_text(struct parser *ps, const char *what, char *out, size_t max)
{
	if (ps->len > max)
		return fail(ps, "%s is longer than %zu bytes", what, max);
	for (size_t i = 0; i < ps->len; i++)
		if (ps->p[i] < 0x20 || ps->p[i] > 0x7e)
			return fail(ps, "%s has a non-printable byte at column %zu", what, i + 1);
	memcpy(out, ps->p, ps->len);
	out[ps->len] = 0;
	ps->p += ps->len;
	ps->len = 0;
	return 0;
}

/* Appends a chunk to a list of *n (room for *cap). */
static int add_chunk(struct snap_manifest_chunk **list, size_t *n, size_t *cap, uint64_t index,
		     const uint8_t id[SNAP_HASH_LEN])
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct snap_manifest_chunk *l = realloc(*list, ncap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		*list = l;
		*cap = ncap;
	}
	(*list)[*n].index = index;
	memcpy((*list)[*n].id, id, SNAP_HASH_LEN);
	(*n)++;
	return 0;
}

static int disk_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > SNAP_DISK_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

static uint64_t disk_chunks(const struct snap_manifest_disk *d)
{
	return (d->bytes + d->chunk_bytes - 1) / d->chunk_bytes;
}

void snap_manifest_init(struct snap_manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->chunk_bytes = (uint64_t)CONFIG_SNAP_CHUNK_KIB * 1024;
	m->vcpus = 1;
	m->cpu_quota = 100;
	m->health_timeout = CONFIG_HEALTH_TIMEOUT_S;
}

void snap_manifest_free(struct snap_manifest *m)
{
	free(m->chunks);
	m->chunks = NULL;
	m->nchunks = 0;
	for (size_t i = 0; i < m->ndisks; i++) {
		free(m->disks[i].chunks);
		m->disks[i].chunks = NULL;
		m->disks[i].nchunks = 0;
	}
	m->ndisks = 0;
}

/* One line's field, checked against the fixed order. */
static int parse_field(struct parser *ps, struct snap_manifest *m, enum field f, size_t *chunk_cap,
		       uint32_t *vcpu_seen)
{
	uint64_t v, w;
	const char *t;
	size_t n;
	int r;

	switch (f) {
	case F_NAME:
		if (!snap_name_valid(ps->p, ps->len))
			return fail(ps, "bad name (want [A-Za-z0-9._-]{1,64})");
		memcpy(m->name, ps->p, ps->len);
		m->name[ps->len] = 0;
		ps->len = 0;
		return 0;
	case F_PARENT:
		return parse_opt_hex(ps, "parent", &m->has_parent, m->parent);
	case F_KERNEL:
		return parse_opt_hex(ps, "kernel", &m->has_kernel, m->kernel);
	case F_INITRD:
		return parse_opt_hex(ps, "initrd", &m->has_initrd, m->initrd);
	case F_CMDLINE:
		return parse_text(ps, "cmdline", m->cmdline, SNAP_CMDLINE_MAX);
	case F_MEMORY:
		if (parse_u64(ps, "memory bytes", UINT64_MAX, &v) < 0 ||
		    parse_u64(ps, "chunk bytes", (uint64_t)1 << 40, &w) < 0)
			return -EINVAL;
		if (w < 4096 || (w & (w - 1)))
			return fail(ps, "chunk bytes %llu is not a power of two >= 4096", (unsigned long long)w);
		if (v == 0 || v % w)
			return fail(ps, "memory bytes %llu is not a non-zero multiple of the chunk size",
				    (unsigned long long)v);
		m->memory_bytes = v;
		m->chunk_bytes = w;
		return 0;
	case F_CHUNK: {
		uint8_t id[SNAP_HASH_LEN];
		if (parse_u64(ps, "chunk index", m->memory_bytes / m->chunk_bytes - 1, &v) < 0)
			return -EINVAL;
		if (m->nchunks && v <= m->chunks[m->nchunks - 1].index)
			return fail(ps, "chunk index %llu is not strictly ascending", (unsigned long long)v);
		if (parse_hex(ps, "chunk id", id) < 0)
			return -EINVAL;
		r = add_chunk(&m->chunks, &m->nchunks, chunk_cap, v, id);
		return r < 0 ? fail(ps, "out of memory"), r : 0;
	}
	case F_DISK: {
		struct snap_manifest_disk *d = &m->disks[m->ndisks];

		if (token(ps, &t, &n) < 0 || !disk_name_ok(t, n))
			return fail(ps, "bad disk name (want [a-z0-9]{1,%d})", SNAP_DISK_NAME_MAX);
		if (m->ndisks == SNAP_MAX_DISKS)
			return fail(ps, "more than %d disks", SNAP_MAX_DISKS);
		memcpy(d->name, t, n);
		d->name[n] = 0;
		if (m->ndisks && strcmp(m->disks[m->ndisks - 1].name, d->name) >= 0)
			return fail(ps, "disk '%s' is not after '%s' in name order", d->name, m->disks[m->ndisks - 1].name);
		if (parse_u64(ps, "disk bytes", (uint64_t)1 << 50, &v) < 0 ||
		    parse_u64(ps, "disk chunk bytes", (uint64_t)1 << 40, &w) < 0)
			return -EINVAL;
		if (v == 0 || v % 512)
			return fail(ps, "disk bytes %llu is not a non-zero multiple of 512", (unsigned long long)v);
		if (w < 4096 || (w & (w - 1)))
			return fail(ps, "disk chunk bytes %llu is not a power of two >= 4096", (unsigned long long)w);
		if (token(ps, &t, &n) < 0 || n != 2 || memcmp(t, "ro", 2))
			return fail(ps, "a disk in a manifest is read-only: want 'ro' after its chunk size");
		d->bytes = v;
		d->chunk_bytes = w;
		*chunk_cap = 0;
		m->ndisks++;
		return 0;
	}
	case F_DISK_CHUNK: {
		struct snap_manifest_disk *d;
		uint8_t id[SNAP_HASH_LEN];

		if (!m->ndisks)
			return fail(ps, "disk-chunk before any disk line");
		d = &m->disks[m->ndisks - 1];
		if (parse_u64(ps, "disk chunk index", disk_chunks(d) - 1, &v) < 0)
			return -EINVAL;
		if (d->nchunks && v <= d->chunks[d->nchunks - 1].index)
			return fail(ps, "disk chunk index %llu is not strictly ascending", (unsigned long long)v);
		if (parse_hex(ps, "disk chunk id", id) < 0)
			return -EINVAL;
		r = add_chunk(&d->chunks, &d->nchunks, chunk_cap, v, id);
		return r < 0 ? fail(ps, "out of memory"), r : 0;
	}
	case F_VCPUS:
		if (parse_u64(ps, "vcpus", CONFIG_VMM_MAX_VCPUS < SNAP_MAX_VCPUS ? CONFIG_VMM_MAX_VCPUS : SNAP_MAX_VCPUS,
			      &v) < 0)
			return -EINVAL;
		if (v == 0)
			return fail(ps, "vcpus must be at least 1");
		m->vcpus = (uint32_t)v;
		return 0;
	case F_VCPU:
		if (parse_u64(ps, "vcpu index", UINT64_MAX, &v) < 0)
			return -EINVAL;
		if (v != *vcpu_seen)
			return fail(ps, "vcpu index %llu out of order (want %u)", (unsigned long long)v, *vcpu_seen);
		if (v >= m->vcpus)
			return fail(ps, "more vcpu lines than vcpus %u", m->vcpus);
		if (parse_hex(ps, "vcpu state id", m->vcpu[v]) < 0)
			return -EINVAL;
		(*vcpu_seen)++;
		return 0;
	case F_VM_STATE:
		return parse_hex(ps, "vm-state", m->vm_state);
	case F_DEVICES:
		return parse_hex(ps, "devices", m->devices);
	case F_CPU_QUOTA:
		if (parse_u64(ps, "policy-cpu-quota", 100ULL * m->vcpus, &v) < 0)
			return -EINVAL;
		if (v == 0)
			return fail(ps, "policy-cpu-quota must be at least 1");
		m->cpu_quota = (uint32_t)v;
		return 0;
	case F_NET:
		if (need_token(ps, "policy-net", &t, &n) < 0)
			return -EINVAL;
		if (n == 2 && !memcmp(t, "on", 2))
			m->net = 1;
		else if (n == 3 && !memcmp(t, "off", 3))
			m->net = 0;
		else
			return fail(ps, "policy-net must be 'on' or 'off'");
		return 0;
	case F_MARKER:
		return parse_text(ps, "policy-health-marker", m->health_marker, SNAP_MARKER_MAX);
	case F_TIMEOUT:
		if (parse_u64(ps, "policy-health-timeout", UINT32_MAX, &v) < 0)
			return -EINVAL;
		m->health_timeout = (uint32_t)v;
		return 0;
	case F_CREATED:
		return parse_u64(ps, "created", UINT64_MAX, &m->created);
	case F_SIGNATURE: {
		uint8_t sig[SNAP_SIG_LEN];
		if (need_token(ps, "signature algorithm", &t, &n) < 0)
			return -EINVAL;
		if (n != 10 || memcmp(t, "ecdsa-p256", 10))
			return fail(ps, "unknown signature algorithm '%.*s'", (int)(n > 32 ? 32 : n), t);
		if (parse_hex(ps, "signature key id", m->sig_keyid) < 0)
			return -EINVAL;
		if (need_token(ps, "signature", &t, &n) < 0)
			return -EINVAL;
		if (n != 2 * SNAP_SIG_LEN || !snap_is_hex64(t, 64) || !snap_is_hex64(t + 64, 64))
			return fail(ps, "bad hex in signature (want 128 lowercase hex digits)");
		snap_unhex(t, 64, sig);
		snap_unhex(t + 64, 64, sig + 32);
		memcpy(m->sig, sig, sizeof(sig));
		m->has_signature = 1;
		return 0;
	}
	case F_COUNT:
		break;
	}
	return fail(ps, "internal: no such field");
}

int snap_manifest_parse(const void *buf, size_t len, struct snap_manifest *m, char *err, size_t errlen)
{
	static const char magic_prefix[] = "keel-manifest ";
	struct parser ps = { .line = 1, .err = err, .errlen = errlen };
	const char *b = buf, *end = b + len, *line;
	size_t chunk_cap = 0;
	uint32_t vcpu_seen = 0;
	int next = F_NAME, seen_last = -1, ret = -EINVAL;

	snap_manifest_init(m);
	if (err && errlen)
		err[0] = 0;
	if (len > (size_t)CONFIG_SNAP_MAX_MANIFEST_BYTES) {
		fail(&ps, "manifest of %zu bytes exceeds the cap of %d bytes", len, CONFIG_SNAP_MAX_MANIFEST_BYTES);
		return -E2BIG;
	}
	if (len == 0 || b[len - 1] != '\n') {
		/* Name the last line: that is the one without its newline. */
		for (size_t i = 0; i + 1 < len; i++)
			ps.line += b[i] == '\n';
		fail(&ps, len ? "missing final newline" : "empty manifest");
		return -EINVAL;
	}

	line = b;
	{
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = (size_t)(nl - line);
		if (n < sizeof(magic_prefix) - 1 || memcmp(line, magic_prefix, sizeof(magic_prefix) - 1)) {
			fail(&ps, "not a keel manifest (want \"keel-manifest 1\")");
			goto err;
		}
		if (n != sizeof(SNAP_MANIFEST_MAGIC) - 2 || memcmp(line, SNAP_MANIFEST_MAGIC, n)) {
			fail(&ps, "unknown manifest version '%.*s'", (int)(n - (sizeof(magic_prefix) - 1) > 20 ? 20 :
				  n - (sizeof(magic_prefix) - 1)), line + sizeof(magic_prefix) - 1);
			goto err;
		}
		line = nl + 1;
	}

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = (size_t)(nl - line), klen = 0;
		int f;

		ps.line++;
		if (seen_last == F_SIGNATURE) {
			fail(&ps, "trailing garbage after the signature line");
			goto err;
		}
		while (klen < n && line[klen] != ' ')
			klen++;
		for (f = 0; f < F_COUNT; f++)
			if (strlen(field_names[f]) == klen && !memcmp(field_names[f], line, klen))
				break;
		if (f == F_COUNT) {
			fail(&ps, "unknown field '%.*s'", (int)(klen > 40 ? 40 : klen), line);
			goto err;
		}
		if (f < next) {
			/* Repeatable lines continue their own run; anything else seen already is a duplicate. */
			if (!((f == F_CHUNK || f == F_VCPU) && seen_last == f))
				fail(&ps, f <= seen_last && !(f == F_CHUNK || f == F_VCPU) ? "duplicate field '%s'"
					  : "field '%s' out of order", field_names[f]);
			if (ps.failed)
				goto err;
		} else {
			/* Skipping ahead is fine only over the optional runs (chunk and disk lines). */
			for (int g = next; g < f; g++) {
				if (optional(g))
					continue;
				if (g == F_VCPU && m->vcpus == vcpu_seen)
					continue;
				fail(&ps, "field '%s' out of order (expected '%s')", field_names[f], field_names[g]);
				goto err;
			}
		}
		if (f == F_VM_STATE && vcpu_seen != m->vcpus) {
			fail(&ps, "%u vcpu lines for vcpus %u", vcpu_seen, m->vcpus);
			goto err;
		}
		if (f == F_SIGNATURE)
			m->signed_len = (size_t)(line - b);
		if (klen == n && f != F_NAME) {
			fail(&ps, "field '%s' has no value", field_names[f]);
			goto err;
		}
		if (klen == n) {
			fail(&ps, "bad name (want [A-Za-z0-9._-]{1,64})");
			goto err;
		}
		ps.p = line + klen + 1;
		ps.len = n - klen - 1;
		ret = parse_field(&ps, m, (enum field)f, &chunk_cap, &vcpu_seen);
		if (ret == 0 && end_of_line(&ps, field_names[f]) < 0)
			ret = -EINVAL;
		if (ret < 0)
			goto err;
		ret = -EINVAL;
		seen_last = f;
		next = f + 1;
		if (f == F_CHUNK || f == F_VCPU)
			next = f;       /* more of the same may follow */
		if (f == F_DISK || f == F_DISK_CHUNK)
			next = F_DISK;  /* a disk's chunks, or the next disk */
		line = nl + 1;
	}
	if (seen_last < F_CREATED) {
		ps.line++;   /* the line where the missing field was due */
		for (int g = next; g <= F_CREATED; g++) {
			if (optional(g) || (g == F_VCPU && vcpu_seen == m->vcpus))
				continue;
			fail(&ps, "missing field '%s' at the end of the manifest", field_names[g]);
			break;
		}
		goto err;
	}
	if (!m->has_signature)
		m->signed_len = len;
	return 0;

err:
	snap_manifest_free(m);
	return ret;
}

/* ---- canonical formatter -------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void put(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(sb->p ? sb->p + sb->len : NULL, sb->p ? sb->cap - sb->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->err = -EINVAL;
			return;
		}
		if (sb->p && (size_t)n < sb->cap - sb->len) {
			sb->len += (size_t)n;
			return;
		}
		size_t ncap = sb->cap ? sb->cap : 4096;
		while (ncap - sb->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(sb->p, ncap);
		if (!np) {
			sb->err = -ENOMEM;
			return;
		}
		sb->p = np;
		sb->cap = ncap;
	}
}

static void put_opt_hex(struct sbuf *sb, const char *field, int has, const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];

	if (!has) {
		put(sb, "%s none\n", field);
		return;
	}
	snap_hex(id, hex);
	put(sb, "%s %s\n", field, hex);
}

static int text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int snap_manifest_format(const struct snap_manifest *m, char **buf, size_t *len)
{
	struct sbuf sb = { 0 };
	char hex[SNAP_HEX_LEN + 1];

	/* Refuse to write what the parser would refuse to read. */
	if (!snap_name_valid(m->name, strnlen(m->name, sizeof(m->name))) ||
	    !text_ok(m->cmdline, SNAP_CMDLINE_MAX) || !text_ok(m->health_marker, SNAP_MARKER_MAX) ||
	    m->chunk_bytes < 4096 || (m->chunk_bytes & (m->chunk_bytes - 1)) || m->memory_bytes == 0 ||
	    m->memory_bytes % m->chunk_bytes || m->vcpus == 0 || m->vcpus > SNAP_MAX_VCPUS ||
	    m->vcpus > CONFIG_VMM_MAX_VCPUS || m->cpu_quota == 0 || m->cpu_quota > 100 * m->vcpus)
		return -EINVAL;
	for (size_t i = 0; i < m->nchunks; i++)
		if (m->chunks[i].index >= m->memory_bytes / m->chunk_bytes ||
		    (i && m->chunks[i].index <= m->chunks[i - 1].index))
			return -EINVAL;
	if (m->ndisks > SNAP_MAX_DISKS)
		return -EINVAL;
	for (size_t i = 0; i < m->ndisks; i++) {
		const struct snap_manifest_disk *d = &m->disks[i];

		if (!disk_name_ok(d->name, strnlen(d->name, sizeof(d->name))) || d->name[SNAP_DISK_NAME_MAX] ||
		    (i && strcmp(m->disks[i - 1].name, d->name) >= 0) || !d->bytes || d->bytes % 512 ||
		    d->bytes > (uint64_t)1 << 50 || d->chunk_bytes < 4096 || (d->chunk_bytes & (d->chunk_bytes - 1)) ||
		    d->chunk_bytes > (uint64_t)1 << 40)
			return -EINVAL;
		for (size_t k = 0; k < d->nchunks; k++)
			if (d->chunks[k].index >= disk_chunks(d) || (k && d->chunks[k].index <= d->chunks[k - 1].index))
				return -EINVAL;
	}

	put(&sb, "%s", SNAP_MANIFEST_MAGIC);
	put(&sb, "name %s\n", m->name);
	put_opt_hex(&sb, "parent", m->has_parent, m->parent);
	put_opt_hex(&sb, "kernel", m->has_kernel, m->kernel);
	put_opt_hex(&sb, "initrd", m->has_initrd, m->initrd);
	put(&sb, "cmdline %s\n", m->cmdline);
	put(&sb, "memory %llu %llu\n", (unsigned long long)m->memory_bytes, (unsigned long long)m->chunk_bytes);
	for (size_t i = 0; i < m->nchunks; i++) {
		snap_hex(m->chunks[i].id, hex);
		put(&sb, "chunk %llu %s\n", (unsigned long long)m->chunks[i].index, hex);
	}
	put(&sb, "vcpus %u\n", m->vcpus);
	for (uint32_t i = 0; i < m->vcpus; i++) {
		snap_hex(m->vcpu[i], hex);
		put(&sb, "vcpu %u %s\n", i, hex);
	}
	snap_hex(m->vm_state, hex);
	put(&sb, "vm-state %s\n", hex);
	snap_hex(m->devices, hex);
	put(&sb, "devices %s\n", hex);
	for (size_t i = 0; i < m->ndisks; i++) {
		const struct snap_manifest_disk *d = &m->disks[i];

		put(&sb, "disk %s %llu %llu ro\n", d->name, (unsigned long long)d->bytes,
		    (unsigned long long)d->chunk_bytes);
		for (size_t k = 0; k < d->nchunks; k++) {
			snap_hex(d->chunks[k].id, hex);
			put(&sb, "disk-chunk %llu %s\n", (unsigned long long)d->chunks[k].index, hex);
		}
	}
	put(&sb, "policy-cpu-quota %u\n", m->cpu_quota);
	put(&sb, "policy-net %s\n", m->net ? "on" : "off");
	put(&sb, "policy-health-marker %s\n", m->health_marker);
	put(&sb, "policy-health-timeout %u\n", m->health_timeout);
	put(&sb, "created %llu\n", (unsigned long long)m->created);
	if (m->has_signature) {
		char sig[2 * SNAP_SIG_LEN + 1];
		snap_hex(m->sig_keyid, hex);
		snap_hex(m->sig, sig);
		snap_hex(m->sig + 32, sig + 64);
		put(&sb, "signature ecdsa-p256 %s %s\n", hex, sig);
	}
	if (sb.err) {
		free(sb.p);
		return sb.err;
	}
	*buf = sb.p;
	*len = sb.len;
	return 0;
}

int snap_manifest_each_object(const struct snap_manifest *m, int (*fn)(void *arg, const uint8_t id[SNAP_HASH_LEN]),
			      void *arg)
{
	int r;

	if (m->has_kernel && (r = fn(arg, m->kernel)))
		return r;
	if (m->has_initrd && (r = fn(arg, m->initrd)))
		return r;
	for (size_t i = 0; i < m->nchunks; i++)
		if ((r = fn(arg, m->chunks[i].id)))
			return r;
	for (uint32_t i = 0; i < m->vcpus; i++)
		if ((r = fn(arg, m->vcpu[i])))
			return r;
	if ((r = fn(arg, m->vm_state)))
		return r;
	if ((r = fn(arg, m->devices)))
		return r;
	for (size_t i = 0; i < m->ndisks; i++)
		for (size_t k = 0; k < m->disks[i].nchunks; k++)
			if ((r = fn(arg, m->disks[i].chunks[k].id)))
				return r;
	return 0;
}
