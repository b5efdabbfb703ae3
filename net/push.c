/*
 * The push client (`keel push` is its tool, net/cmd_push.c): sends a snapshot or a pack file to
 * an appliance's update listener over kernel sockets, optionally TLS; asks first which objects
 * the appliance lacks and sends only those, the manifest last. Prints nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel_config.h"
#include "net/net_int.h"
#include "net/net.h"
#include "snap/snap.h"

#if CONFIG_NET

struct rec {
	uint8_t id[SNAP_HASH_LEN];
	uint64_t off, len;
	int fd;
	int needed;
};

struct push {
	char *err;                       /* one line on failure */
	size_t errlen;
	char *answer;                    /* the appliance's result line */
	size_t answerlen;
	struct rec *recs;               /* objects, sorted by id, unique */
	size_t nrecs;
	struct rec manifest;
	int has_manifest;
	/* transport */
	int fd;
	struct net_tls_creds *creds;
	const char *server_name;         /* NULL: the CA alone identifies the appliance */
	struct net_tls_client *tls;
	char rbuf[NET_WANT_MAX + 64];
	size_t rlen;
	/* progress, reported through opts */
	const struct net_push_opts *o;
	struct net_push_progress pr;
};

/* Sets the error line; returns r (a negative errno). */
static int fail(struct push *p, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct push *p, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static void progress(struct push *p, int final)
{
	if (p->o->progress)
		p->o->progress(p->o->arg, &p->pr, final);
}

/* ---- transport ---------------------------------------------------------------- */

static int io_write(struct push *p, const void *buf, size_t len)
{
	const char *b = buf;

	if (p->tls)
		return net_tls_client_write(p->tls, buf, len);
	while (len) {
		ssize_t n = write(p->fd, b, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int io_flush(struct push *p)
{
	return p->tls ? net_tls_client_flush(p->tls) : 0;
}

static long io_read(struct push *p, void *buf, size_t len)
{
	if (p->tls)
		return net_tls_client_read(p->tls, buf, len);
	for (;;) {
		ssize_t n = read(p->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : (long)n;
	}
}

/* One "\n"-terminated line (without it) into p->rbuf; -EPROTO when too long, -ECONNRESET at EOF. */
static int read_line(struct push *p)
{
	p->rlen = 0;
	for (;;) {
		char ch;
		long n = io_read(p, &ch, 1);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ECONNRESET;
		if (ch == '\n') {
			p->rbuf[p->rlen] = 0;
			return 0;
		}
		if (p->rlen + 1 >= sizeof(p->rbuf))
			return -EPROTO;
		p->rbuf[p->rlen++] = ch;
	}
}

static int split_hostport(char *s, char **host, char **port)
{
	char *colon = strrchr(s, ':');

	if (!colon || colon == s || !colon[1])
		return -EINVAL;
	*colon = 0;
	*host = s;
	*port = colon + 1;
	if (**host == '[' && colon[-1] == ']') {
		colon[-1] = 0;
		(*host)++;
	}
	return 0;
}

static int connect_to(struct push *p, const char *to)
{
	struct addrinfo hints, *res, *ai;
	char *dup = strdup(to), *host, *port;
	int r, fd = -1, e = ECONNREFUSED;

	if (!dup)
		return -ENOMEM;
	if (split_hostport(dup, &host, &port) < 0) {
		free(dup);
		return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(host, port, &hints, &res);
	free(dup);
	if (r != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -e;
	p->fd = fd;
	if (p->creds) {
		r = net_tls_client_new(p->creds, p->server_name, fd, &p->tls);
		if (r < 0) {
			close(fd);
			p->fd = -1;
			return r;
		}
	}
	return 0;
}

static void disconnect(struct push *p)
{
	if (p->tls)
		net_tls_client_free(p->tls);
	p->tls = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* ---- what to send --------------------------------------------------------------- */

static int rec_cmp(const void *a, const void *b)
{
	return memcmp(((const struct rec *)a)->id, ((const struct rec *)b)->id, SNAP_HASH_LEN);
}

static int add_rec(struct push *p, const struct rec *r)
{
	if ((p->nrecs & (p->nrecs - 1)) == 0) {
		struct rec *n = realloc(p->recs, (p->nrecs ? p->nrecs * 2 : 16) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->recs = n;
	}
	p->recs[p->nrecs++] = *r;
	return 0;
}

static void sort_unique(struct push *p)
{
	size_t j = 0;

	qsort(p->recs, p->nrecs, sizeof(*p->recs), rec_cmp);
	for (size_t i = 0; i < p->nrecs; i++)
		if (!j || memcmp(p->recs[j - 1].id, p->recs[i].id, SNAP_HASH_LEN))
			p->recs[j++] = p->recs[i];
	p->nrecs = j;
}

/* Reads the record headers of a pack file (payloads are skipped, not read). */
static int scan_pack(struct push *p, const char *path)
{
	static const char magic[] = SNAP_WIRE_MAGIC;
	char line[SNAP_PACK_MAX_HEADER_BYTES + 1];
	uint64_t pos = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	for (;;) {
		ssize_t n = pread(fd, line, sizeof(line) - 1, (off_t)pos);
		char *nl;
		struct snap_pack_header h;
		struct rec r;
		int is_manifest, rc;

		if (n <= 0)
			return fail(p, -EINVAL, "%s: ends without \"end\" at byte %llu", path,
					 (unsigned long long)pos);
		line[n] = 0;
		nl = memchr(line, '\n', (size_t)n);
		if (!nl)
			return fail(p, -EINVAL, "%s: header line too long at byte %llu", path,
					 (unsigned long long)pos);
		*nl = 0;
		if (pos == 0) {
			if (strncmp(line, magic, sizeof(magic) - 2) || nl - line != (long)sizeof(magic) - 2)
				return fail(p, -EINVAL, "%s: not a SNAPPACK 1 file", path);
			pos += sizeof(magic) - 1;
			continue;
		}
		pos += (uint64_t)(nl - line) + 1;
		rc = snap_pack_header_parse(line, (size_t)(nl - line), &h);
		if (rc == 0 && h.kind == SNAP_PACK_END)
			break;
		if (p->has_manifest)
			return fail(p, -EINVAL, "%s: record after the manifest at byte %llu", path,
					 (unsigned long long)pos);
		if (rc == -ENOMSG)
			return fail(p, -EINVAL, "%s: unknown record at byte %llu", path, (unsigned long long)pos);
		if (rc == -EBADMSG)
			return fail(p, -EINVAL, "%s: bad record id at byte %llu", path, (unsigned long long)pos);
		if (rc < 0 || h.len > (uint64_t)st.st_size - pos)
			return fail(p, -EINVAL, "%s: bad record length at byte %llu", path, (unsigned long long)pos);
		is_manifest = h.kind == SNAP_PACK_MANIFEST;
		memset(&r, 0, sizeof(r));
		memcpy(r.id, h.id, SNAP_HASH_LEN);
		r.len = h.len;
		r.fd = fd;
		r.off = pos;
		pos += r.len;
		if (is_manifest) {
			p->manifest = r;
			p->has_manifest = 1;
		} else if (add_rec(p, &r) < 0) {
			return fail(p, -ENOMEM, "out of memory");
		}
	}
	sort_unique(p);
	return 0;
}

struct collect {
	struct push *p;
	struct snap_source *src;
	int err;
};

static int collect_one(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct collect *c = arg;
	struct rec r;
	int e;

	memset(&r, 0, sizeof(r));
	memcpy(r.id, id, SNAP_HASH_LEN);
	e = c->src->locate(c->src->ctx, SNAP_KIND_OBJECT, id, &r.fd, &r.off, &r.len);
	if (e == 0)
		e = add_rec(c->p, &r);
	if (e < 0) {
		char hex[SNAP_HEX_LEN + 1];

		snap_hex(id, hex);
		c->err = fail(c->p, e, "object %s: %s", hex, e == -ENOENT ? "not in the store" : strerror(-e));
		return 1;
	}
	return 0;
}

static int scan_store(struct push *p, struct snap_store *store, const char *name)
{
	struct snap_source src;
	struct snap_manifest m;
	struct collect col = { p, &src, 0 };
	uint8_t *buf;
	size_t len;
	char err[160];
	int r;

	snap_store_source(store, &src);
	r = snap_source_resolve(&src, name, p->manifest.id);
	if (r < 0)
		return fail(p, r, "%s: %s", name, r == -ENOENT ? "no such ref or manifest" : strerror(-r));
	r = snap_store_get(store, SNAP_KIND_MANIFEST, p->manifest.id, &buf, &len);
	if (r < 0)
		return fail(p, r, "manifest %s: %s", name, strerror(-r));
	r = snap_manifest_parse(buf, len, &m, err, sizeof(err));
	free(buf);
	if (r < 0)
		return fail(p, r, "manifest %s: %s", name, err);
	snap_manifest_each_object(&m, collect_one, &col);
	snap_manifest_free(&m);
	if (col.err)
		return col.err;
	r = src.locate(src.ctx, SNAP_KIND_MANIFEST, p->manifest.id, &p->manifest.fd, &p->manifest.off,
		       &p->manifest.len);
	if (r < 0)
		return fail(p, r, "manifest %s: %s", name, strerror(-r));
	p->has_manifest = 1;
	sort_unique(p);
	return 0;
}

/* ---- the conversation --------------------------------------------------------------- */

/* An I/O failure in words: TLS's own reason when the session failed, else errno's. */
static const char *io_strerror(struct push *p, int r)
{
	if (p->tls && net_tls_client_error(p->tls))
		return net_tls_strerror(net_tls_client_error(p->tls));
	return strerror(-r);
}

/* negotiate(): the appliance does not speak objects-needed rounds (the caller reconnects). */
#define NEG_OLD_SERVER 2

/* objects-needed rounds; 0, NEG_OLD_SERVER, or -errno with p->err set. */
static int negotiate(struct push *p)
{
	char line[SNAP_HEX_LEN + 2], head[40];

	for (size_t base = 0; base < p->nrecs; base += NET_WANT_MAX) {
		size_t n = p->nrecs - base < NET_WANT_MAX ? p->nrecs - base : NET_WANT_MAX;
		int r;

		snprintf(head, sizeof(head), "%s%zu\n", NET_WANT_MAGIC, n);
		r = io_write(p, head, strlen(head));
		for (size_t i = 0; i < n && r == 0; i++) {
			snap_hex(p->recs[base + i].id, line);
			line[SNAP_HEX_LEN] = '\n';
			r = io_write(p, line, SNAP_HEX_LEN + 1);
		}
		if (r == 0)
			r = io_flush(p);
		if (r == 0)
			r = read_line(p);
		if (r < 0)
			return fail(p, r, "asking what the appliance needs: %s", io_strerror(p, r));
		if (!strncmp(p->rbuf, "need ", 5) && p->rlen < 5 + n && read_line(p) == 0 &&
		    !strncmp(p->rbuf, "error ", 6))
			return fail(p, -EREMOTEIO, "the appliance refused a want? round: %.200s", p->rbuf + 6);
		if (strncmp(p->rbuf, "need ", 5) || p->rlen != 5 + n) {
			if (!strncmp(p->rbuf, "error", 5))
				return NEG_OLD_SERVER;
			return fail(p, -EPROTO, "unexpected answer to want?: %.80s", p->rbuf);
		}
		for (size_t i = 0; i < n; i++)
			p->recs[base + i].needed = p->rbuf[5 + i] == '1';
	}
	return 0;
}

static int send_rec(struct push *p, const char *kind, const struct rec *r, char *buf, size_t bufsz)
{
	char hex[SNAP_HEX_LEN + 1], head[SNAP_PACK_MAX_HEADER_BYTES];
	uint64_t off = r->off, left = r->len;
	int e;

	snap_hex(r->id, hex);
	snprintf(head, sizeof(head), "%s %s %llu\n", kind, hex, (unsigned long long)r->len);
	e = io_write(p, head, strlen(head));
	while (e == 0 && left) {
		size_t k = left < bufsz ? (size_t)left : bufsz;
		ssize_t n = pread(r->fd, buf, k, (off_t)off);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		e = io_write(p, buf, (size_t)n);
		off += (uint64_t)n;
		left -= (uint64_t)n;
		p->pr.sent += (uint64_t)n;
		progress(p, 0);
	}
	p->pr.objs_sent++;
	return e;
}

static int send_pack(struct push *p)
{
	static const char magic[] = SNAP_WIRE_MAGIC;
	size_t bufsz = 256 * 1024;
	char *buf = malloc(bufsz);
	int e;

	if (!buf)
		return -ENOMEM;
	e = io_write(p, magic, sizeof(magic) - 1);
	for (size_t i = 0; i < p->nrecs && e == 0; i++)
		if (p->recs[i].needed)
			e = send_rec(p, "obj", &p->recs[i], buf, bufsz);
	if (e == 0 && p->has_manifest)
		e = send_rec(p, "manifest", &p->manifest, buf, bufsz);
	if (e == 0)
		e = io_write(p, "end\n", 4);
	if (e == 0)
		e = io_flush(p);
	free(buf);
	return e;
}

static int push_run(struct push *p, const char *to)
{
	int r, e;

	r = connect_to(p, to);
	if (r < 0)
		return fail(p, r, "%s: %s", to, r == -EPROTO ? "TLS setup failed" : strerror(-r));
	for (size_t i = 0; i < p->nrecs; i++)
		p->recs[i].needed = 1;
	r = negotiate(p);
	if (r == NEG_OLD_SERVER) {
		/* An appliance without objects-needed rounds: send everything on a new connection. */
		disconnect(p);
		for (size_t i = 0; i < p->nrecs; i++)
			p->recs[i].needed = 1;
		r = connect_to(p, to);
		if (r < 0)
			return fail(p, r, "%s: %s", to, strerror(-r));
	} else if (r) {
		return r;   /* negotiate set p->err */
	}
	memset(&p->pr, 0, sizeof(p->pr));
	for (size_t i = 0; i < p->nrecs; i++)
		if (p->recs[i].needed) {
			p->pr.total += p->recs[i].len;
			p->pr.objs_total++;
		}
	p->pr.objs_lacking = p->pr.objs_total;
	p->pr.objs_all = p->nrecs;
	if (p->has_manifest) {
		p->pr.total += p->manifest.len;
		p->pr.objs_total++;
	}
	if (p->o->plan)
		p->o->plan(p->o->arg, &p->pr);
	e = send_pack(p);
	progress(p, 1);
	/* Even when sending failed the appliance may have said why before closing. */
	r = read_line(p);
	if (r == 0) {
		snprintf(p->answer, p->answerlen, "%s", p->rbuf);
		if (!strncmp(p->rbuf, "ok", 2) && (p->rbuf[2] == 0 || p->rbuf[2] == ' ') && e == 0)
			return 0;
		return -EREMOTEIO;
	}
	if (p->tls && net_tls_client_error(p->tls))
		return fail(p, -EPROTO, "TLS: %s", net_tls_strerror(net_tls_client_error(p->tls)));
	return fail(p, e ? e : r, "no answer from %s: %s", to, strerror(-(e ? e : r)));
}

int net_push(const struct net_push_opts *o, char *answer, size_t answerlen, char *err, size_t errlen)
{
	struct snap_store *store = NULL;
	struct push p;
	int r;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.err = err;
	p.errlen = errlen;
	p.answer = answer;
	p.answerlen = answerlen;
	p.server_name = o->server_name;
	p.fd = -1;
	err[0] = answer[0] = 0;
	if (o->tls) {
		r = net_tls_creds_load(&p.creds, o->cert, o->key, o->ca, err, errlen);
		if (r < 0)
			return r;
	}
	if (o->pack) {
		r = scan_pack(&p, o->pack);
	} else {
		r = snap_store_open(o->store_dir, &store);
		if (r < 0)
			r = fail(&p, r, "store %s: %s", o->store_dir, strerror(-r));
		else
			r = scan_store(&p, store, o->manifest);
	}
	if (r == 0)
		r = push_run(&p, o->to);
	disconnect(&p);
	if (store)
		snap_store_close(store);
	net_tls_creds_free(p.creds);
	free(p.recs);
	return r;
}

#endif
