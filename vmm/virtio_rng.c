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

static int rng_chain(struct vmm_virtio *d, unsigned q, struct vmm_vbuf *b, unsigned n, uint32_t *written,
		     const char **why)
{
	unsigned i;

	(void)d;
	(void)q;
	(void)why;
	for (i = 0; i < n; i++) {
		if (!b[i].write)
			continue;
		fill(b[i].p, b[i].len);
		*written += b[i].len;
	}
	return 0;
}

static int rng_count(const struct vmm_config *cfg)
{
	return cfg->rng ? 1 : 0;
}

const struct vmm_virtio_ops vmm_virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VMM_VIRTIO_RNG,
	.nqueues = 1,
	.count = rng_count,
	.chain = rng_chain,
};
