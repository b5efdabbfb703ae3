/* Sandbox links in nat mode (net/nat.c). No lwIP in this interface: fuzz_nat drives it alone. */
#ifndef KEEL_NET_NAT_H
#define KEEL_NET_NAT_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

/* One sandbox link's traffic; drops by reason. */
struct net_nat_counts {
	uint64_t in, in_bytes;           /* frames to the guest (forwarded connections, ARP, DHCP) */
	uint64_t out, out_bytes;         /* the guest's packets that went out of the appliance */
	uint64_t resets, leases;         /* resets sent to the guest; DHCP answers */
	uint64_t malformed;              /* from the guest: not Ethernet/ARP/IPv4 as it must be */
	uint64_t denied;                 /* from the guest: no connection, not to the router, spoofed */
	uint64_t stale;                  /* from the uplink: a segment of no connection */
	uint64_t full;                   /* new connections refused: the sandbox's table is full */
	uint64_t link_full;              /* frames the guest's link had no room for */
};

/* The board NIC's side, as the listener's lwIP has it. */
struct net_nat_uplink {
	uint32_t (*ip)(void *arg);       /* the appliance's address (host order), 0: none yet */
	/* Sends an IPv4 packet (header included) to dst (host order) out of the board NIC. */
	int (*send)(void *arg, const uint8_t *pkt, size_t len, uint32_t dst);
	void *arg;
};

struct net_nat;
/* Takes the links (their fds are made nonblocking; net_nat_free does not close them). */
int net_nat_new(struct net_nat **out, const struct net_sandbox *sb, size_t n, const struct net_nat_uplink *up);
void net_nat_free(struct net_nat *nat);
/* An Ethernet frame from the uplink: 1 when it was a forwarded port's (consumed), 0 lwIP's. */
int net_nat_uplink_frame(struct net_nat *nat, const uint8_t *f, size_t len);
int net_nat_fd(const struct net_nat *nat, size_t i);
/* Reads and handles up to max frames from sandbox i's link. */
void net_nat_poll(struct net_nat *nat, size_t i, int max);
/* One frame from sandbox i's guest (net_nat_poll's step; fuzz_nat calls it directly). */
void net_nat_guest_frame(struct net_nat *nat, size_t i, const uint8_t *f, size_t len);
const struct net_nat_counts *net_nat_counts(const struct net_nat *nat, size_t i);

#endif
