/*
 * The device tables: the port devices every VM has, and every virtio device kind keel offers,
 * in the order a VM gets them (disks first, then the entropy source, then the NIC). Adding a kind is one file
 * (its vmm_virtio_ops or vmm_pio_ops) and one line here; the transport, placement, ACPI and
 * snapshots take it from there.
 */
#include <string.h>

#include "vmm/vmm_int.h"

extern const struct vmm_virtio_ops vmm_virtio_blk_ops, vmm_virtio_rng_ops, vmm_virtio_net_ops;
extern const struct vmm_pio_ops vmm_uart_ops, vmm_rtc_ops, vmm_acpi_sleep_ops, vmm_reset_ops, vmm_i8042_ops;

/* Port devices every VM has (the UART first: it is the busiest). */
const struct vmm_pio_ops *const vmm_pio_devs[] = {
	&vmm_uart_ops,
	&vmm_rtc_ops,
	&vmm_acpi_sleep_ops,
	&vmm_reset_ops,
	&vmm_i8042_ops,
	NULL,
};

const struct vmm_virtio_ops *const vmm_virtio_kinds[] = {
	&vmm_virtio_blk_ops,
	&vmm_virtio_rng_ops,
	&vmm_virtio_net_ops,
	NULL,
};

const struct vmm_virtio_ops *vmm_virtio_kind(uint32_t device_id)
{
	for (int i = 0; vmm_virtio_kinds[i]; i++)
		if (vmm_virtio_kinds[i]->device_id == device_id)
			return vmm_virtio_kinds[i];
	return NULL;
}

int vmm_virtio_init(struct vmm_virtio *d, const struct vmm_virtio_ops *ops, const struct vmm_config *cfg, int i,
		    char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->device_id = ops->device_id;
	d->nqueues = ops->nqueues;
	d->features = 1ULL << 32;   /* VIRTIO_F_VERSION_1; the kind adds its own */
	return ops->init ? ops->init(d, cfg, i, err, errlen) : 0;
}

void vmm_virtio_destroy(struct vmm_virtio *d)
{
	if (d->ops && d->ops->destroy)
		d->ops->destroy(d);
	d->ops = NULL;
}
