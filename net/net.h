/* net: the lwIP stack over the board's NIC, the update listener, BearSSL TLS, and `keel push`. */
#ifndef KEEL_NET_H
#define KEEL_NET_H

#include <stddef.h>
#include <stdint.h>

struct snap_pubkey;

/*
 * The update protocol on the listener's TCP port (plain or inside TLS).
 *
 * A connection carries exactly one SNAPPACK 1 stream, optionally preceded by
 * objects-needed rounds, and gets exactly one result line back:
 *
 *   client: [ "want? 1 <n>\n" <n lines "<hex64>\n"> ]*      1 <= n <= NET_WANT_MAX
 *   server:   "need <n characters>\n" for each round: character i is '1' when
 *             the store lacks object i of the round, '0' when it has it
 *   client:   "SNAPPACK 1\n" record* "end\n"               (the seed's grammar)
 *   server:   "ok <manifest-hex64>\n" | "ok\n" (no manifest) | "error <reason>\n"
 *   server:   closes.
 *
 * A plain SNAPPACK 1 sender (`keel pack send | nc HOST PORT`) simply skips the
 * rounds. The server answers as soon as it has read "end\n" (no half-close
 * needed, which TLS clients rarely do); a connection that ends before "end"
 * commits no manifest. A round's answer is at most NET_WANT_MAX + 7 bytes, so
 * a client that writes a whole round and then reads its answer never
 * deadlocks. Any other first line is refused with "error".
 */
#define NET_WANT_MAX 4096
#define NET_WANT_MAGIC "want? 1 "

/*
 * A sandbox's private link in nat mode (net/nat.c): PID 1 made the SOCK_SEQPACKET pair, the
 * sandbox's VMM holds the other end (its virtio-net backend). The guest is 10.0.2.15/24 behind
 * the router 10.0.2.2 (keel), on every clone alike.
 */
#define NET_MAX_FORWARDS 8
#define NET_MAX_SANDBOX_LINKS 32
#define NET_MAX_ALLOW 16
#define NET_HOST_MAX 253

/*
 * One entry of a sandbox's outbound allow-list (board.conf sandbox.NAME.allow): a host name
 * ("api.example.com", or "*.example.com" for every name under it) or an address range, and a
 * TCP port (0: any). A name allows the addresses keel's DNS answered the guest for it.
 */
struct net_allow {
	char host[NET_HOST_MAX + 1];   /* lower case; "": an address rule */
	uint32_t addr, mask;           /* host order */
	uint16_t port;                 /* 0: every port */
};

/*
 * The appliance ports keel's nat takes for the guests' connections out and their DNS queries
 * (a forward or the listener may not use them; lwIP's own are above).
 */
#define NET_NAT_PORT_FIRST 40448
#define NET_NAT_PORT_LAST 49151

struct net_sandbox {
	char name[65];
	int fd;                        /* one Ethernet frame per message */
	unsigned nfwd;
	struct {
		uint16_t outer, inner;     /* TCP: the appliance's port -> the guest's */
	} fwd[NET_MAX_FORWARDS];
	unsigned nallow;               /* 0: no connection out */
	struct net_allow allow[NET_MAX_ALLOW];
	int bridge;                    /* 1: no nat, the guest is a station of the board NIC's LAN */
};

/* What PID 1 (or `keel net listen`) hands to net_listen(). */
struct net_config {
	const char *ifname;            /* interface driven by lwIP (AF_PACKET), or "tap:NAME" */
	int dhcp;                      /* 1: lwIP's DHCP client; 0: static address below */
	uint32_t ip, gw;               /* host byte order; gw 0: none */
	unsigned prefix;               /* 0..32 */
	uint16_t port;
	const char *store_dir;         /* writable directory store (must exist) */
	/*
	 * Objects the box has outside the store (PID 1: the partition image's), ascending: an
	 * objects-needed round answers them as present, and PID 1's activation takes them from
	 * there. Ids only: the listener never reads those bytes. NULL / 0: none.
	 */
	const uint8_t (*have)[32];
	size_t nhave;
	const struct snap_pubkey *keys; /* trusted manifest signers; nkeys 0: no manifest activates */
	size_t nkeys;
	int tls;                       /* 1: TLS 1.2 with required client certificates */
	const char *tls_cert, *tls_key, *tls_ca; /* PEM files: chain, EC key, client CA(s) */
	unsigned max_streams;          /* concurrent connections (0: CONFIG_NET_MAX_STREAMS) */
	unsigned idle_timeout_s;       /* 0: CONFIG_NET_IDLE_TIMEOUT_S */
	uint64_t max_stream_bytes;     /* 0: CONFIG_NET_MAX_STREAM_MIB */
	uint64_t reserve_bytes;        /* free space kept on the store's filesystem */
	int reserve_set;               /* 0: CONFIG_NET_DISK_RESERVE_MIB */
	int stop_fd;                   /* readable -> net_listen() returns 0; -1: never */
	/* Called once the interface has its address and the port listens (may be NULL). */
	void (*on_ready)(void *arg, const char *ip, uint16_t port);
	/*
	 * Called in the listener's process after a verified manifest moved ref
	 * `name` (prev: the ref's old target, NULL if it had none). A negative
	 * return moves the ref back to prev (or deletes it) and the client gets
	 * "error activation refused". PID 1 uses it to restart the sandbox.
	 */
	int (*on_activate)(void *arg, const char *name, const uint8_t id[32], const uint8_t *prev);
	/* One line per notable event (connection refused, stream filed, ...); may be NULL. */
	void (*log)(void *arg, const char *line);
	void *arg;
	/*
	 * Called once the listener holds its link, credentials and stop descriptor and before it
	 * opens the store or reads a frame: a jail (init/jail.c jail_listener) confines the process
	 * here, keeping fds[0..nfds) open, and says where the store is now (*store_dir). Non-zero
	 * (with err) fails net_listen. NULL: nothing.
	 */
	int (*confine)(void *arg, const int *fds, int nfds, const char **store_dir, char *err, size_t errlen);
	/*
	 * >= 0: this listener moves no ref; it asks the privileged side over this SOCK_SEQPACKET
	 * descriptor (net_activation_request) and on_activate is not called. -1 (the default):
	 * it activates in its own process.
	 */
	int activate_fd;
	/* Sandbox links in nat mode: their port forwards are served beside the update port. */
	const struct net_sandbox *sandboxes;
	size_t nsandboxes;
	uint32_t dns;                  /* the board's resolver (host order) for the guests' names; 0: none */
	unsigned stats_s;              /* every stats_s seconds, a line per link whose counters moved; 0: at stop only */
};

/* Fills c with the Kconfig defaults (no interface, no store, port CONFIG_NET_PORT). */
void net_config_defaults(struct net_config *c);
/*
 * Brings lwIP up on c->ifname and serves update streams until c->stop_fd is
 * readable (returns 0) or a fatal error (-errno). Runs in the calling process;
 * PID 1 calls it in a child of its own. Never prints; c->log gets events.
 */
int net_listen(const struct net_config *c);

/*
 * The privileged half of the listener's privilege split (net/activate.c), one request each:
 * request (the listener): 0 and a filled in, or -errno and err (the other side's reason).
 * serve (PID 1): reads one pending request from fd and answers it after
 * snap_store_activate_signed with the caller's own keys (objects the store lacks taken from
 * fill, may be NULL; while it copies, the listener is told to keep waiting and fill's progress
 * is called): 1 answered (a says what moved), 2 refused (err says why; the listener was told),
 * 0 nothing pending, -errno the channel is gone.
 */
struct snap_activation;
struct snap_store;
int net_activation_request(int fd, const uint8_t id[32], struct snap_activation *a, char *err, size_t errlen);
struct snap_fill;
int net_activation_serve(int fd, struct snap_store *s, const struct snap_pubkey *keys, size_t nkeys,
			 const struct snap_fill *fill, struct snap_activation *a, char *err, size_t errlen);

/* Initialises lwIP once (idempotent) and returns its version string. */
const char *net_stack_version(void);
/* Runs a known-answer check of the BearSSL primitives keel uses; returns a short verdict. */
const char *net_tls_selftest(void);

/* Pure (net/allow.c): board.c validates board.conf with them whether or not the listener is built. */
/* Parses "A.B.C.D/P" (prefix required when want_prefix) into host-order address; 0 or -EINVAL. */
int net_parse_ipv4(const char *s, int want_prefix, uint32_t *ip, unsigned *prefix);
/* Parses one allow-list entry "HOST:PORT", "HOST:*", "A.B.C.D[/P]:PORT|*"; 0 or -EINVAL. */
int net_parse_allow(const char *s, struct net_allow *a);
/* 1 when host name `name` (lower case, no trailing dot) is what rule pattern `host` names. */
int net_host_match(const char *host, const char *name);

/* ---- the push client (net/push.c) ------------------------------------------ */

struct net_push_progress {
	uint64_t sent, total;            /* pack bytes sent so far / to send */
	size_t objs_sent, objs_total;    /* records sent so far / to send (the manifest included) */
	size_t objs_lacking, objs_all;   /* objects the appliance lacks / objects the snapshot has */
};

struct net_push_opts {
	const char *to;                  /* HOST:PORT */
	const char *store_dir, *manifest;   /* a snapshot (ref NAME or manifest id) of a store, or */
	const char *pack;                /* a pack file made by `keel pack send` */
	int tls;                         /* TLS 1.2 with a client certificate: */
	const char *cert, *key, *ca;     /* ours, its key, the CA the appliance's certificate is from */
	const char *server_name;         /* NULL: the CA alone identifies the appliance */
	/* Once, after negotiation: what will be sent. Then during the send; final = 1 at its end. */
	void (*plan)(void *arg, const struct net_push_progress *p);
	void (*progress)(void *arg, const struct net_push_progress *p, int final);
	void *arg;
};

/*
 * Sends a snapshot to an appliance's update listener: asks which objects it lacks (want?
 * rounds; an appliance without them gets everything), sends those and the manifest as one
 * SNAPPACK 1 stream, reads the result line into answer. 0 when it is "ok ..."; -EREMOTEIO when
 * the appliance answered anything else (answer holds its line, or err says why); any other
 * -errno with err holding one line. Prints nothing.
 */
int net_push(const struct net_push_opts *o, char *answer, size_t answerlen, char *err, size_t errlen);

/* ---- tool commands ------------------------------------------------------- */

int net_cmd_net(int argc, char **argv);    /* keel net listen ... */
int net_cmd_push(int argc, char **argv);   /* keel push --to HOST:PORT ... */

#endif
