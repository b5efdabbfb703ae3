/*
 * libFuzzer: the whole surface a guest can reach without KVM in between. The input is a script
 * of guest actions against a VM with a virtio-blk (read-write temp file), a virtio-blk (read-only),
 * a virtio-rng and a virtio-net device (its backend a socketpair whose far end the script writes
 * frames into and reads or leaves full), the UART, the CMOS RTC and the ACPI/reset ports: MMIO
 * reads and writes of any register, port I/O, writes into guest memory (descriptor tables, rings,
 * request headers), queue set-up shortcuts that point rings into memory, notifications, console
 * input, frames arriving and backends filling up.
 * ASan+UBSan catch any access outside guest memory; the invariants checked here are that
 * pushed used-ring indices never pass what the device popped and a device that needs a reset
 * serves nothing until it is reset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (1U << 20)
#define NDEV 4
#define NIC 3

static struct vmm *vm;
static int peer = -1;   /* the NIC backend's far end (keel's network process, in PID 1's sandboxes) */

/* A fresh NIC for each input: nothing queued in its backend from the last one. */
static int nic_renew(void)
{
	struct vmm_config cfg = { .nic = 1 };
	char err[200];
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (peer >= 0)
		close(peer);
	vmm_virtio_destroy(&vm->virtio[NIC]);
	cfg.net_fd = sv[0];
	r = vmm_virtio_init(&vm->virtio[NIC], &vmm_virtio_net_ops, &cfg, 0, err, sizeof(err));
	close(sv[0]);
	peer = sv[1];
	vmm_place_devices(vm);
	return r;
}

static int setup(void)
{
	static const char *const names[2] = { "/tmp/keel-fuzz-bus-rw-XXXXXX", "/tmp/keel-fuzz-bus-ro-XXXXXX" };
	struct vmm_config cfg = { .ndisks = 2, .rng = 1, .nic = 1, .net_fd = -1 };
	char paths[2][64], err[256];
	int i, r;

	vm = vmm_alloc();
	if (!vm)
		return -1;
	vm->mem = calloc(1, MEM_SIZE);
	vm->mem_size = MEM_SIZE;
	if (!vm->mem)
		return -1;
	for (i = 0; i < 2; i++) {
		int fd;

		strcpy(paths[i], names[i]);
		fd = mkstemp(paths[i]);
		if (fd < 0 || ftruncate(fd, 64 * 1024) < 0)
			return -1;
		close(fd);
		cfg.disks[i].path = paths[i];
		cfg.disks[i].ro = i;
	}
	/* the devices as `keel vm run --disk RW --disk RO,ro --rng` places them */
	r = vmm_add_devices(vm, &cfg, err, sizeof(err));
	for (i = 0; i < 2; i++)
		unlink(paths[i]);   /* the devices keep their fds */
	return r < 0 || vm->nvirtio != NDEV ? -1 : 0;
}

struct in {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct in *in, unsigned bytes)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint32_t)in->p[0] << (8 * i);
	return v;
}

static void mmio32(uint64_t addr, uint32_t v)
{
	uint8_t b[8] = { 0 };

	memcpy(b, &v, 4);
	vmm_mmio(vm, addr, 1, b, 4);
}

/* Rings of a device's queue q at offsets into memory, the way a driver sets them up. */
static void queue_setup(unsigned dev, unsigned q, uint32_t desc, uint32_t avail, uint32_t used, uint32_t num)
{
	uint64_t b = VMM_MMIO_BASE + (uint64_t)dev * VMM_MMIO_SIZE;

	mmio32(b + 0x70, 0);
	mmio32(b + 0x70, 1);
	mmio32(b + 0x70, 3);
	mmio32(b + 0x24, 1);
	mmio32(b + 0x20, 1);
	mmio32(b + 0x70, 0xb);
	mmio32(b + 0x30, q);
	mmio32(b + 0x38, num);
	mmio32(b + 0x80, desc);
	mmio32(b + 0x90, avail);
	mmio32(b + 0xa0, used);
	mmio32(b + 0x44, 1);
	mmio32(b + 0x70, 0xf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t ports[] = { 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
					  0x70, 0x71, 0x600, 0x601, 0xcf9, 0x64, 0x80, 0xffff };
	struct in in = { data, size };
	unsigned i;

	if (!vm && setup() < 0)
		abort();
	if (nic_renew() < 0)
		abort();
	memset(vm->mem, 0, MEM_SIZE);
	for (i = 0; i < NDEV; i++)
		mmio32(VMM_MMIO_BASE + (uint64_t)i * VMM_MMIO_SIZE + 0x70, 0);
	vmm_uart_reset(&vm->uart);
	vm->event = VMM_EV_NONE;

	while (in.n) {
		unsigned op = take(&in, 1), dev = take(&in, 1) % (NDEV + 1);
		uint64_t base = VMM_MMIO_BASE + (uint64_t)dev * VMM_MMIO_SIZE;   /* dev NDEV: no device */
		uint8_t b[8] = { 0 };

		switch (op % 10) {
		case 0: {   /* MMIO write of 1, 2, 4 or 8 bytes anywhere in (or just past) a window */
			unsigned off = take(&in, 2) % (VMM_MMIO_SIZE + 16), len = 1U << (take(&in, 1) % 4);
			uint32_t lo = take(&in, 4), hi = take(&in, 4);

			memcpy(b, &lo, 4);
			memcpy(b + 4, &hi, 4);
			vmm_mmio(vm, base + off, 1, b, len);
			break;
		}
		case 1: {
			unsigned off = take(&in, 2) % (VMM_MMIO_SIZE + 16), len = 1U << (take(&in, 1) % 4);

			vmm_mmio(vm, base + off, 0, b, len);
			break;
		}
		case 2: {
			uint16_t port = ports[take(&in, 1) % 16];
			unsigned len = 1U << (take(&in, 1) % 3);
			uint32_t v = take(&in, 4);

			memcpy(b, &v, 4);
			vmm_pio(vm, port, 1, b, len);
			break;
		}
		case 3:
			vmm_pio(vm, ports[take(&in, 1) % 16], 0, b, 1U << (take(&in, 1) % 3));
			break;
		case 4: {   /* guest memory: descriptors, rings, request headers */
			uint32_t off = take(&in, 3) % MEM_SIZE, len = take(&in, 1);

			if (len > in.n)
				len = (uint32_t)in.n;
			if (len > MEM_SIZE - off)
				len = MEM_SIZE - off;
			memcpy(vm->mem + off, in.p, len);
			in.p += len;
			in.n -= len;
			break;
		}
		case 5:
			if (dev < NDEV) {
				uint32_t d = take(&in, 3), a = take(&in, 3), u = take(&in, 3);

				unsigned q = take(&in, 1);

				queue_setup(dev, q % 2, d % MEM_SIZE, a % MEM_SIZE, u % MEM_SIZE, 1U << ((q >> 1) % 9));
			}
			break;
		case 6:
			if (dev < NDEV) {
				struct vmm_virtio *d = &vm->virtio[dev];
				unsigned q = take(&in, 1) % 2;
				uint16_t used = d->vq[q].used_idx, popped = d->vq[q].last_avail;
				int needs_reset = !!(d->status & 0x40);

				mmio32(base + 0x50, q);
				if ((uint16_t)(d->vq[q].used_idx - used) > (uint16_t)(d->vq[q].last_avail - popped))
					abort();   /* pushed more than it popped */
				if (needs_reset && d->vq[q].used_idx != used)
					abort();   /* a device that needs a reset served a request */
			}
			break;
		case 7: {   /* console input */
			uint8_t c[4];
			int irq;

			memcpy(c, &(uint32_t){ take(&in, 4) }, 4);
			vmm_uart_rx(&vm->uart, c, 1 + dev % 4, &irq);
			break;
		}
		case 8: {   /* a frame of any length arrives from the backend; the I/O thread serves it */
			struct vmm_virtio *d = &vm->virtio[NIC];
			uint16_t used = d->vq[0].used_idx, popped = d->vq[0].last_avail;
			uint32_t len = take(&in, 2) % 2100;
			uint8_t frame[2100];
			short ev;
			ssize_t w;

			memset(frame, 0, sizeof(frame));
			memcpy(frame, in.p, len < in.n ? len : in.n);
			w = write(peer, frame, len ? len : 1);
			(void)w;
			if (d->ops->poll(vm, d, &ev) >= 0)
				d->ops->ready(vm, d, ev);
			if ((uint16_t)(d->vq[0].used_idx - used) > (uint16_t)(d->vq[0].last_avail - popped))
				abort();
			break;
		}
		case 9: {   /* the backend drains (dev even) or the far end closes (dev odd: the link goes down) */
			struct vmm_virtio *d = &vm->virtio[NIC];
			uint8_t frame[2048];
			short ev;

			if (dev & 1) {
				close(peer);
				peer = -1;
			} else {
				while (read(peer, frame, sizeof(frame)) > 0)
					;
			}
			if (d->ops->poll(vm, d, &ev) >= 0)
				d->ops->ready(vm, d, dev & 1 ? POLLHUP : POLLOUT);
			break;
		}
		}
	}
	return 0;
}
