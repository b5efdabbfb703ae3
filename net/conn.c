/* One update connection: lwIP raw-API callbacks, optional BearSSL record layer, the update protocol. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bearssl.h"
#include "keel_config.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "net/net_int.h"
#include "net/net.h"
#include "snap/snap.h"

#if CONFIG_NET

/*
 * IMPLEMENTATION NOTES
 * - Received pbufs queue on the connection untouched; tcp_recved() is called
 *   only for bytes the protocol consumed (filed by the pack parser, or taken
 *   into the TLS engine). A stalled consumer therefore closes the peer's
 *   window instead of growing memory: per connection at most one TCP window
 *   of pbufs (from lwIP's fixed pool), the TLS engine's 16 KiB record
 *   buffer, the parser's fixed state and its capped manifest buffer.
 * - Pack bytes are gathered into 64 KiB feeds (one write and one long BLAKE3
 *   update instead of one per 1.5 KiB pbuf); the window is opened (tcp_recved)
 *   at the end of each pump, after those feeds have been filed.
 * - The pack parser writes synchronously, so the window follows the disk. It
 *   also keeps the disk reserve: a record that would eat into it is refused
 *   before a byte of it is staged.
 * - Admission (no peer can starve the others; numbers in README "Listener
 *   admission"): a slot is a connection that has not failed. Ranks: 0 said
 *   nothing valid yet (or TLS handshake not done), 1 asked a valid `want?`,
 *   2 streams a pack or completed TLS with a client certificate. When every
 *   slot is taken, or the newcomer's source already holds all but one, the
 *   oldest connection of the lowest rank below 2 (from that source first) is
 *   evicted; only when every slot streams is the newcomer refused. Each
 *   protocol line must be complete within LINE_MS of the previous one, a pack
 *   must bring MIN_RATE bytes per RATE_MS window, and no connection lives
 *   longer than LIFETIME_MS. Failed connections (result line sent, draining)
 *   hold no slot; at most DRAIN_MAX of them wait, the oldest is reset first.
 *   Half-open connections are bounded in front of lwIP (listen.c).
 * - New connections start at the lowest lwIP priority, so when lwIP runs out
 *   of PCBs it kills idle unproven ones first; a connection that sends a
 *   valid first line (or completes the TLS handshake) is raised to the top.
 * - After the result line the connection only drains: input is acked and
 *   dropped until the peer closes, so the peer reads the line instead of a
 *   reset (lwIP resets a close with unread data).
 */

enum { C_HEAD, C_WANT, C_PACK, C_DRAIN };

#define DRAIN_MS 5000u
#define DRAIN_MAX 16u
#define LINE_MS 10000u
#define RATE_MS 10000u
#define MIN_RATE 4096u                /* bytes per second, averaged over RATE_MS */
#define LIFETIME_MS (1800u * 1000u)
#define OUT_MAX (NET_WANT_MAX + 512)
#define STAGE_MAX (64 * 1024)

struct net_conn {
	struct net_conn *next, *prev;
	struct net_server *srv;
	struct tcp_pcb *pcb;
	struct net_tls_server *tls;
	br_ssl_engine_context *eng;
	int state;
	int rank;                     /* admission: 0 nothing valid yet, 1 asked want?, 2 streams / TLS-authenticated */
	u32_t born_ms, line_ms;       /* accepted; end of the last protocol line */
	u32_t win_ms;                 /* PACK: start of the current rate window */
	uint64_t win_bytes;           /* app_bytes at win_ms */
	int peer_eof;                 /* FIN seen */
	int tx_shut;                  /* our FIN queued */
	int tls_closing;
	u32_t last_ms, drain_ms;
	struct pbuf *inq;             /* raw bytes not yet consumed; inq->payload + inoff is next */
	u16_t inoff;
	uint64_t app_bytes;
	size_t unacked;               /* taken off inq, tcp_recved() still due */
	uint8_t *stage;               /* PACK: bytes gathered for one big parser feed */
	size_t stage_len;
	char line[SNAP_PACK_MAX_HEADER_BYTES];
	size_t line_len;
	int line_ready;
	int sweep_wait;               /* a complete "SNAPPACK 1" line waits for the store sweep */
	unsigned want_n, want_i;
	struct snap_pack_rx *rx;
	size_t out_len, out_off;
	char peer[64];
	char out[OUT_MAX];
};

void net_log(const struct net_server *srv, const char *fmt, ...)
{
	char buf[320];
	va_list ap;

	if (!srv->cfg->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	srv->cfg->log(srv->cfg->arg, buf);
}

/*
 * Lines about single connections (failures, drops, evictions) are what a flood produces, one
 * per connection: at most LOG_PER_S a second reach the log (a serial console is slow, and a
 * blocked log write would stall the listener), the rest are counted and the count is logged
 * with the next line that gets through. Lines that change state (a ref moved) always go.
 */
#define LOG_PER_S 10u

static void conn_log(struct net_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_log(struct net_server *srv, const char *fmt, ...)
{
	u32_t now = sys_now();
	char buf[320];
	va_list ap;

	if (now - srv->log_window_ms >= 1000) {
		if (srv->log_held) {
			net_log(srv, "(%u lines about connections not logged: at most %u a second)", srv->log_held,
				LOG_PER_S);
			srv->log_held = 0;
		}
		srv->log_window_ms = now;
		srv->log_in_window = 0;
	}
	if (srv->log_in_window >= LOG_PER_S) {
		srv->log_held++;
		srv->log_suppressed++;
		return;
	}
	srv->log_in_window++;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	net_log(srv, "%s", buf);
}

/* Ends the pack parser (if any), releasing its hold on the store; what it filed that no ref
 * reaches goes with the next sweep (listen.c collect()). */
static void conn_rx_end(struct net_conn *c)
{
	if (!c->rx)
		return;
	snap_pack_rx_free(c->rx);
	free(c->rx);
	c->rx = NULL;
	c->srv->gc_due = 1;
}

static void conn_unlink(struct net_conn *c)
{
	struct net_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Frees c; the pcb (if any) must already be closed, aborted or gone. */
static void conn_free(struct net_conn *c)
{
	conn_unlink(c);
	conn_rx_end(c);
	free(c->stage);
	if (c->tls)
		net_tls_server_free(c->tls);
	if (c->inq)
		pbuf_free(c->inq);
	free(c);
}

static void conn_detach(struct net_conn *c)
{
	if (!c->pcb)
		return;
	tcp_arg(c->pcb, NULL);
	tcp_recv(c->pcb, NULL);
	tcp_sent(c->pcb, NULL);
	tcp_err(c->pcb, NULL);
	tcp_poll(c->pcb, NULL, 0);
	c->pcb = NULL;
}

/* Resets the connection and frees c. Callers inside an lwIP callback return ERR_ABRT. */
static void conn_abort(struct net_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;

	conn_detach(c);
	if (pcb)
		tcp_abort(pcb);
	conn_free(c);
}

/*
 * Graceful close after everything was said, and frees c. Returns what an
 * lwIP callback must return: ERR_OK, or ERR_ABRT when lwIP had no memory for
 * the FIN and the connection was reset instead.
 */
static err_t conn_close(struct net_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;
	err_t r = ERR_OK;

	conn_detach(c);
	if (pcb && tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		r = ERR_ABRT;
	}
	conn_free(c);
	return r;
}

static void out_append(struct net_conn *c, const char *s, size_t n)
{
	if (n > sizeof(c->out) - c->out_len)
		n = sizeof(c->out) - c->out_len;
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* Queues the result line and switches to draining; the parser's staged state is dropped. */
static void conn_reply(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_reply(struct net_conn *c, const char *fmt, ...)
{
	char buf[300];
	va_list ap;
	int n;

	if (c->state == C_DRAIN)
		return;
	if (c->state == C_WANT && c->want_i > 0)
		out_append(c, "\n", 1);   /* end the round's partial answer: the error is a line of its own */
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	out_append(c, buf, (size_t)n);
	if (!strncmp(buf, "ok", 2)) {
		net_log(c->srv, "%s: %.*s", c->peer, n - 1, buf);
		c->srv->filed++;
	} else {
		conn_log(c->srv, "%s: %.*s", c->peer, n - 1, buf);
		c->srv->failed++;
	}
	conn_rx_end(c);
	free(c->stage);
	c->stage = NULL;
	c->stage_len = 0;
	c->state = C_DRAIN;
	c->drain_ms = sys_now();
}

static void conn_prove(struct net_conn *c, int rank)
{
	if (rank <= c->rank)
		return;
	if (!c->rank && c->pcb)
		tcp_setprio(c->pcb, TCP_PRIO_MAX);   /* its first valid line: lwIP kills it last */
	c->rank = rank;
}

/* ---- activation ----------------------------------------------------------- */

/* After the parser committed manifest id: verify, move the ref, tell PID 1. */
static void conn_activate(struct net_conn *c, const uint8_t id[SNAP_HASH_LEN])
{
	struct net_server *srv = c->srv;
	const struct net_config *cfg = srv->cfg;
	struct snap_activation a;
	char hex[SNAP_HEX_LEN + 1], err[200];

	snap_hex(id, hex);
	/* The pack parser verified the manifest's signature against cfg->keys before committing it
	 * (with keys); without any, nothing is activated. */
	if (!cfg->nkeys) {
		conn_reply(c, "error manifest %s not activated: no trusted keys configured", hex);
		return;
	}
	/* jailed, the ref is not ours to move: the privileged side checks it all again and moves it */
	if (cfg->activate_fd >= 0 ? net_activation_request(cfg->activate_fd, id, &a, err, sizeof(err)) < 0
				  : snap_store_activate(srv->store, id, &a, err, sizeof(err)) < 0) {
		conn_reply(c, "error manifest %s not activated: %s", hex, err);
		return;
	}
	if (!a.moved) {
		conn_reply(c, "ok %s", hex);
		return;
	}
	if (cfg->activate_fd < 0 && cfg->on_activate &&
	    cfg->on_activate(cfg->arg, a.name, id, a.had_prev ? a.prev : NULL) < 0) {
		if (a.had_prev)
			snap_store_ref_set(srv->store, a.name, a.prev);
		else
			snap_store_ref_delete(srv->store, a.name);
		conn_reply(c, "error activation refused for %s", a.name);
		return;
	}
	net_log(srv, "%s: ref %s -> %s", c->peer, a.name, hex);
	conn_reply(c, "ok %s", hex);
}

static void conn_pack_finish(struct net_conn *c)
{
	uint8_t id[SNAP_HASH_LEN];
	int has = 0, r;

	r = snap_pack_rx_finish(c->rx, &has, id);
	if (r < 0) {
		conn_reply(c, "error %s", snap_pack_rx_error(c->rx));
		return;
	}
	if (!has) {
		/* Objects alone move no ref: the sweep after the stream would take them again. */
		conn_reply(c, "error the stream carries no manifest: nothing to activate, its objects are not kept");
		return;
	}
	conn_activate(c, id);
}

/* ---- the protocol on plaintext bytes -------------------------------------- */

/* A complete first line (without "\n") in c->line: start a round or the pack. */
static void head_line(struct net_conn *c)
{
	const char *l = c->line;
	size_t n = c->line_len - 1;
	static const char magic[] = SNAP_WIRE_MAGIC;

	if (n == sizeof(magic) - 2 && !memcmp(l, magic, n)) {
		struct snap_pack_rx *rx = calloc(1, sizeof(*rx));
		struct snap_pack_limits lim;
		int r;

		conn_prove(c, 2);
		c->win_ms = sys_now();
		c->win_bytes = c->app_bytes;
		c->stage = malloc(STAGE_MAX);
		if (!rx || !c->stage) {
			free(rx);
			conn_reply(c, "error out of memory");
			return;
		}
		memset(&lim, 0, sizeof(lim));
		lim.max_stream_bytes = c->srv->max_stream_bytes;
		lim.reserve_bytes = c->srv->reserve_bytes;
		lim.keys = c->srv->cfg->keys;
		lim.nkeys = c->srv->cfg->nkeys;
		lim.have = c->srv->cfg->have;
		lim.nhave = c->srv->cfg->nhave;
		r = snap_pack_rx_init(rx, c->srv->store, &lim);
		if (r == 0)
			r = snap_pack_rx_feed(rx, magic, sizeof(magic) - 1);
		c->rx = rx;
		if (r < 0) {
			conn_reply(c, "error %s", snap_pack_rx_error(rx));
			return;
		}
		c->state = C_PACK;
		return;
	}
	if (n > strlen(NET_WANT_MAGIC) && !memcmp(l, NET_WANT_MAGIC, strlen(NET_WANT_MAGIC))) {
		unsigned long v = 0;
		size_t i = strlen(NET_WANT_MAGIC);

		for (; i < n && l[i] >= '0' && l[i] <= '9' && v <= NET_WANT_MAX; i++)
			v = v * 10 + (unsigned long)(l[i] - '0');
		if (i != n || v == 0 || v > NET_WANT_MAX || l[strlen(NET_WANT_MAGIC)] == '0') {
			conn_reply(c, "error bad want line (1..%d ids per round)", NET_WANT_MAX);
			return;
		}
		conn_prove(c, 1);
		c->want_n = (unsigned)v;
		c->want_i = 0;
		c->state = C_WANT;
		return;
	}
	conn_reply(c, "error expected \"SNAPPACK 1\" or \"%s<n>\" at byte 0", NET_WANT_MAGIC);
}

static void want_line(struct net_conn *c)
{
	uint8_t id[SNAP_HASH_LEN];
	int r;

	if (c->line_len != SNAP_HEX_LEN + 1 || snap_unhex(c->line, SNAP_HEX_LEN, id) < 0) {
		conn_reply(c, "error want id %u is not a hex64 line", c->want_i);
		return;
	}
	r = snap_store_has(c->srv->store, SNAP_KIND_OBJECT, id);
	if (r == 0)
		r = snap_id_among(c->srv->cfg->have, c->srv->cfg->nhave, id);
	if (r < 0) {
		conn_reply(c, "error store: %s", strerror(-r));
		return;
	}
	if (c->want_i == 0)
		out_append(c, "need ", 5);   /* not before: a bad first id gets a clean error line */
	out_append(c, r ? "0" : "1", 1);
	if (++c->want_i == c->want_n) {
		out_append(c, "\n", 1);
		c->state = C_HEAD;
	}
}

/* Feeds the gathered pack bytes to the parser (which files them before returning). */
static void stage_flush(struct net_conn *c)
{
	int r;

	if (c->state != C_PACK || !c->stage_len)
		return;
	r = snap_pack_rx_feed(c->rx, c->stage, c->stage_len);
	c->stage_len = 0;
	if (r < 0)
		conn_reply(c, "error %s", snap_pack_rx_error(c->rx));
	else if (snap_pack_rx_done(c->rx))
		conn_pack_finish(c);
}

/*
 * Consumes plaintext bytes; returns how many were taken (fewer than n only
 * when a new round must wait for the previous answer to leave).
 */
static size_t proto_input(struct net_conn *c, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (c->state != C_DRAIN) {
		/* HEAD and WANT read lines. A complete HEAD line waits while an answer is pending. */
		if (c->line_ready) {
			if (c->state == C_HEAD && c->out_len > c->out_off)
				return used;
			/* A new pack waits for the sweep of what the last ones left (listen.c collect()). */
			c->sweep_wait = c->state == C_HEAD && c->pcb && c->srv->gc_due &&
					c->line_len == sizeof(SNAP_WIRE_MAGIC) - 1 &&
					!memcmp(c->line, SNAP_WIRE_MAGIC, c->line_len);
			if (c->sweep_wait)
				return used;
			c->line_ready = 0;
			c->line_ms = sys_now();
			if (c->state == C_HEAD)
				head_line(c);
			else
				want_line(c);
			c->line_len = 0;
			continue;
		}
		if (used == n)
			break;
		if (c->state == C_PACK) {
			size_t k = n - used;

			if (k > STAGE_MAX - c->stage_len)
				k = STAGE_MAX - c->stage_len;
			if (c->app_bytes + k > c->srv->max_stream_bytes) {
				conn_reply(c, "error stream larger than %llu bytes",
					   (unsigned long long)c->srv->max_stream_bytes);
				break;
			}
			memcpy(c->stage + c->stage_len, p + used, k);
			c->stage_len += k;
			used += k;
			c->app_bytes += k;
			if (c->stage_len == STAGE_MAX)
				stage_flush(c);
			continue;
		}
		uint8_t b = p[used++];
		c->app_bytes++;
		if (c->line_len == sizeof(c->line)) {
			conn_reply(c, "error line longer than %zu bytes at byte %llu", sizeof(c->line),
				   (unsigned long long)c->app_bytes);
			break;
		}
		c->line[c->line_len++] = (char)b;
		if (b == '\n')
			c->line_ready = 1;
	}
	return used;
}

/*
 * ---- the protocol without a socket -------------------------------------------
 * tests/fuzz/fuzz_conn.c drives the plaintext protocol (first line, want rounds, pack
 * staging, end of stream) through the same functions a TCP connection uses; the peer is
 * taken to read every answer at once.
 */
struct net_conn *net_conn_detached(struct net_server *srv)
{
	struct net_conn *c = calloc(1, sizeof(*c));

	if (c) {
		c->srv = srv;
		c->state = C_HEAD;
		snprintf(c->peer, sizeof(c->peer), "detached");
	}
	return c;
}

void net_conn_detached_input(struct net_conn *c, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (c->state != C_DRAIN) {
		used += proto_input(c, p + used, n - used);
		c->out_off = c->out_len;
		if (c->stage_len && (used == n || c->stage_len == STAGE_MAX))
			stage_flush(c);
		if (used == n && !c->line_ready)
			break;
	}
}

void net_conn_detached_eof(struct net_conn *c)
{
	if (c->stage_len)
		stage_flush(c);
	if (c->state == C_PACK)
		conn_pack_finish(c);
	else if (c->state != C_DRAIN && (c->state == C_WANT || c->line_len || c->app_bytes))
		conn_reply(c, "error connection closed at byte %llu", (unsigned long long)c->app_bytes);
}

/* What was answered since the last call (the buffer is then empty again). */
size_t net_conn_detached_output(struct net_conn *c, char *buf, size_t cap)
{
	size_t n = c->out_len < cap ? c->out_len : cap;

	memcpy(buf, c->out, n);
	c->out_len = c->out_off = 0;
	return n;
}

void net_conn_detached_free(struct net_conn *c)
{
	conn_rx_end(c);
	free(c->stage);
	free(c);
}

/* ---- moving bytes: plain TCP or TLS records --------------------------------- */

/* Takes up to len bytes off the receive queue into dst (NULL: discard); see ack_flush(). */
static size_t inq_take(struct net_conn *c, uint8_t *dst, size_t len)
{
	size_t got = 0;

	while (c->inq && got < len) {
		struct pbuf *q = c->inq;
		size_t k = (size_t)(q->len - c->inoff);

		if (k > len - got)
			k = len - got;
		if (dst)
			memcpy(dst + got, (uint8_t *)q->payload + c->inoff, k);
		got += k;
		c->inoff = (u16_t)(c->inoff + k);
		if (c->inoff == q->len) {
			c->inq = q->next;
			q->next = NULL;
			q->tot_len = q->len;
			pbuf_free(q);
			c->inoff = 0;
		}
	}
	c->unacked += got;
	return got;
}

/* Opens the window by what was taken; only called once staged bytes are filed. */
static void ack_flush(struct net_conn *c)
{
	/* tcp_recved() takes a u16_t. */
	while (c->unacked > 0) {
		u16_t k = (u16_t)(c->unacked > 0xffff ? 0xffff : c->unacked);
		if (c->pcb)
			tcp_recved(c->pcb, k);
		c->unacked -= k;
	}
}

/* Plain TCP: hand queued output to lwIP as far as its send buffer allows. */
static void plain_flush(struct net_conn *c)
{
	size_t n = c->out_len - c->out_off, room = tcp_sndbuf(c->pcb);

	if (n > room)
		n = room;
	if (n > 0 && tcp_write(c->pcb, c->out + c->out_off, (u16_t)n, TCP_WRITE_FLAG_COPY) == ERR_OK)
		c->out_off += n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

static void plain_pump(struct net_conn *c)
{
	while (c->inq && c->state != C_DRAIN) {
		struct pbuf *q = c->inq;
		size_t avail = (size_t)(q->len - c->inoff);
		size_t used = proto_input(c, (uint8_t *)q->payload + c->inoff, avail);

		inq_take(c, NULL, used);
		if (used < avail && c->state != C_DRAIN) {
			plain_flush(c);
			break;
		}
	}
	if (c->state != C_DRAIN && !c->inq && c->line_ready)
		proto_input(c, NULL, 0);
	plain_flush(c);
}

/* TLS: run the engine until it cannot move; returns -1 when the session failed. */
static int tls_pump(struct net_conn *c)
{
	br_ssl_engine_context *eng = c->eng;

	for (;;) {
		unsigned st = br_ssl_engine_current_state(eng);
		int progress = 0;
		unsigned char *buf;
		size_t len;

		if (st & BR_SSL_CLOSED) {
			int e = br_ssl_engine_last_error(eng);

			if (e != BR_ERR_OK && c->state != C_DRAIN) {
				conn_log(c->srv, "%s: TLS failed: %s", c->peer, net_tls_strerror(e));
				c->srv->failed++;
				return -1;
			}
			return 0;
		}
		if (st & BR_SSL_SENDREC) {
			size_t room = tcp_sndbuf(c->pcb);

			buf = br_ssl_engine_sendrec_buf(eng, &len);
			if (len > room)
				len = room;
			if (len > 0 && tcp_write(c->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY) == ERR_OK) {
				br_ssl_engine_sendrec_ack(eng, len);
				progress = 1;
			}
		}
		if (st & BR_SSL_RECVAPP) {
			conn_prove(c, 2);   /* the handshake required a client certificate from the CA */
			buf = br_ssl_engine_recvapp_buf(eng, &len);
			if (c->state == C_DRAIN) {
				br_ssl_engine_recvapp_ack(eng, len);
				progress = 1;
			} else {
				size_t used = proto_input(c, buf, len);
				if (used) {
					br_ssl_engine_recvapp_ack(eng, used);
					progress = 1;
				}
			}
		} else if ((st & BR_SSL_SENDAPP) && c->line_ready && c->state != C_DRAIN) {
			proto_input(c, NULL, 0);
		}
		if ((st & BR_SSL_SENDAPP) && c->out_off < c->out_len) {
			buf = br_ssl_engine_sendapp_buf(eng, &len);
			if (len > c->out_len - c->out_off)
				len = c->out_len - c->out_off;
			memcpy(buf, c->out + c->out_off, len);
			br_ssl_engine_sendapp_ack(eng, len);
			br_ssl_engine_flush(eng, 0);
			c->out_off += len;
			if (c->out_off == c->out_len)
				c->out_off = c->out_len = 0;
			progress = 1;
		}
		if (c->state == C_DRAIN && c->out_len == 0 && !c->tls_closing) {
			br_ssl_engine_close(eng);
			c->tls_closing = 1;
			progress = 1;
		}
		if ((st & BR_SSL_RECVREC) && c->inq && !c->tls_closing) {
			buf = br_ssl_engine_recvrec_buf(eng, &len);
			len = inq_take(c, buf, len);
			if (len) {
				br_ssl_engine_recvrec_ack(eng, len);
				progress = 1;
			}
		}
		if (!progress)
			return 0;
	}
}

/* All output handed to TCP (and the TLS close_notify with it)? */
static int output_done(struct net_conn *c)
{
	if (c->out_len)
		return 0;
	if (c->eng)
		return c->tls_closing && !(br_ssl_engine_current_state(c->eng) & BR_SSL_SENDREC);
	return 1;
}

/* Moves everything it can. c may be freed on return (ERR_ABRT: and its pcb aborted). */
static err_t conn_pump(struct net_conn *c)
{
	for (;;) {
		if (c->eng) {
			if (tls_pump(c) < 0) {
				conn_abort(c);
				return ERR_ABRT;
			}
		} else {
			plain_pump(c);
		}
		/* File what was gathered; a flush that ends the stream queues the result line. */
		if (!c->stage_len)
			break;
		stage_flush(c);
	}
	ack_flush(c);
	if (c->state == C_DRAIN) {
		/* Results are out: read and drop whatever still comes. */
		inq_take(c, NULL, (size_t)-1);
		ack_flush(c);
		if (output_done(c)) {
			if (c->peer_eof) {
				tcp_output(c->pcb);
				return conn_close(c);
			}
			if (!c->tx_shut) {
				tcp_shutdown(c->pcb, 0, 1);
				c->tx_shut = 1;
			}
		}
	} else if (c->peer_eof && !c->inq) {
		/* EOF before the result: a truncated pack, or a peer that said nothing. */
		if (c->state == C_PACK)
			conn_pack_finish(c);
		else if (c->state == C_WANT || c->line_len || c->app_bytes)
			conn_reply(c, "error connection closed at byte %llu", (unsigned long long)c->app_bytes);
		else
			return conn_close(c);
		return conn_pump(c);
	}
	ack_flush(c);
	if (c->pcb)
		tcp_output(c->pcb);
	return ERR_OK;
}

/* ---- lwIP callbacks ---------------------------------------------------------- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct net_conn *c = arg;

	(void)pcb;
	if (!c) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (err != ERR_OK) {
		if (p)
			pbuf_free(p);
		conn_abort(c);
		return ERR_ABRT;
	}
	c->last_ms = sys_now();
	if (!p) {
		c->peer_eof = 1;
	} else if (!c->inq) {
		c->inq = p;
		c->inoff = 0;
	} else {
		struct pbuf *t = c->inq;

		/* Link without pbuf_cat(): a queue may exceed the u16 tot_len of one chain. */
		while (t->next)
			t = t->next;
		t->next = p;
	}
	return conn_pump(c);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct net_conn *c = arg;

	(void)pcb;
	(void)len;
	if (!c)
		return ERR_OK;
	c->last_ms = sys_now();
	return conn_pump(c);
}

static void on_err(void *arg, err_t err)
{
	struct net_conn *c = arg;

	(void)err;
	if (!c)
		return;
	/* The pcb is already gone. */
	c->pcb = NULL;
	conn_free(c);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	struct net_conn *c = arg;
	u32_t now = sys_now();

	(void)pcb;
	if (!c)
		return ERR_OK;
	if (c->state == C_DRAIN && now - c->drain_ms > DRAIN_MS) {
		conn_abort(c);
		return ERR_ABRT;
	}
	if (now - c->last_ms > c->srv->idle_ms) {
		conn_log(c->srv, "%s: idle for %u s, dropped", c->peer, (unsigned)(c->srv->idle_ms / 1000));
		goto drop;
	}
	if (c->state == C_DRAIN)
		return conn_pump(c);
	if (c->sweep_wait)
		c->line_ms = c->last_ms = now;   /* it is keel that keeps this peer waiting */
	if (now - c->born_ms > LIFETIME_MS) {
		conn_log(c->srv, "%s: open longer than the %u s lifetime, dropped", c->peer, LIFETIME_MS / 1000);
		goto drop;
	}
	if ((c->state == C_HEAD || c->state == C_WANT) && now - c->line_ms > LINE_MS) {
		conn_log(c->srv, "%s: no complete line within %u s (line deadline), dropped", c->peer, LINE_MS / 1000);
		goto drop;
	}
	if (c->state == C_PACK && now - c->win_ms >= RATE_MS) {
		uint64_t got = c->app_bytes - c->win_bytes;

		if (got < (uint64_t)MIN_RATE * (now - c->win_ms) / 1000) {
			conn_log(c->srv, "%s: too slow (%llu bytes in %u s, minimum %u bytes/s), dropped", c->peer,
				(unsigned long long)got, (unsigned)((now - c->win_ms) / 1000), MIN_RATE);
			goto drop;
		}
		c->win_ms = now;
		c->win_bytes = c->app_bytes;
	}
	return conn_pump(c);
drop:
	c->srv->dropped++;
	conn_abort(c);
	return ERR_ABRT;
}

static int same_source(const struct net_conn *c, const ip_addr_t *ip)
{
	return c->pcb && ip_addr_cmp(&c->pcb->remote_ip, ip);
}

/*
 * The connection a newcomer may push out: the oldest of the lowest rank below 2, among those
 * from ip (NULL: any source). NULL when every candidate streams.
 */
static struct net_conn *victim(struct net_server *srv, const ip_addr_t *ip)
{
	struct net_conn *v = NULL;

	for (struct net_conn *c = srv->conns; c; c = c->next)   /* newest first: the last match is the oldest */
		if (c->state != C_DRAIN && c->rank < 2 && (!ip || same_source(c, ip)) && (!v || c->rank <= v->rank))
			v = c;
	return v;
}

/* Makes room for a newcomer from ip; 0, or -EBUSY when every slot (of its share) streams. */
static int admit(struct net_server *srv, const ip_addr_t *ip)
{
	struct net_conn *oldest_drain = NULL, *v;
	unsigned active = 0, same = 0, draining = 0;
	unsigned share = srv->max_streams > 1 ? srv->max_streams - 1 : 1;

	for (struct net_conn *c = srv->conns; c; c = c->next) {
		if (c->state == C_DRAIN) {
			draining++;
			oldest_drain = c;
			continue;
		}
		active++;
		same += same_source(c, ip);
	}
	if (draining >= DRAIN_MAX)
		conn_abort(oldest_drain);
	if (same >= share)
		v = victim(srv, ip);
	else if (active >= srv->max_streams)
		v = victim(srv, NULL);
	else
		return 0;
	if (!v)
		return -EBUSY;
	conn_log(srv, "%s: evicted (%s) for a new connection", v->peer,
		v->rank ? "asked want? but sent no pack" : "nothing valid yet");
	srv->evicted++;
	conn_abort(v);
	return 0;
}

int net_conn_accept(struct net_server *srv, struct tcp_pcb *pcb)
{
	struct net_conn *c;
	char ip[IPADDR_STRLEN_MAX];

	if (admit(srv, &pcb->remote_ip) < 0) {
		static const char busy[] = "error busy: all update slots hold streams\n";

		srv->refused++;
		/* A plain peer learns why; a TLS peer just sees the reset. */
		if (!srv->creds && tcp_write(pcb, busy, sizeof(busy) - 1, 0) == ERR_OK && tcp_close(pcb) == ERR_OK)
			return ERR_OK;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto refuse;
	if (srv->creds) {
		if (net_tls_server_new(srv->creds, &c->tls) < 0) {
			free(c);
			goto refuse;
		}
		c->eng = net_tls_server_engine(c->tls);
	}
	c->srv = srv;
	c->pcb = pcb;
	c->last_ms = c->born_ms = c->line_ms = sys_now();
	ipaddr_ntoa_r(&pcb->remote_ip, ip, sizeof(ip));
	snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, pcb->remote_port);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->accepted++;
	tcp_setprio(pcb, TCP_PRIO_MIN);
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, 2);
	tcp_nagle_disable(pcb);
	return ERR_OK;

refuse:
	srv->refused++;
	tcp_abort(pcb);
	return ERR_ABRT;
}

void net_conn_resume(struct net_server *srv)
{
	struct net_conn *c = srv->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->sweep_wait) {
			c->sweep_wait = 0;
			conn_pump(c);   /* may free c (next was taken first) */
		}
	}
}

void net_conn_abort_all(struct net_server *srv)
{
	while (srv->conns)
		conn_abort(srv->conns);
}

#endif
