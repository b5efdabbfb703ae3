/*
 * The snapshot state container (vmm/vmstate.c): what a snapshot written by one keel must mean to
 * the next. Self-contained: change a layout here and the _Static_asserts below fail until the
 * version that names it is raised.
 *
 * Every blob: magic (8 bytes), u32 version, u32 section count, then sections of u32 tag, u32
 * length, length bytes; little-endian; nothing after the last section. Each version requires every
 * section of its kind exactly once, in tag order, each with its exact size.
 *
 *   "KEELVCPU" version 2: one vCPU (KVM's x86-64 UAPI structs, fixed ABI; 2: the TSC frequency)
 *   "KEELVMST" version 2: irqchips, PIT, clock
 *   "KEELDEVS" version 3: the UART, then the virtio devices in bus order; each device is its
 *              transport state (struct vmstate_virtio) followed by u32 length and the state its
 *              kind writes itself (length = the kind's state_size). Version 2 (before the device
 *              model) kept virtio-blk's capacity in the transport's record; it is refused by name.
 */
#ifndef KEEL_VMSTATE_ABI_H
#define KEEL_VMSTATE_ABI_H

#include <stddef.h>
#include <stdint.h>

#define VMSTATE_MAGIC_VCPU "KEELVCPU"
#define VMSTATE_MAGIC_VM "KEELVMST"
#define VMSTATE_MAGIC_DEVS "KEELDEVS"
#define VMSTATE_VCPU_VERSION 2
#define VMSTATE_VM_VERSION 2
#define VMSTATE_DEVS_VERSION 3

enum { V_CPUID = 1, V_REGS, V_SREGS, V_XSAVE, V_XCRS, V_DEBUGREGS, V_LAPIC, V_MSRS, V_EVENTS, V_MPSTATE, V_TSC_KHZ, V_END };
enum { M_PIC0 = 1, M_PIC1, M_IOAPIC, M_PIT, M_CLOCK, M_END };
enum { D_UART = 1, D_VIRTIO, D_END };

struct vmstate_uart {
	uint8_t ier, iir_thre, lcr, mcr, msr, scr, dll, dlm, fcr, rx_head, rx_len, pad[5];
	uint8_t rx[64];
};

#define VMSTATE_VQ_MAX 2

struct vmstate_vq {
	uint32_t num, ready;
	uint64_t desc, avail, used;
	uint16_t last_avail, used_idx;
	uint32_t pad;
};

/* One virtio-mmio device's transport; its kind's own state follows (u32 length, bytes). */
struct vmstate_virtio {
	uint32_t device_id, nqueues;
	uint64_t features, driver_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel, status, isr, cfg_gen;
	struct vmstate_vq vq[VMSTATE_VQ_MAX];
};

/* virtio-blk's own state: the disk the guest saw (the same file must be reattached). */
struct vmstate_blk {
	uint64_t capacity;                   /* 512-byte sectors */
	uint32_t ro, pad;
};

/* virtio-net's own state: the MAC its driver read, the link status it last saw. */
struct vmstate_net {
	uint8_t mac[6];
	uint16_t status;
};

_Static_assert(sizeof(struct vmstate_uart) == 80, "KEELDEVS uart section layout");
_Static_assert(sizeof(struct vmstate_vq) == 40 && offsetof(struct vmstate_vq, last_avail) == 32,
	       "KEELDEVS virtqueue layout");
_Static_assert(sizeof(struct vmstate_virtio) == 128 && offsetof(struct vmstate_virtio, vq) == 48,
	       "KEELDEVS virtio transport layout");
_Static_assert(sizeof(struct vmstate_blk) == 16, "KEELDEVS virtio-blk layout");
_Static_assert(sizeof(struct vmstate_net) == 8, "KEELDEVS virtio-net layout");

#endif
