/* The update listener: brings lwIP up on the link and runs the one poll() loop. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel_config.h"
#include "lwip/dhcp.h"
#include "lwip/ip_addr.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "net/nat.h"
#include "net/net_int.h"
#include "net/net.h"
#include "snap/snap.h"

#if CONFIG_NET

/*
 * Half-open connections are bounded in front of lwIP: its listener drops every SYN while
 * BACKLOG connections are half-open, and a spoofed SYN's half-open connection lives until its
 * SYN-ACK retries run out (about 20 s), so 32 forged frames used to lock the port. Now a source
 * may hold HALF_OPEN_PER_SOURCE of them (more SYNs from it are dropped), and at HALF_OPEN_MAX
 * the oldest is reset to make room: a real client completes its handshake in one round trip,
 * so a flood would have to send HALF_OPEN_MAX SYNs within that round trip to push it out.
 */
#define BACKLOG 32
#define HALF_OPEN_MAX 24
#define HALF_OPEN_PER_SOURCE 4

void net_config_defaults(struct net_config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = CONFIG_NET_PORT;
	c->max_streams = CONFIG_NET_MAX_STREAMS;
	c->idle_timeout_s = CONFIG_NET_IDLE_TIMEOUT_S;
	c->max_stream_bytes = (uint64_t)CONFIG_NET_MAX_STREAM_MIB << 20;
	c->reserve_bytes = (uint64_t)CONFIG_NET_DISK_RESERVE_MIB << 20;
	c->reserve_set = 1;
	c->tls = CONFIG_NET_TLS;
	c->stop_fd = -1;
	c->activate_fd = -1;
}


static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	return (err_t)net_conn_accept(arg, pcb);
}

static int syn_gate(void *arg, uint32_t src, uint16_t port)
{
	struct net_server *srv = arg;
	struct tcp_pcb *oldest = NULL;
	unsigned total = 0, same = 0;

	if (port != srv->cfg->port)
		return 1;   /* lwIP answers with a reset */
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
		if (p->state != SYN_RCVD || p->local_port != port)
			continue;
		total++;
		if (IP_IS_V4(&p->remote_ip) && ip4_addr_get_u32(ip_2_ip4(&p->remote_ip)) == lwip_htonl(src))
			same++;
		if (!oldest || (u32_t)(tcp_ticks - p->tmr) >= (u32_t)(tcp_ticks - oldest->tmr))
			oldest = p;
	}
	if (same >= HALF_OPEN_PER_SOURCE) {
		srv->syn_refused++;
		return 0;
	}
	if (total >= HALF_OPEN_MAX && oldest) {
		srv->syn_evicted++;
		tcp_abort(oldest);
	}
	return 1;
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

/*
 * Junk cannot pile up: objects are filed as they verify, before the manifest that would use
 * them (manifest-last), so a peer could push correctly hashed junk until only the disk reserve
 * is left. After every pack stream (and once at start, for what a power cut left) the store is
 * swept of what no ref reaches; the sweep waits (-EBUSY) while any stream, here or a
 * `keel pack receive`, holds the store, so nothing on its way to a ref is taken. New pack
 * streams wait for a due sweep (conn.c sweep_wait), so overlapping streams cannot put it off
 * for ever: junk never outlives the streams that brought it.
 */
static void collect(struct net_server *srv)
{
	uint64_t bytes = 0;
	int r = snap_store_gc(srv->store, &bytes);

	if (r == -EBUSY)
		return;
	srv->gc_due = 0;
	net_conn_resume(srv);
	if (r < 0) {
		net_log(srv, "store sweep: %s", strerror(-r));
		return;
	}
	if (r > 0)
		net_log(srv, "store sweep: removed %d files no ref reaches (%llu bytes)", r, (unsigned long long)bytes);
}

/* ---- the uplink as the sandbox links' NAT sees it (nat.c) ---- */
static uint32_t uplink_ip(void *arg)
{
	struct net_link *link = arg;

	return lwip_ntohl(ip4_addr_get_u32(netif_ip4_addr(&link->netif)));
}

static int uplink_send(void *arg, const uint8_t *pkt, size_t len, uint32_t dst)
{
	struct net_link *link = arg;
	struct pbuf *p = len <= 0xffff ? pbuf_alloc(PBUF_LINK, (u16_t)len, PBUF_RAM) : NULL;
	ip4_addr_t to;
	err_t e;

	if (!p)
		return -ENOMEM;
	pbuf_take(p, pkt, (u16_t)len);
	ip4_addr_set_u32(&to, lwip_htonl(dst));
	e = link->netif.output(&link->netif, p, &to);   /* etharp_output: ARP, then the frame */
	pbuf_free(p);
	return e == ERR_OK ? 0 : -EIO;
}

static int uplink_send_frame(void *arg, const uint8_t *frame, size_t len)
{
	return net_link_send(arg, frame, len);
}

static int uplink_bridge(void *arg, const uint8_t *frame, size_t len)
{
	return net_nat_bridge_frame(arg, frame, len);
}

static int uplink_intercept(void *arg, const uint8_t *frame, size_t len)
{
	return net_nat_uplink_frame(arg, frame, len);
}

/* One line: where a sandbox's guest may connect. */
static void allow_report(struct net_server *srv, const struct net_sandbox *sb)
{
	char line[1024];
	size_t n = 0;

	for (unsigned k = 0; k < sb->nallow && n < sizeof(line); k++) {
		const struct net_allow *a = &sb->allow[k];
		unsigned prefix = 0;
		char port[8] = "*";

		while (prefix < 32 && (a->mask << prefix) & 0x80000000u)
			prefix++;
		if (a->port)
			snprintf(port, sizeof(port), "%u", a->port);
		if (a->host[0])
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s:%s", k ? ", " : "", a->host, port);
		else
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%u.%u.%u.%u/%u:%s", k ? ", " : "",
					      a->addr >> 24, a->addr >> 16 & 255, a->addr >> 8 & 255, a->addr & 255,
					      prefix, port);
	}
	if (sb->bridge) {
		net_log(srv, "sandbox %s: bridged onto %s's LAN", sb->name, srv->cfg->ifname);
		return;
	}
	net_log(srv, "sandbox %s: connections out %s%s%s", sb->name, sb->nallow ? "to " : "none (no allow list)",
		sb->nallow ? line : "", srv->cfg->dns || !sb->nallow ? "" : "; no dns in board.conf: names resolve nowhere");
}

/* A line per sandbox link with its counters (moved: only the links whose counters moved since the last call). */
static void nat_report(struct net_server *srv, struct net_nat *nat, int moved)
{
	static struct net_nat_counts last[NET_MAX_SANDBOX_LINKS];
	const struct net_config *cfg = srv->cfg;

	for (size_t i = 0; i < cfg->nsandboxes; i++) {
		const struct net_nat_counts *n = net_nat_counts(nat, i);

		if (moved && !memcmp(n, &last[i], sizeof(*n)))
			continue;
		last[i] = *n;
		net_log(srv, "sandbox %s link: to the guest %llu frames (%llu bytes), out %llu packets (%llu bytes); "
			"%llu DNS queries, %llu resets to the guest, %llu DHCP answers; dropped: "
			"%llu connections out refused, %llu DNS names refused, %llu denied, %llu malformed, "
			"%llu of no connection, %llu refused (table full), %llu link full, %llu spoofed",
			cfg->sandboxes[i].name, (unsigned long long)n->in, (unsigned long long)n->in_bytes,
			(unsigned long long)n->out, (unsigned long long)n->out_bytes, (unsigned long long)n->dns,
			(unsigned long long)n->resets, (unsigned long long)n->leases, (unsigned long long)n->refused,
			(unsigned long long)n->dns_refused, (unsigned long long)n->denied, (unsigned long long)n->malformed,
			(unsigned long long)n->stale, (unsigned long long)n->full, (unsigned long long)n->link_full,
			(unsigned long long)n->spoofed);
	}
}

/* The loop proper: returns 0 when stop_fd fired, -errno when the link died. */
static int serve(struct net_server *srv, struct net_link *link, struct net_nat *nat)
{
	const struct net_config *cfg = srv->cfg;
	int announced = 0;
	u32_t gc_tried = sys_now() - 1000, stats_at = sys_now();

	for (;;) {
		struct pollfd pfd[2 + NET_MAX_SANDBOX_LINKS] = { { link->fd, POLLIN, 0 }, { cfg->stop_fd, POLLIN, 0 } };
		u32_t sleep = sys_timeouts_sleeptime();
		size_t ns = nat ? cfg->nsandboxes : 0;
		int r;

		for (size_t i = 0; i < ns; i++) {
			pfd[2 + i].fd = net_nat_fd(nat, i);
			pfd[2 + i].events = POLLIN;
		}

		if (!announced && !ip4_addr_isany_val(*netif_ip4_addr(&link->netif))) {
			char ip[IP4ADDR_STRLEN_MAX];

			ip4addr_ntoa_r(netif_ip4_addr(&link->netif), ip, sizeof(ip));
			announced = 1;
			if (cfg->port)
				net_log(srv, "up on %s with %s, port %u", cfg->ifname, ip, cfg->port);
			else
				net_log(srv, "up on %s with %s, for the sandboxes' forwards only", cfg->ifname, ip);
			if (cfg->on_ready)
				cfg->on_ready(cfg->arg, ip, cfg->port);
		}
		if (sleep > 1000)
			sleep = 1000;
		r = poll(pfd, 2 + ns, (int)sleep);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && cfg->stop_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			return 0;
		if (r > 0 && (pfd[0].revents & (POLLERR | POLLNVAL)))
			return -ENETDOWN;
		if (r > 0 && (pfd[0].revents & POLLIN)) {
			int n = net_link_poll(link, 512);
			if (n < 0)
				return n;
		}
		for (size_t i = 0; r > 0 && i < ns; i++)
			if (pfd[2 + i].revents & POLLIN)
				net_nat_poll(nat, i, 256);
		sys_check_timeouts();
		if (srv->gc_due && sys_now() - gc_tried >= 100) {
			gc_tried = sys_now();
			collect(srv);
		}
		if (nat && cfg->stats_s && sys_now() - stats_at >= cfg->stats_s * 1000u) {
			stats_at = sys_now();
			nat_report(srv, nat, 1);
		}
	}
}

int net_listen(const struct net_config *cfg)
{
	const char *store_dir = cfg->store_dir;
	struct net_server srv;
	struct net_link link;
	struct net_nat *nat = NULL;
	char err[200];
	int r, promisc = 0;

	/* port 0: no update port, the network process serves the sandboxes' links alone */
	if (!cfg->ifname || (cfg->port && !cfg->store_dir) || (!cfg->port && !cfg->nsandboxes) ||
	    (!cfg->dhcp && (!cfg->ip || cfg->prefix > 32)) || cfg->nsandboxes > NET_MAX_SANDBOX_LINKS)
		return -EINVAL;
	memset(&srv, 0, sizeof(srv));
	srv.cfg = cfg;
	srv.max_streams = cfg->max_streams ? cfg->max_streams : CONFIG_NET_MAX_STREAMS;
	srv.idle_ms = (cfg->idle_timeout_s ? cfg->idle_timeout_s : CONFIG_NET_IDLE_TIMEOUT_S) * 1000u;
	srv.max_stream_bytes = cfg->max_stream_bytes ? cfg->max_stream_bytes
						      : (uint64_t)CONFIG_NET_MAX_STREAM_MIB << 20;
	srv.reserve_bytes = cfg->reserve_set ? cfg->reserve_bytes : (uint64_t)CONFIG_NET_DISK_RESERVE_MIB << 20;
	net_stack_version(); /* lwip_init() once */

	if (cfg->tls) {
		r = net_tls_creds_load(&srv.creds, cfg->tls_cert, cfg->tls_key, cfg->tls_ca, err, sizeof(err));
		if (r < 0) {
			net_log(&srv, "TLS: %s", err);
			return r;
		}
		if (net_tls_creds_self_trusted(srv.creds)) {
			net_log(&srv, "TLS: %s also issued this listener's own certificate, so a copy of any "
				"appliance's certificate would pass as an operator's; give operators a CA of their own",
				cfg->tls_ca);
			r = -EINVAL;
			goto out_creds;
		}
	}
	r = net_link_open(&link, cfg->ifname);
	if (r < 0) {
		net_log(&srv, "interface %s: %s", cfg->ifname, strerror(-r));
		goto out_creds;
	}
	/* bridged guests are stations of the LAN: frames to their MACs too (before the jail forbids it) */
	for (size_t i = 0; i < cfg->nsandboxes && !promisc; i++)
		if (cfg->sandboxes[i].bridge) {
			promisc = net_link_promisc(&link);
			promisc = promisc < 0 ? promisc : 1;
		}
	if (cfg->confine) {
		int fds[3 + NET_MAX_SANDBOX_LINKS], nfds = 0;

		fds[nfds++] = link.fd;
		if (cfg->stop_fd >= 0)
			fds[nfds++] = cfg->stop_fd;
		if (cfg->activate_fd >= 0)
			fds[nfds++] = cfg->activate_fd;
		for (size_t i = 0; i < cfg->nsandboxes; i++)
			fds[nfds++] = cfg->sandboxes[i].fd;
		r = cfg->confine(cfg->arg, fds, nfds, &store_dir, err, sizeof(err));
		if (r) {
			net_log(&srv, "%s", err);
			goto out_link;
		}
	}
	r = cfg->port ? snap_store_open(store_dir, &srv.store) : 0;
	if (r < 0) {
		net_log(&srv, "store %s: %s", cfg->store_dir, strerror(-r));
		goto out_link;
	}
	r = net_link_add(&link, cfg->dhcp ? 0 : cfg->ip, cfg->dhcp ? 0 : prefix_mask(cfg->prefix),
			 cfg->dhcp ? 0 : cfg->gw);
	if (r < 0)
		goto out_store;
	if (cfg->dhcp && dhcp_start(&link.netif) != ERR_OK) {
		r = -ENOMEM;
		goto out_netif;
	}
	if (cfg->port) {
		srv.lpcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
		if (!srv.lpcb) {
			r = -ENOMEM;
			goto out_dhcp;
		}
		if (tcp_bind(srv.lpcb, IP_ANY_TYPE, cfg->port) != ERR_OK) {
			tcp_close(srv.lpcb);
			r = -EADDRINUSE;
			goto out_dhcp;
		}
		srv.lpcb = tcp_listen_with_backlog(srv.lpcb, BACKLOG);
		if (!srv.lpcb) {
			r = -ENOMEM;
			goto out_dhcp;
		}
		tcp_arg(srv.lpcb, &srv);
		tcp_accept(srv.lpcb, on_accept);
		link.syn_gate = syn_gate;
		link.gate_arg = &srv;
		srv.gc_due = 1;
	}
	if (cfg->nsandboxes) {
		struct net_nat_uplink up = { .ip = uplink_ip, .send = uplink_send, .arg = &link,
					     .log = cfg->log, .log_arg = cfg->arg, .dns = cfg->dns,
					     .send_frame = uplink_send_frame };

		memcpy(up.mac, link.mac, 6);
		if (net_nat_new(&nat, cfg->sandboxes, cfg->nsandboxes, &up) < 0) {
			r = -ENOMEM;
			goto out_pcb;
		}
		link.intercept = uplink_intercept;
		link.intercept_arg = nat;
		if (net_nat_bridged(nat)) {
			if (promisc < 0)
				net_log(&srv, "bridge: promiscuous mode on %s: %s (bridged guests get broadcasts only)",
					cfg->ifname, strerror(-promisc));
			link.bridge = uplink_bridge;
			link.bridge_arg = nat;
		}
		for (size_t i = 0; i < cfg->nsandboxes; i++) {
			for (unsigned f = 0; f < cfg->sandboxes[i].nfwd; f++)
				net_log(&srv, "sandbox %s: port %u forwarded to its port %u", cfg->sandboxes[i].name,
					cfg->sandboxes[i].fwd[f].outer, cfg->sandboxes[i].fwd[f].inner);
			allow_report(&srv, &cfg->sandboxes[i]);
		}
	}

	r = serve(&srv, &link, nat);
	net_log(&srv, "stopping: %llu accepted, %llu filed, %llu failed, %llu refused, %llu evicted, "
		"%llu dropped (slow, stalled or too old); half-open: %llu reset, %llu SYNs refused; "
		"%llu lines about connections not logged; "
		"link rx %llu frames (%llu dropped, %llu bad checksum), tx %llu (%llu errors)",
		(unsigned long long)srv.accepted, (unsigned long long)srv.filed, (unsigned long long)srv.failed,
		(unsigned long long)srv.refused, (unsigned long long)srv.evicted, (unsigned long long)srv.dropped,
		(unsigned long long)srv.syn_evicted, (unsigned long long)srv.syn_refused,
		(unsigned long long)srv.log_suppressed,
		(unsigned long long)link.rx_frames, (unsigned long long)link.rx_dropped,
		(unsigned long long)link.rx_bad_csum, (unsigned long long)link.tx_frames,
		(unsigned long long)link.tx_errors);

	if (nat)
		nat_report(&srv, nat, 0);
	link.intercept = NULL;
	link.bridge = NULL;
	net_nat_free(nat);
out_pcb:
	net_conn_abort_all(&srv);
	if (srv.lpcb)
		tcp_close(srv.lpcb);
out_dhcp:
	if (cfg->dhcp)
		dhcp_stop(&link.netif);
out_netif:
	netif_set_down(&link.netif);
out_store:
	snap_store_close(srv.store);
out_link:
	net_link_close(&link);
out_creds:
	if (srv.creds)
		net_tls_creds_free(srv.creds);
	return r;
}

#endif
