/* virtio-rng (entropy device) fed from the host's getrandom(): fresh bytes for every clone. */
#include <errno.h>
#include <sys/random.h>

#include "vmm/vmm_int.h"

static void fill(uint8_t *p, uint32_t len)
{
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (uint32_t)n;
	}
}

int vmm_virtio_rng_notify(struct vmm *vm, struct vmm_virtio *d, unsigned qi)
{
	struct vmm_vq *q = &d->vq[qi];
	struct vmm_vbuf b[VMM_CHAIN_MAX];
	int irq = 0;

	for (;;) {
		uint16_t head;
		unsigned n, i;
		uint32_t written = 0;
		int r = vmm_vq_pop(vm, q, &head, b, &n);

		if (r == 0)
			break;
		if (r < 0) {
			d->status |= 0x40;
			d->isr |= 2;
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (!b[i].write)
				continue;
			fill(b[i].p, b[i].len);
			written += b[i].len;
		}
		vmm_vq_push(vm, q, head, written);
		irq = 1;
	}
	if (irq)
		d->isr |= 1;
	return irq;
}
