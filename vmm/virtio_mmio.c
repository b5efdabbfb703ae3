/*
 * virtio-mmio version 2 (virtio 1.x "modern" register layout) and split virtqueues.
 * The guest owns the rings: every index and address read from them is bounds-checked, and
 * a malformed ring marks the device DEVICE_NEEDS_RESET instead of being trusted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/vmm_int.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_VENDOR_ID 0x00c
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_DRIVER_LO 0x090
#define R_QUEUE_DRIVER_HI 0x094
#define R_QUEUE_DEVICE_LO 0x0a0
#define R_QUEUE_DEVICE_HI 0x0a4
#define R_CONFIG_GEN 0x0fc
#define R_CONFIG 0x100

#define STATUS_NEEDS_RESET 0x40
#define VMM_FAULTS_LOGGED 4
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static void reset(struct vmm_virtio *d)
{
	d->driver_features = 0;
	d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
	d->status = 0;
	d->isr = 0;
	memset(d->vq, 0, sizeof(d->vq));
	if (d->ops->reset)
		d->ops->reset(d);
}

int vmm_virtio_mmio_read(struct vmm *vm, struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len)
{
	struct vmm_vq *q = d->queue_sel < d->nqueues ? &d->vq[d->queue_sel] : NULL;
	uint32_t v = 0;

	(void)vm;
	if (off >= R_CONFIG) {
		memset(data, 0, len);
		if (d->ops->config)
			d->ops->config(d, off - R_CONFIG, data, len);
		return 0;
	}
	switch (off) {
	case R_MAGIC: v = 0x74726976; break;            /* "virt" */
	case R_VERSION: v = 2; break;
	case R_DEVICE_ID: v = d->device_id; break;
	case R_VENDOR_ID: v = 0x4c45454b; break;        /* "KEEL" */
	case R_DEV_FEATURES:
		v = d->dev_feat_sel == 0 ? (uint32_t)d->features :
		    d->dev_feat_sel == 1 ? (uint32_t)(d->features >> 32) : 0;
		break;
	case R_QUEUE_NUM_MAX: v = q ? VMM_VQ_SIZE : 0; break;
	case R_QUEUE_READY: v = q ? q->ready : 0; break;
	case R_INT_STATUS: v = d->isr; break;
	case R_STATUS: v = d->status; break;
	case R_CONFIG_GEN: v = d->cfg_gen; break;
	default: v = 0; break;
	}
	memset(data, 0, len);
	memcpy(data, &v, len < 4 ? len : 4);
	return 0;
}

int vmm_virtio_mmio_write(struct vmm *vm, struct vmm_virtio *d, uint64_t off, const uint8_t *data, unsigned len)
{
	struct vmm_vq *q = d->queue_sel < d->nqueues ? &d->vq[d->queue_sel] : NULL;
	uint32_t v;

	if (len != 4 || off >= R_CONFIG)
		return 0;   /* our config spaces are read-only */
	v = get32(data);
	switch (off) {
	case R_DEV_FEATURES_SEL: d->dev_feat_sel = v; break;
	case R_DRV_FEATURES:
		if (d->drv_feat_sel == 0)
			d->driver_features = (d->driver_features & ~0xffffffffULL) | (v & (uint32_t)d->features);
		else if (d->drv_feat_sel == 1)
			d->driver_features = (d->driver_features & 0xffffffffULL) |
					     ((uint64_t)(v & (uint32_t)(d->features >> 32)) << 32);
		break;
	case R_DRV_FEATURES_SEL: d->drv_feat_sel = v; break;
	case R_QUEUE_SEL: d->queue_sel = v; break;
	case R_QUEUE_NUM:
		if (q && v && v <= VMM_VQ_SIZE && !(v & (v - 1)))
			q->num = v;
		break;
	case R_QUEUE_READY:
		if (q)
			q->ready = v & 1;
		break;
	case R_QUEUE_NOTIFY:
		if (v >= d->nqueues || !d->vq[v].ready || (d->status & STATUS_NEEDS_RESET))
			return 0;
		return d->ops->notify ? d->ops->notify(vm, d, v) : vmm_virtio_serve(vm, d, v);
	case R_INT_ACK: d->isr &= ~v; break;
	case R_STATUS:
		if (v == 0)
			reset(d);
		else   /* DEVICE_NEEDS_RESET stays until the driver resets */
			d->status = (v & 0xff) | (d->status & STATUS_NEEDS_RESET);
		break;
	case R_QUEUE_DESC_LO: if (q) q->desc.a = (q->desc.a & ~0xffffffffULL) | v; break;
	case R_QUEUE_DESC_HI: if (q) q->desc.a = (q->desc.a & 0xffffffffULL) | (uint64_t)v << 32; break;
	case R_QUEUE_DRIVER_LO: if (q) q->avail.a = (q->avail.a & ~0xffffffffULL) | v; break;
	case R_QUEUE_DRIVER_HI: if (q) q->avail.a = (q->avail.a & 0xffffffffULL) | (uint64_t)v << 32; break;
	case R_QUEUE_DEVICE_LO: if (q) q->used.a = (q->used.a & ~0xffffffffULL) | v; break;
	case R_QUEUE_DEVICE_HI: if (q) q->used.a = (q->used.a & 0xffffffffULL) | (uint64_t)v << 32; break;
	default: break;
	}
	return 0;
}

int vmm_virtio_fault(struct vmm *vm, struct vmm_virtio *d, unsigned q, const char *why)
{
	d->status |= STATUS_NEEDS_RESET;
	d->isr |= 2;   /* configuration change: the driver reads the status and resets */
	d->cfg_gen++;
	if (vm->warn && d->faults < VMM_FAULTS_LOGGED) {
		char line[200];

		snprintf(line, sizeof(line), "%s@0x%llx queue %u: %s; device needs reset%s", d->ops->name,
			 (unsigned long long)d->base, q, why,
			 d->faults + 1 == VMM_FAULTS_LOGGED ? " (further faults of this device not logged)" : "");
		vm->warn(vm->warn_ctx, line);
	}
	d->faults++;
	return 1;
}

/* Ring placement the virtio 1.x split ring requires; misaligned rings are refused, not trusted. */
static int ring_ok(const struct vmm_vq *q)
{
	return q->num && !(q->desc.a & 15) && !(q->avail.a & 1) && !(q->used.a & 3);
}

#define REFUSE(msg) do { *why = (msg); return -EINVAL; } while (0)

int vmm_vq_pop(struct vmm *vm, struct vmm_vq *q, uint16_t *head, struct vmm_vbuf *bufs, unsigned *n,
	       const char **why)
{
	const uint8_t *avail, *desc;
	uint16_t idx, i;
	unsigned k = 0, max = q->num < VMM_CHAIN_MAX ? q->num : VMM_CHAIN_MAX;

	if (!ring_ok(q))
		REFUSE("queue not set up or misaligned");
	avail = vmm_gmem(vm, q->avail, 4 + 2ULL * q->num);
	desc = vmm_gmem(vm, q->desc, 16ULL * q->num);
	if (!avail || !desc)
		REFUSE("ring outside guest RAM");
	idx = __atomic_load_n((const uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->num)
		REFUSE("available index runs past the ring");
	i = rd16(avail + 4 + 2 * (q->last_avail % q->num));
	*head = i;
	for (;;) {
		uint8_t dd[16];
		uint64_t addr;
		uint32_t len;
		uint16_t flags;

		if (i >= q->num)
			REFUSE("descriptor index past the queue");
		if (k >= max)
			REFUSE("descriptor chain longer than the queue");
		/* one copy: the guest may rewrite the table while we look at it */
		memcpy(dd, desc + 16 * i, 16);
		memcpy(&addr, dd, 8);
		len = get32(dd + 8);
		flags = rd16(dd + 12);
		if (len == 0)
			REFUSE("zero-length descriptor");
		bufs[k].p = vmm_gmem(vm, vmm_gpa(addr), len);
		if (!bufs[k].p)
			REFUSE("descriptor outside guest RAM");
		bufs[k].len = len;
		bufs[k].write = !!(flags & DESC_F_WRITE);
		k++;
		if (!(flags & DESC_F_NEXT))
			break;
		i = rd16(dd + 14);
	}
	q->last_avail++;
	*n = k;
	return 1;
}

int vmm_vq_push(struct vmm *vm, struct vmm_vq *q, uint16_t head, uint32_t written)
{
	uint8_t *used = ring_ok(q) ? vmm_gmem(vm, q->used, 4 + 8ULL * q->num) : NULL;
	uint8_t *e;
	uint32_t id = head;

	if (!used)
		return -EINVAL;
	e = used + 4 + 8 * (q->used_idx % q->num);
	memcpy(e, &id, 4);
	memcpy(e + 4, &written, 4);
	q->used_idx++;
	__atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
	return 0;
}

int vmm_virtio_serve(struct vmm *vm, struct vmm_virtio *d, unsigned qi)
{
	struct vmm_vq *q = &d->vq[qi];
	struct vmm_vbuf b[VMM_CHAIN_MAX];
	int irq = 0;

	for (;;) {
		const char *why = NULL;
		uint16_t head;
		unsigned n;
		uint32_t written = 0;
		int r = vmm_vq_pop(vm, q, &head, b, &n, &why);

		if (r == 0)
			break;
		if (r < 0 || d->ops->chain(d, qi, b, n, &written, &why) < 0 || vmm_vq_push(vm, q, head, written) < 0)
			return vmm_virtio_fault(vm, d, qi, why ? why : "used ring outside guest RAM");
		irq = 1;
	}
	if (irq)
		d->isr |= 1;
	return irq;
}

/* ---- snapshots: the transport's part of a device's state (vmstate_abi.h) ---- */

void vmm_virtio_save(const struct vmm_virtio *d, struct vmstate_virtio *t)
{
	memset(t, 0, sizeof(*t));
	t->device_id = d->device_id;
	t->nqueues = d->nqueues;
	t->features = d->features;
	t->driver_features = d->driver_features;
	t->dev_feat_sel = d->dev_feat_sel;
	t->drv_feat_sel = d->drv_feat_sel;
	t->queue_sel = d->queue_sel;
	t->status = d->status;
	t->isr = d->isr;
	t->cfg_gen = d->cfg_gen;
	for (int q = 0; q < VMM_VQ_MAX; q++) {
		t->vq[q].num = d->vq[q].num;
		t->vq[q].ready = d->vq[q].ready;
		t->vq[q].desc = d->vq[q].desc.a;
		t->vq[q].avail = d->vq[q].avail.a;
		t->vq[q].used = d->vq[q].used.a;
		t->vq[q].last_avail = d->vq[q].last_avail;
		t->vq[q].used_idx = d->vq[q].used_idx;
	}
}

const char *vmm_virtio_check(const struct vmstate_virtio *t, const struct vmm_virtio_ops *kind)
{
	if (t->nqueues != kind->nqueues || t->status > 0xff)
		return "transport state out of range";
	for (unsigned q = 0; q < VMM_VQ_MAX; q++) {
		uint32_t num = t->vq[q].num;
		if (num > VMM_VQ_SIZE || (num & (num - 1)) || t->vq[q].ready > 1 ||
		    (q >= t->nqueues && (num || t->vq[q].ready)))
			return "queue out of range";
	}
	return NULL;
}

void vmm_virtio_restore(struct vmm_virtio *d, const struct vmstate_virtio *t)
{
	/* features as this keel offers them (init), never more than that */
	d->driver_features = t->driver_features & d->features;
	d->dev_feat_sel = t->dev_feat_sel;
	d->drv_feat_sel = t->drv_feat_sel;
	d->queue_sel = t->queue_sel;
	d->status = t->status;
	d->isr = t->isr;
	d->cfg_gen = t->cfg_gen;
	for (int q = 0; q < VMM_VQ_MAX; q++) {
		d->vq[q].num = t->vq[q].num;
		d->vq[q].ready = t->vq[q].ready;
		d->vq[q].desc = vmm_gpa(t->vq[q].desc);
		d->vq[q].avail = vmm_gpa(t->vq[q].avail);
		d->vq[q].used = vmm_gpa(t->vq[q].used);
		d->vq[q].last_avail = t->vq[q].last_avail;
		d->vq[q].used_idx = t->vq[q].used_idx;
	}
}
