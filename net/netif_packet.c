/* lwIP's link layer: Ethernet frames from an AF_PACKET socket bound to one interface, or a TAP device. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "net/net_int.h"
#include "netif/ethernet.h"

/*
 * IMPLEMENTATION NOTES
 * - A veth peer (or any NIC with TX checksum offload) hands packet sockets
 *   frames whose TCP/UDP checksum is only partial (TP_STATUS_CSUMNOTREADY),
 *   and GSO/GRO hands them frames far above the MTU. So lwIP's own TCP/UDP
 *   checksum check is off on this netif and done here, once per frame, only
 *   when the kernel has not already vouched for it (CSUMNOTREADY: produced
 *   locally, never on a wire; CSUM_VALID: checked by the NIC or the kernel).
 *   The receive buffer holds 64 KiB frames.
 * - lwIP uses the interface's own MAC so a real NIC needs no promiscuous mode;
 *   the kernel must have no address there. Its IPv6 is switched off on the
 *   interface (best effort) because its link-local address would be ours.
 */

#define LINK_BUFLEN (65536 + 64)
#define LINK_RCVBUF (8 << 20)

uint32_t net_csum_add(uint32_t sum32, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t sum = sum32;
	uint32_t w;

	/* Big-endian 16-bit words summed through 32-bit loads; byte order is fixed at the end. */
	while (len >= 4) {
		memcpy(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	uint64_t tail = 0;
	if (len >= 2) {
		uint16_t h;
		memcpy(&h, p, 2);
		tail += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint16_t h = 0;
		memcpy(&h, p, 1);
		tail += h;
	}
	sum += tail;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint32_t)sum;
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The pseudo-header words, added in network byte order like the payload. */
static uint32_t pseudo_add(uint32_t sum, const uint8_t *src, const uint8_t *dst, size_t alen, uint8_t proto,
			   uint32_t l4len)
{
	uint8_t tail[8] = { 0 };

	sum = net_csum_add(sum, src, alen);
	sum = net_csum_add(sum, dst, alen);
	tail[0] = (uint8_t)(l4len >> 24);
	tail[1] = (uint8_t)(l4len >> 16);
	tail[2] = (uint8_t)(l4len >> 8);
	tail[3] = (uint8_t)l4len;
	tail[7] = proto;
	return net_csum_add(sum, tail, sizeof(tail));
}

int net_frame_l4_csum_ok(const uint8_t *f, size_t len)
{
	const uint8_t *ip, *l4;
	uint16_t type;
	size_t iplen, hl;
	uint8_t proto;
	uint32_t sum;

	if (len < 14)
		return 0;
	type = (uint16_t)(f[12] << 8 | f[13]);
	ip = f + 14;
	len -= 14;
	if (type == 0x0800) {
		if (len < 20 || (ip[0] >> 4) != 4)
			return 1; /* lwIP drops it */
		hl = (size_t)(ip[0] & 15) * 4;
		iplen = (size_t)(ip[2] << 8 | ip[3]);
		if (hl < 20 || iplen < hl || iplen > len)
			return 1;
		if ((ip[6] & 0x3f) || ip[7])
			return 1; /* a fragment: lwIP (built without reassembly) drops it */
		proto = ip[9];
		if (proto != 6 && proto != 17)
			return 1;
		l4 = ip + hl;
		if (proto == 17 && iplen - hl >= 8 && l4[6] == 0 && l4[7] == 0)
			return 1; /* UDP over IPv4 without checksum */
		sum = pseudo_add(0, ip + 12, ip + 16, 4, proto, (uint32_t)(iplen - hl));
		sum = net_csum_add(sum, l4, iplen - hl);
		return net_csum_fold(sum) == 0xffff;
	}
	if (type == 0x86dd) {
		size_t off = 40, plen;

		if (len < 40 || (ip[0] >> 4) != 6)
			return 1;
		plen = (size_t)(ip[4] << 8 | ip[5]);
		if (40 + plen > len)
			return 1;
		proto = ip[6];
		/* Walk hop-by-hop, routing and destination options to the upper layer. */
		while (proto == 0 || proto == 43 || proto == 60) {
			if (off + 8 > 40 + plen)
				return 1;
			proto = ip[off];
			off += ((size_t)ip[off + 1] + 1) * 8;
		}
		if (proto == 44)
			return 1; /* fragment: dropped by lwIP */
		if ((proto != 6 && proto != 17) || off > 40 + plen)
			return 1;
		sum = pseudo_add(0, ip + 8, ip + 24, 16, proto, (uint32_t)(40 + plen - off));
		sum = net_csum_add(sum, ip + off, 40 + plen - off);
		return net_csum_fold(sum) == 0xffff;
	}
	return 1;
}

static err_t link_output(struct netif *netif, struct pbuf *p)
{
	struct net_link *l = netif->state;
	struct iovec iov[32];
	int n = 0;
	ssize_t r;

	for (struct pbuf *q = p; q && n < 32; q = q->next) {
		iov[n].iov_base = q->payload;
		iov[n].iov_len = q->len;
		n++;
		if (q->tot_len == q->len)
			break;
	}
	do
		r = writev(l->fd, iov, n);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)p->tot_len) {
		/* A full socket buffer drops the frame like a busy wire would; TCP retransmits. */
		l->tx_errors++;
		return ERR_OK;
	}
	l->tx_frames++;
	return ERR_OK;
}

static err_t link_init(struct netif *netif)
{
	struct net_link *l = netif->state;

	netif->name[0] = 'k';
	netif->name[1] = 'l';
	netif->output = etharp_output;
#if LWIP_IPV6
	netif->output_ip6 = ethip6_output;
#endif
	netif->linkoutput = link_output;
	netif->mtu = (u16_t)(l->mtu > 9000 ? 9000 : l->mtu);
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, l->mac, 6);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
	/* TCP/UDP checks happen in net_link_poll(), see the notes at the top. */
	NETIF_SET_CHECKSUM_CTRL(netif, NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_UDP | NETIF_CHECKSUM_GEN_TCP |
				NETIF_CHECKSUM_GEN_ICMP | NETIF_CHECKSUM_GEN_ICMP6 | NETIF_CHECKSUM_CHECK_IP |
				NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_CHECK_ICMP6);
	return ERR_OK;
}

static void disable_kernel_ipv6(const char *ifname)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1) {
		/* Only the duplicate link-local answers are at stake; lwIP works either way. */
	}
	close(fd);
}

static int open_tap(struct net_link *l, const char *name)
{
	struct ifreq ifr;
	int fd;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	l->fd = fd;
	l->is_tap = 1;
	l->mtu = 1500;
	/* The kernel owns the TAP's MAC as the far end; ours is a random locally administered one. */
	for (int i = 0; i < 6; i++)
		l->mac[i] = (uint8_t)net_lwip_rand();
	l->mac[0] = (uint8_t)((l->mac[0] & 0xfe) | 0x02);
	return 0;
}

static int open_packet(struct net_link *l, const char *name)
{
	struct sockaddr_ll sll;
	struct ifreq ifr;
	int fd, one = 1, rcvbuf = LINK_RCVBUF, e;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		goto fail_errno;
	l->ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		goto fail_errno;
	memcpy(l->mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		goto fail_errno;
	l->mtu = (unsigned)ifr.ifr_mtu;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail_errno;
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			goto fail_errno;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
		goto fail_errno;
#ifdef PACKET_IGNORE_OUTGOING
	/* Older kernels lack it; the pkttype test in net_link_poll() covers them. */
	(void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
#endif
	/* A whole TCP window must fit while the loop is busy filing data (kernel memory, not ours). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = l->ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		goto fail_errno;
	disable_kernel_ipv6(name);
	l->fd = fd;
	return 0;

fail_errno:
	e = -errno;
	close(fd);
	return e;
}

int net_link_open(struct net_link *l, const char *name)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->buflen = LINK_BUFLEN;
	l->buf = malloc(l->buflen);
	if (!l->buf)
		return -ENOMEM;
	if (!strncmp(name, "tap:", 4))
		r = open_tap(l, name + 4);
	else
		r = open_packet(l, name);
	if (r < 0) {
		free(l->buf);
		l->buf = NULL;
	}
	return r;
}

int net_link_add(struct net_link *l, uint32_t ip, uint32_t mask, uint32_t gw)
{
	ip4_addr_t a, m, g;

	ip4_addr_set_u32(&a, lwip_htonl(ip));
	ip4_addr_set_u32(&m, lwip_htonl(mask));
	ip4_addr_set_u32(&g, lwip_htonl(gw));
	if (!netif_add(&l->netif, &a, &m, &g, l, link_init, ethernet_input))
		return -EIO;
	netif_set_default(&l->netif);
#if LWIP_IPV6
	netif_create_ip6_linklocal_address(&l->netif, 1);
#endif
	netif_set_link_up(&l->netif);
	netif_set_up(&l->netif);
	return 0;
}

/*
 * Hands one received frame to lwIP; checks TCP/UDP sums the kernel did not
 * vouch for. IP packets skip ethernet_input() so that a GSO/GRO frame of a
 * full 64 KiB IP packet (14 bytes more than a pbuf can hold) still fits.
 */
static void link_input(struct net_link *l, size_t len, unsigned status)
{
	const uint8_t *f = l->buf;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	int ip = type == 0x0800 || type == 0x86dd;
	size_t skip = ip ? 14 : 0;
	struct pbuf *p;

	if (!(status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) && !net_frame_l4_csum_ok(f, len)) {
		l->rx_bad_csum++;
		return;
	}
	if (len - skip > 65535) {
		l->rx_dropped++;
		return;
	}
	if (type == 0x0800 && l->intercept && l->intercept(l->intercept_arg, f, len)) {
		l->rx_frames++;
		l->rx_bytes += len;
		return;
	}
	if (type == 0x0800 && l->syn_gate && len >= 14 + 20 && f[23] == 6) {
		size_t ihl = (size_t)(f[14] & 0x0f) * 4;
		const uint8_t *t = f + 14 + ihl;

		/* An unfragmented TCP segment with SYN and without ACK: a connection attempt. */
		if (ihl >= 20 && len >= 14 + ihl + 20 && !(f[20] & 0x3f) && !f[21] && (t[13] & 0x12) == 0x02 &&
		    !l->syn_gate(l->gate_arg, (uint32_t)f[26] << 24 | (uint32_t)f[27] << 16 | (uint32_t)f[28] << 8 | f[29],
				 (uint16_t)(t[2] << 8 | t[3]))) {
			l->rx_syn_dropped++;
			return;
		}
	}
	p = pbuf_alloc(PBUF_RAW, (u16_t)(len - skip), PBUF_POOL);
	if (!p) {
		l->rx_dropped++;
		return;
	}
	pbuf_take(p, f + skip, (u16_t)(len - skip));
	l->rx_frames++;
	l->rx_bytes += len;
	if (!ip) {
		if (l->netif.input(p, &l->netif) != ERR_OK)
			pbuf_free(p);
		return;
	}
	/* What ethernet_input() would have noted about the destination MAC. */
	if (f[0] & 1)
		p->flags |= (f[0] == 0xff && f[1] == 0xff && f[2] == 0xff && f[3] == 0xff && f[4] == 0xff &&
			     f[5] == 0xff) ? PBUF_FLAG_LLBCAST : PBUF_FLAG_LLMCAST;
	if (ip_input(p, &l->netif) != ERR_OK)
		pbuf_free(p);
}

int net_link_poll(struct net_link *l, int max)
{
	int n;

	for (n = 0; n < max; n++) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} ctl;
		struct sockaddr_ll from;
		struct iovec iov = { l->buf, l->buflen };
		struct msghdr msg = { 0 };
		unsigned status = 0;
		ssize_t r;

		if (l->is_tap) {
			r = read(l->fd, l->buf, l->buflen);
		} else {
			msg.msg_name = &from;
			msg.msg_namelen = sizeof(from);
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			msg.msg_control = &ctl;
			msg.msg_controllen = sizeof(ctl);
			r = recvmsg(l->fd, &msg, MSG_TRUNC);
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			if (errno == ENETDOWN)
				break; /* link went down; frames resume when it is back */
			return -errno;
		}
		if ((size_t)r > l->buflen || r < 14) {
			l->rx_dropped++;
			continue;
		}
		if (!l->is_tap) {
			if (from.sll_pkttype == PACKET_OUTGOING || from.sll_ifindex != l->ifindex ||
			    (from.sll_pkttype == PACKET_OTHERHOST && !l->bridge))
				continue;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
				if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
					struct tpacket_auxdata aux;
					memcpy(&aux, CMSG_DATA(c), sizeof(aux));
					status = aux.tp_status;
					/* VLAN-tagged traffic is not ours (the tag was stripped into aux). */
					if (status & TP_STATUS_VLAN_VALID)
						status = ~0u;
				}
			}
			if (status == ~0u)
				continue;
		}
		if (l->bridge) {
			if (!(status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) && !net_frame_l4_csum_ok(l->buf, (size_t)r)) {
				l->rx_bad_csum++;
				continue;
			}
			if (l->bridge(l->bridge_arg, l->buf, (size_t)r)) {
				l->rx_frames++;
				l->rx_bytes += (size_t)r;
				continue;
			}
			if (!l->is_tap && from.sll_pkttype == PACKET_OTHERHOST)
				continue;
		}
		link_input(l, (size_t)r, status);
	}
	return n;
}

int net_link_promisc(struct net_link *l)
{
	struct packet_mreq mr = { .mr_ifindex = l->ifindex, .mr_type = PACKET_MR_PROMISC };

	if (l->is_tap)
		return 0;   /* a TAP hands over every frame */
	return setsockopt(l->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ? -errno : 0;
}

int net_link_send(struct net_link *l, const uint8_t *frame, size_t len)
{
	ssize_t r;

	do
		r = write(l->fd, frame, len);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)len) {
		l->tx_errors++;
		return r < 0 ? -errno : -EIO;
	}
	l->tx_frames++;
	return 0;
}

void net_link_close(struct net_link *l)
{
	if (l->netif.state)
		netif_remove(&l->netif);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->buf);
	l->buf = NULL;
}
