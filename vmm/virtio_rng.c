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

static int rng_chain(struct vmm_virtio *d, struct vmm_vbuf *b, unsigned n, uint32_t *written, const char **why)
{
	unsigned i;

	(void)d;
	(void)why;
	for (i = 0; i < n; i++) {
		if (!b[i].write)
			continue;
		fill(b[i].p, b[i].len);
		*written += b[i].len;
	}
	return 0;
}

int vmm_virtio_rng_notify(struct vmm *vm, struct vmm_virtio *d, unsigned qi)
{
	return vmm_virtio_serve(vm, d, qi, rng_chain);
}
