/*
 * virtio-net over a frame descriptor: a SOCK_SEQPACKET socket to keel's network process (PID 1's
 * sandboxes) or a TAP device (`keel vm run --nic tap:NAME`). Either carries one Ethernet frame
 * per read and per write, so the device needs nothing else from its backend.
 *
 * IMPLEMENTATION NOTES
 * - No offloads: frames are at most FRAME_MAX bytes both ways and carry whole checksums, so
 *   keel's side never has to trust a guest's partial checksum or segment a guest's 64 KiB
 *   "frame". Mergeable receive buffers are offered (Linux then posts page-sized fragments
 *   instead of one skb per buffer); a frame still fits one of them.
 * - Transmit runs on the vCPU that notified, receive on the VMM's I/O thread (vm_run.c polls the
 *   backend through ops->poll). A full backend is backpressure, not loss: the frame waits in the
 *   device, the transmit queue is not read until the backend takes it, and the guest's queue
 *   fills and stops its stack. A received frame with no guest buffer to go to waits likewise
 *   and the backend is not read until the guest posts buffers.
 * - Everything here runs with vm->lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

#include "snap/snap.h"
#include "vmm/vmm_int.h"

#define NET_F_MAC (1ULL << 5)
#define NET_F_MRG_RXBUF (1ULL << 15)
#define NET_F_STATUS (1ULL << 16)
#define NET_S_LINK_UP 1
#define HDR 12                        /* struct virtio_net_hdr_v1 (num_buffers included) */
#define FRAME_MIN 14
#define FRAME_MAX 1518                /* 1500 bytes of payload, Ethernet header, a VLAN tag */
#define RXQ 0
#define TXQ 1
#define STATUS_DRIVER_OK 4
#define STATUS_NEEDS_RESET 0x40

struct net {
	int fd;                           /* the backend, -1: none (the link is down) */
	uint8_t mac[6];
	uint16_t status;
	uint8_t *rx, *tx;                 /* one frame each (FRAME_MAX + 1: a longer read is too long) */
	size_t rx_len, tx_len;            /* a frame waiting for guest buffers / for the backend */
	int hello;                        /* the backend was told this VMM's MAC */
	int link_changed;                 /* restored with another link status than the guest saw */
};
_Static_assert(sizeof(struct net) <= VMM_DEV_PRIV, "virtio-net state must fit the device's room");

static struct net *net(const struct vmm_virtio *d)
{
	return (struct net *)(void *)d->priv;
}

static int net_count(const struct vmm_config *cfg)
{
	return cfg->nic ? 1 : 0;
}

static int net_init(struct vmm_virtio *d, const struct vmm_config *cfg, int i, char *err, size_t errlen)
{
	struct net *n = net(d);

	(void)i;
	n->fd = -1;
	n->rx = malloc(FRAME_MAX + 1);
	n->tx = malloc(FRAME_MAX + 1);
	if (!n->rx || !n->tx) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return -ENOMEM;
	}
	if (cfg->net_fd >= 0) {
		n->fd = fcntl(cfg->net_fd, F_DUPFD_CLOEXEC, 3);
		if (n->fd < 0 || fcntl(n->fd, F_SETFL, fcntl(n->fd, F_GETFL) | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "virtio-net backend: %s", strerror(errno));
			return -errno;
		}
	}
	memcpy(n->mac, cfg->net_mac, 6);
	n->status = n->fd >= 0 ? NET_S_LINK_UP : 0;
	d->features |= NET_F_MAC | NET_F_STATUS | NET_F_MRG_RXBUF;
	return 0;
}

static void net_destroy(struct vmm_virtio *d)
{
	struct net *n = net(d);

	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	free(n->rx);
	free(n->tx);
	n->rx = n->tx = NULL;
}

static void net_reset(struct vmm_virtio *d)
{
	net(d)->rx_len = net(d)->tx_len = 0;
}

static void net_config(const struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len)
{
	uint8_t cfg[12];
	uint16_t pairs = 1, mtu = 1500;

	memset(cfg, 0, sizeof(cfg));
	memcpy(cfg, net(d)->mac, 6);
	memcpy(cfg + 6, &net(d)->status, 2);
	memcpy(cfg + 8, &pairs, 2);
	memcpy(cfg + 10, &mtu, 2);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static int live(const struct vmm_virtio *d)
{
	return (d->status & STATUS_DRIVER_OK) && !(d->status & STATUS_NEEDS_RESET);
}

static void wake(struct vmm *vm)
{
	uint64_t one = 1;

	if (write(vm->event_fd, &one, sizeof(one)) < 0) {
		/* the I/O thread wakes within its poll timeout anyway */
	}
}

/*
 * Places the waiting received frame in the guest's receive buffers: 2 placed (the IRQ is due), 1
 * dropped (no driver yet: no interrupt may reach a guest that set up none), 0 no buffer yet (it
 * keeps waiting), -1 a malformed ring.
 */
static int rx_place(struct vmm *vm, struct vmm_virtio *d, const char **why)
{
	struct net *n = net(d);
	struct vmm_vq *q = &d->vq[RXQ];
	int mrg = !!(d->driver_features & NET_F_MRG_RXBUF);
	size_t off = 0, total = HDR + n->rx_len;
	uint8_t *nbufs = NULL;
	uint16_t used = 0;

	if (!live(d) || !q->ready) {
		n->rx_len = 0;   /* no driver to take it: dropped */
		return 1;
	}
	while (off < total) {
		struct vmm_vbuf b[VMM_CHAIN_MAX];
		uint32_t written = 0;
		uint16_t head;
		unsigned nb;
		int r = vmm_vq_pop(vm, q, &head, b, &nb, why);

		if (r < 0)
			return -1;
		if (r == 0) {
			if (!used)
				return 0;
			break;   /* mergeable, out of buffers mid-frame: what is there goes, marked short */
		}
		for (unsigned i = 0; i < nb && off < total; i++) {
			uint32_t k;

			if (!b[i].write)
				continue;
			if (off == 0 && !used && b[i].len < HDR) {
				*why = "receive buffer shorter than the virtio-net header";
				return -1;
			}
			k = (uint32_t)(total - off < b[i].len ? total - off : b[i].len);
			if (off == 0) {
				memset(b[i].p, 0, HDR);
				nbufs = b[i].p + 10;
				memcpy(b[i].p + HDR, n->rx, k - HDR);
			} else {
				memcpy(b[i].p, n->rx + (off - HDR), k);
			}
			off += k;
			written += k;
		}
		if (!written) {
			*why = "receive chain without a writable buffer";
			return -1;
		}
		if (vmm_vq_push(vm, q, head, written) < 0) {
			*why = "used ring outside guest RAM";
			return -1;
		}
		used++;
		if (!mrg)
			break;
	}
	/* off < total: out of buffers mid-frame; the guest's driver sees a short frame and drops it */
	if (nbufs)
		memcpy(nbufs, &used, 2);
	d->isr |= 1;
	n->rx_len = 0;
	return 2;
}

/*
 * The I/O thread: what to poll the backend for now. First of all it tells the backend this
 * NIC's MAC (a restored guest's is its snapshot's): one broadcast frame of a local ethertype,
 * 0x88b5, from that MAC. keel's side of a sandbox link learns where to send and that whatever
 * was connected before is gone; a TAP's kernel drops it.
 */
static int net_poll(struct vmm *vm, struct vmm_virtio *d, short *events)
{
	struct net *n = net(d);

	(void)vm;
	if (!n->hello && n->fd >= 0) {
		uint8_t f[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

		memcpy(f + 6, n->mac, 6);
		f[12] = 0x88;
		f[13] = 0xb5;
		memcpy(f + 14, "keel-vmm hello", 14);
		if (write(n->fd, f, sizeof(f)) < 0) {
			/* a full or absent backend learns the MAC from the guest's first frame instead */
		}
		n->hello = 1;
	}
	/* a restored guest whose link came up (or went) hears it now: a config-change interrupt */
	if (n->link_changed) {
		n->link_changed = 0;
		if (live(d)) {
			d->isr |= 2;
			d->cfg_gen++;
			d->irq_pending = 1;
		}
	}
	*events = (short)((n->rx_len ? 0 : POLLIN) | (n->tx_len ? POLLOUT : 0));
	return n->fd >= 0 && *events ? n->fd : -1;
}

static int tx_flush(struct net *n)
{
	ssize_t w;

	if (!n->tx_len)
		return 1;
	w = write(n->fd, n->tx, n->tx_len);
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* sent, or the backend is gone or refused it: the wire lost it */
	n->tx_len = 0;
	return 1;
}

/* Sends every waiting transmit chain; stops (leaving the rest in the ring) when the backend is full. */
static int tx_run(struct vmm *vm, struct vmm_virtio *d)
{
	struct net *n = net(d);
	struct vmm_vq *q = &d->vq[TXQ];
	int irq = 0;

	while (tx_flush(n)) {
		struct vmm_vbuf b[VMM_CHAIN_MAX];
		const char *why = NULL;
		uint16_t head;
		unsigned nb;
		size_t len = 0, skip = HDR;
		int r = vmm_vq_pop(vm, q, &head, b, &nb, &why);

		if (r < 0)
			return vmm_virtio_fault(vm, d, TXQ, why);
		if (r == 0)
			break;
		for (unsigned i = 0; i < nb; i++) {
			uint32_t s = b[i].len, k;

			if (b[i].write)
				continue;   /* the device only reads a transmit chain */
			k = skip < s ? (uint32_t)skip : s;
			skip -= k;
			s -= k;
			if (len + s > FRAME_MAX) {
				len = FRAME_MAX + 1;
				break;
			}
			memcpy(n->tx + len, b[i].p + k, s);
			len += s;
		}
		if (vmm_vq_push(vm, q, head, 0) < 0)
			return vmm_virtio_fault(vm, d, TXQ, "used ring outside guest RAM");
		irq = 1;
		if (skip || len < FRAME_MIN || len > FRAME_MAX || n->fd < 0)
			continue;   /* malformed, oversized or no link: dropped like a bad frame on a wire */
		n->tx_len = len;
	}
	if (n->tx_len)
		wake(vm);   /* the I/O thread polls for room */
	if (irq)
		d->isr |= 1;
	return irq;
}

static int net_notify(struct vmm *vm, struct vmm_virtio *d, unsigned qi)
{
	struct net *n = net(d);

	if (qi == TXQ)
		return n->tx_len ? 0 : tx_run(vm, d);
	if (n->rx_len) {
		const char *why = NULL;
		int r = rx_place(vm, d, &why);

		if (r < 0)
			return vmm_virtio_fault(vm, d, RXQ, why);
		if (r > 0) {
			wake(vm);   /* the backend may be read again */
			return r == 2;
		}
	}
	return 0;
}

/* The I/O thread, the backend ready: frames in (until the guest's buffers run out), waiting frame out. */
static int net_ready(struct vmm *vm, struct vmm_virtio *d, short revents)
{
	struct net *n = net(d);
	int irq = 0;

	if ((revents & POLLOUT) && n->tx_len && tx_flush(n) && live(d))
		irq |= tx_run(vm, d);
	for (int k = 0; k < 64 && (revents & (POLLIN | POLLHUP | POLLERR)) && !n->rx_len; k++) {
		const char *why = NULL;
		ssize_t r = read(n->fd, n->rx, FRAME_MAX + 1);
		int p;

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r <= 0) {   /* the other end is gone: the link is down */
			close(n->fd);
			n->fd = -1;
			n->status = 0;
			if (!live(d))
				return irq;
			d->isr |= 2;
			d->cfg_gen++;
			return 1;
		}
		if (r < FRAME_MIN || r > FRAME_MAX)
			continue;   /* a runt or too long for the guest's MTU: dropped */
		n->rx_len = (size_t)r;
		p = rx_place(vm, d, &why);
		if (p < 0)
			return vmm_virtio_fault(vm, d, RXQ, why);
		irq |= p == 2;
	}
	return irq;
}

static void net_save(const struct vmm_virtio *d, void *state)
{
	struct vmstate_net st;

	memset(&st, 0, sizeof(st));
	memcpy(st.mac, net(d)->mac, 6);
	st.status = net(d)->status;
	memcpy(state, &st, sizeof(st));
}

/* A restored NIC keeps the MAC its guest read at boot; the link is up when there is a backend. */
static int net_load(struct vmm_virtio *d, const void *state, char *err, size_t errlen)
{
	struct vmstate_net st;

	memcpy(&st, state, sizeof(st));
	if (st.status & ~NET_S_LINK_UP) {
		snprintf(err, errlen, "virtio-net state out of range");
		return -EINVAL;
	}
	memcpy(net(d)->mac, st.mac, 6);
	net(d)->link_changed = st.status != net(d)->status;
	return 0;
}

const struct vmm_virtio_ops vmm_virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VMM_VIRTIO_NET,
	.nqueues = 2,
	.count = net_count,
	.init = net_init,
	.notify = net_notify,
	.poll = net_poll,
	.ready = net_ready,
	.config = net_config,
	.destroy = net_destroy,
	.reset = net_reset,
	.state_size = sizeof(struct vmstate_net),
	.save = net_save,
	.load = net_load,
};

void vmm_nic_mac(const char *box, const char *name, uint8_t mac[6])
{
	struct snap_b3 h;
	uint8_t out[SNAP_HASH_LEN];

	snap_b3_init_derive_key(&h, "keel 2026 sandbox NIC MAC");
	snap_b3_update(&h, box, strlen(box) + 1);
	snap_b3_update(&h, name, strlen(name));
	snap_b3_final(&h, out, sizeof(out));
	memcpy(mac, out, 6);
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);   /* locally administered, unicast */
}

int vmm_nic_open(const char *spec, int *fd, char *err, size_t errlen)
{
	if (!strcmp(spec, "none")) {
		*fd = -1;
		return 0;
	}
	if (!strncmp(spec, "fd:", 3)) {
		char *end;
		long v = strtol(spec + 3, &end, 10);

		if (*end || end == spec + 3 || v < 0 || v > 65535 || fcntl((int)v, F_GETFD) < 0) {
			snprintf(err, errlen, "--nic %s: not an open descriptor", spec);
			return -EBADF;
		}
		*fd = (int)v;
		return 0;
	}
	if (!strncmp(spec, "tap:", 4) && spec[4] && strlen(spec + 4) < IFNAMSIZ) {
		struct ifreq ifr;
		int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

		if (t < 0) {
			snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
			return -errno;
		}
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", spec + 4);
		if (ioctl(t, TUNSETIFF, &ifr) < 0) {
			int e = errno;

			close(t);
			snprintf(err, errlen, "TAP %s: %s", spec + 4, strerror(e));
			return -e;
		}
		*fd = t;
		return 0;
	}
	snprintf(err, errlen, "--nic %s: expected tap:NAME, fd:N or none", spec);
	return -EINVAL;
}
