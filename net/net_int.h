/* net's private interfaces between its files; callers outside net/ use net/net.h only. */
#ifndef KEEL_NET_INT_H
#define KEEL_NET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/netif.h"

/* ---- the link: lwIP netif over AF_PACKET or TAP (netif_packet.c) ---------- */

struct net_link {
	int fd;
	int ifindex;
	int is_tap;
	unsigned mtu;
	uint8_t mac[6];
	uint8_t *buf;            /* one received frame; large enough for GRO/GSO frames */
	size_t buflen;
	struct netif netif;
	uint64_t rx_frames, rx_bytes, rx_dropped, rx_bad_csum, tx_frames, tx_errors;
	/* Sees every frame (checksums checked) before lwIP does: 1 took it (sandbox forwards, nat.c). */
	int (*intercept)(void *arg, const uint8_t *frame, size_t len);
	void *intercept_arg;
	/*
	 * Bridge mode (nat.c): sees every frame of the wire, the ones to other MACs too (checksums
	 * checked); 1 took it. Frames to other MACs it did not take are dropped.
	 */
	int (*bridge)(void *arg, const uint8_t *frame, size_t len);
	void *bridge_arg;
	/* Sees every IPv4 TCP SYN (without ACK) before lwIP does: 0 drops it (listen.c). */
	int (*syn_gate)(void *arg, uint32_t src_ip, uint16_t dst_port);
	void *gate_arg;
	uint64_t rx_syn_dropped;
};

/* Opens IFNAME (or "tap:NAME") and reads its MAC and MTU; 0 or -errno. */
int net_link_open(struct net_link *l, const char *name);
/* Adds l as lwIP's default netif (addresses may be 0 for DHCP) and sets it up. */
int net_link_add(struct net_link *l, uint32_t ip, uint32_t mask, uint32_t gw);
/* Feeds up to max pending frames into lwIP; returns how many, or -errno on a dead link. */
int net_link_poll(struct net_link *l, int max);
void net_link_close(struct net_link *l);
/* Bridge mode: frames to every MAC reach the socket (promiscuous); 0 or -errno. */
int net_link_promisc(struct net_link *l);
/* One Ethernet frame out as it is; 0 or -errno (a full socket buffer drops it, like a busy wire). */
int net_link_send(struct net_link *l, const uint8_t *frame, size_t len);

/* Internet checksum (RFC 1071) of buf folded into 16 bits, not inverted, starting from sum. */
uint32_t net_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t net_csum_fold(uint32_t sum);
/*
 * 1 when a frame's TCP/UDP checksum is right or the frame carries none we
 * check (not IP, ICMP, fragments: lwIP checks those itself), 0 when wrong.
 */
int net_frame_l4_csum_ok(const uint8_t *f, size_t len);

/* ---- TLS credentials and engines (tls.c) --------------------------------- */

struct net_tls_creds;
/*
 * Loads PEM files: cert (chain, leaf first; may be NULL), key (EC; may be
 * NULL), ca (one or more CA certificates, required). err gets one line.
 */
int net_tls_creds_load(struct net_tls_creds **out, const char *cert, const char *key, const char *ca,
		       char *err, size_t errlen);
void net_tls_creds_free(struct net_tls_creds *c);
/*
 * 1 when the loaded certificate chain itself validates against the loaded CAs: on a listener
 * that means the client CA also issued the appliance's certificate, so a copy of any
 * appliance's certificate and key would pass as an operator's (BearSSL ignores extended key
 * usage). The listener refuses that; operators get certificates from a CA of their own.
 */
int net_tls_creds_self_trusted(const struct net_tls_creds *c);

/* A server engine for one connection: caller-owned, no interior pointers to the stack. */
struct net_tls_server;
int net_tls_server_new(const struct net_tls_creds *c, struct net_tls_server **out);
void net_tls_server_free(struct net_tls_server *t);
/* The engine (br_ssl_engine_context *) of a server, for the pump in conn.c. */
void *net_tls_server_engine(struct net_tls_server *t);

/* A blocking client session over a connected socket (push.c). */
struct net_tls_client;
/* server_name: required in the peer's certificate (SAN dNSName); NULL: the CA alone decides. */
int net_tls_client_new(const struct net_tls_creds *c, const char *server_name, int fd, struct net_tls_client **out);
/* Write everything / flush / read some: byte counts or -errno (-EPROTO: TLS failure). */
int net_tls_client_write(struct net_tls_client *t, const void *buf, size_t len);
int net_tls_client_flush(struct net_tls_client *t);
long net_tls_client_read(struct net_tls_client *t, void *buf, size_t len);
/* BearSSL's last error code (0: none), and a short name for it. */
int net_tls_client_error(struct net_tls_client *t);
const char *net_tls_strerror(int br_err);
void net_tls_client_free(struct net_tls_client *t);

/* ---- the update server (listen.c) and its connections (conn.c) ------------ */

struct tcp_pcb;
struct pbuf;
struct snap_store;
struct snap_pack_rx;
struct net_config;

struct net_server {
	const struct net_config *cfg;
	struct snap_store *store;
	struct net_tls_creds *creds;     /* NULL: plain TCP */
	struct tcp_pcb *lpcb;
	struct net_conn *conns;          /* doubly linked, newest first */
	unsigned max_streams;
	uint32_t idle_ms;
	uint64_t max_stream_bytes, reserve_bytes;
	uint64_t accepted, refused, evicted, dropped, filed, failed;
	uint64_t syn_evicted, syn_refused;  /* half-open connections reset / SYNs dropped (listen.c) */
	int gc_due;                      /* a pack stream ended: collect what no ref reaches (listen.c) */
	uint32_t log_window_ms;          /* conn.c's per-second budget of lines about connections */
	unsigned log_in_window, log_held;
	uint64_t log_suppressed;
};

/* Accept callback's work: takes pcb or refuses it; returns lwIP's err_t. */
int net_conn_accept(struct net_server *srv, struct tcp_pcb *pcb);
/* A connection without a socket, for the protocol fuzzer (conn.c says how it is driven). */
struct net_conn *net_conn_detached(struct net_server *srv);
void net_conn_detached_input(struct net_conn *c, const uint8_t *p, size_t n);
void net_conn_detached_eof(struct net_conn *c);
size_t net_conn_detached_output(struct net_conn *c, char *buf, size_t cap);
void net_conn_detached_free(struct net_conn *c);
/* Lets the pack streams that waited for the store sweep go on. */
void net_conn_resume(struct net_server *srv);
/* Aborts every connection (listener shutdown). */
void net_conn_abort_all(struct net_server *srv);
/* printf-style line to the configured log hook. */
void net_log(const struct net_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
