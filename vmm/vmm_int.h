/* vmm internals shared by the files of vmm/: callers outside vmm/ need only vmm/vmm.h. */
#ifndef KEEL_VMM_INT_H
#define KEEL_VMM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "keel_config.h"
#include "snap/snap.h"
#include "vmm/vmm.h"
#include "vmm/vmstate_abi.h"

/*
 * Guest physical layout (identical for boot and restore, so snapshots carry no layout):
 *   0x00500  GDT                      0x07000  zero page (boot_params)
 *   0x09000  PML4, 0x0a000 PDPT, 0x0b000..0x0efff four PDs (2 MiB pages, identity 0..4 GiB)
 *   0x20000  kernel command line      0x9fc00  MP table (EBDA, outside e820 RAM)
 *   0xe0000  ACPI tables (RSDP first) 0xf0000  VM generation ID (16 bytes); e820 reserved to 1 MiB
 *   0x100000 tiny guests' load address; 0x1000000 Linux kernel; initrd at the top of RAM
 *   0xd0000000 virtio-mmio windows (4 KiB each), IRQ 5 upwards
 */
#define VMM_GDT_ADDR 0x500ULL
#define VMM_ZERO_PAGE 0x7000ULL
#define VMM_PML4 0x9000ULL
#define VMM_PDPT 0xa000ULL
#define VMM_PD 0xb000ULL
#define VMM_CMDLINE 0x20000ULL
#define VMM_CMDLINE_MAX 4096
#define VMM_EBDA 0x9fc00ULL
#define VMM_HIMEM 0x100000ULL
#define VMM_KERNEL_ADDR 0x1000000ULL
#define VMM_MMIO_BASE 0xd0000000ULL
#define VMM_MMIO_SIZE 0x1000ULL
#define VMM_MMIO_IRQ0 5
#define VMM_MAX_MEM (3072ULL << 20)
#define VMM_MIN_MEM (32ULL << 20)
#define VMM_MAX_VIRTIO 8
#define VMM_UART_PORT 0x3f8
#define VMM_UART_IRQ 4
#define VMM_ACPI_BASE 0xe0000ULL
#define VMM_ACPI_SIZE 0x20000ULL
#define VMM_VMGENID_ADDR 0xf0000ULL
/* Above the ISA range, so no 8259 input ever sees it. */
#define VMM_GED_IRQ 16
/* Hardware-reduced ACPI registers: sleep control/status (S5 = power off) and reset. */
#define VMM_ACPI_SLEEP_CTL 0x600
#define VMM_ACPI_SLEEP_STS 0x601
#define VMM_ACPI_SLP_EN 0x20
#define VMM_ACPI_S5 5
#define VMM_RESET_PORT 0xcf9
#define VMM_RESET_VALUE 0x06

/*
 * A guest-physical address. A struct, not an integer, so that no host pointer arithmetic can
 * take one by mistake: the only way from a vmm_gpa_t to memory is vmm_gmem().
 */
typedef struct {
	uint64_t a;
} vmm_gpa_t;

static inline vmm_gpa_t vmm_gpa(uint64_t a)
{
	return (vmm_gpa_t){ a };
}

/*
 * The one way into guest memory: the host address of [gpa, gpa+len), or NULL when len is 0,
 * when the span wraps the address space, or when it does not lie wholly inside one memory slot
 * (today one slot: RAM at [0, mem_size), below the MMIO windows). Callers touch at most len
 * bytes from the pointer; a guest-chosen span is translated once and never re-derived.
 */
void *vmm_gmem(struct vmm *vm, vmm_gpa_t gpa, uint64_t len);
_Static_assert(VMM_MAX_MEM <= VMM_MMIO_BASE, "RAM must end below the MMIO windows");

uint64_t vmm_now_ns(void);

/*
 * ---- port I/O devices: one ops table each, listed once in vmm_pio_devs[] (devices.c) ----
 * io handles an access of size bytes at off (port - port base): out writes data, in fills it.
 * Called with vm->lock held; returns 1 when the device's irq must be pulsed (after the lock).
 */
struct vmm_pio_ops {
	const char *name;
	uint16_t port, nports;
	uint32_t irq;                        /* pulsed when io returns 1 (0: none) */
	int byte_wide;                       /* 8-bit registers: wider accesses hit an open bus */
	int (*io)(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size);
};
extern const struct vmm_pio_ops *const vmm_pio_devs[];   /* NULL-terminated (devices.c) */

/* ---- 16550 UART (dev_uart.c) ---- */
struct vmm_uart {
	uint8_t ier, iir_thre, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
	uint8_t rx[64];
	uint8_t rx_head, rx_len;
};
void vmm_uart_reset(struct vmm_uart *u);
/* Port access at offset 0..7; returns 1 when the IRQ line must be pulsed. */
int vmm_uart_out(struct vmm *vm, struct vmm_uart *u, unsigned off, uint8_t v);
int vmm_uart_in(struct vmm_uart *u, unsigned off, uint8_t *v);
/* Host input; returns how many bytes were taken and whether to pulse the IRQ. */
size_t vmm_uart_rx(struct vmm_uart *u, const uint8_t *buf, size_t len, int *irq);
void vmm_uart_save(const struct vmm_uart *u, struct vmstate_uart *s);
int vmm_uart_check(const struct vmstate_uart *s);   /* 0, or -EINVAL: out of range */
void vmm_uart_load(struct vmm_uart *u, const struct vmstate_uart *s);

/* ---- MC146818 CMOS RTC at 0x70/0x71 (dev_rtc.c) ---- */
#define VMM_RTC_PORT 0x70
struct vmm_rtc {
	uint8_t index, init;
	uint8_t ram[128];
};
void vmm_rtc_out(struct vmm_rtc *r, unsigned off, uint8_t v);
void vmm_rtc_in(struct vmm_rtc *r, unsigned off, uint8_t *v);

/* ---- virtio-mmio (virtio_mmio.c, virtio_blk.c, virtio_rng.c) ---- */
#define VMM_VQ_MAX VMSTATE_VQ_MAX
#define VMM_VQ_SIZE 256

enum { VMM_VIRTIO_NET = 1, VMM_VIRTIO_BLK = 2, VMM_VIRTIO_RNG = 4 };

struct vmm_vq {
	uint32_t num, ready;
	vmm_gpa_t desc, avail, used;
	uint16_t last_avail;
	uint16_t used_idx;
};

struct vmm_virtio;
struct vmm_vbuf;
/*
 * A device's handler for one chain: 0 when served (*written: bytes the device wrote into the
 * chain), -1 when the chain cannot be completed at all (*why set; nothing may have been written).
 */
typedef int vmm_chain_fn(struct vmm_virtio *d, unsigned q, struct vmm_vbuf *b, unsigned n, uint32_t *written,
			 const char **why);

#define VMM_DEV_PRIV 288   /* room for a device kind's own state (each kind asserts it fits) */

/*
 * One kind of virtio device: what only it knows. The transport (virtio_mmio.c) owns the
 * registers, feature negotiation, queue setup, the ISR, DEVICE_NEEDS_RESET and the pop / serve /
 * push loop; a kind serves chains, answers config reads and keeps its own state in d->priv.
 * Kinds are listed once, in vmm_virtio_kinds[] (devices.c).
 */
struct vmm_virtio_ops {
	const char *name;                    /* "virtio-blk": in faults and errors */
	uint32_t device_id;                  /* virtio device ID */
	unsigned nqueues;                    /* <= VMM_VQ_MAX */
	/* How many of this kind cfg asks for; then init makes the i-th (features, priv). */
	int (*count)(const struct vmm_config *cfg);
	int (*init)(struct vmm_virtio *d, const struct vmm_config *cfg, int i, char *err, size_t errlen);
	vmm_chain_fn *chain;                 /* serves one chain of queue q */
	void (*config)(const struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len);   /* NULL: none */
	void (*destroy)(struct vmm_virtio *d);    /* NULL: nothing held */
	void (*reset)(struct vmm_virtio *d);      /* the driver reset the device (NULL: nothing to forget) */
	/* A queue notification (NULL: vmm_virtio_serve through chain); 1 when the IRQ must be pulsed. */
	int (*notify)(struct vmm *vm, struct vmm_virtio *d, unsigned q);
	/*
	 * A backend the VMM's I/O thread watches (NULL: none): poll says which fd and events now
	 * (-1: nothing now), ready serves what poll found; 1 when the IRQ must be pulsed. Both run
	 * with vm->lock held; a vCPU that makes the device pollable again writes vm->event_fd.
	 */
	int (*poll)(struct vmm *vm, struct vmm_virtio *d, short *events);
	int (*ready)(struct vmm *vm, struct vmm_virtio *d, short revents);
	/*
	 * Snapshots (vmstate_abi.h): the kind's own bytes, state_size of them (0: none). save fills
	 * them; load checks a snapshot's against the device init made for it on restore (the same
	 * disk, ...) and applies them; -EINVAL with err on a mismatch.
	 */
	size_t state_size;
	void (*save)(const struct vmm_virtio *d, void *state);
	int (*load)(struct vmm_virtio *d, const void *state, char *err, size_t errlen);
};

extern const struct vmm_virtio_ops *const vmm_virtio_kinds[];   /* NULL-terminated (devices.c) */
extern const struct vmm_virtio_ops vmm_virtio_net_ops;
extern const struct vmm_virtio_ops vmm_virtio_blk_ops;
/* A disk device's backing: its host file's fd (-1: an object disk), path and read-only flag. */
void vmm_blk_backing(const struct vmm_virtio *d, int *fd, const char **path, int *ro);
const struct vmm_virtio_ops *vmm_virtio_kind(uint32_t device_id);

struct vmm_virtio {
	const struct vmm_virtio_ops *ops;
	uint32_t device_id;
	uint64_t base;
	uint32_t irq;
	uint64_t features;     /* offered */
	uint64_t driver_features;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel, status, isr, cfg_gen;
	uint32_t nqueues;
	struct vmm_vq vq[VMM_VQ_MAX];
	unsigned faults;       /* malformed rings seen (the first few are logged) */
	int irq_pending;       /* raise the IRQ from the I/O thread (set under vm->lock) */
	_Alignas(8) unsigned char priv[VMM_DEV_PRIV];   /* the kind's own state */
};
int vmm_virtio_mmio_read(struct vmm *vm, struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len);
/* Returns 1 when the device raised its interrupt. */
int vmm_virtio_mmio_write(struct vmm *vm, struct vmm_virtio *d, uint64_t off, const uint8_t *data, unsigned len);
/* Makes device d of kind ops (transport state zeroed, then ops->init). */
int vmm_virtio_init(struct vmm_virtio *d, const struct vmm_virtio_ops *ops, const struct vmm_config *cfg, int i,
		    char *err, size_t errlen);
void vmm_virtio_destroy(struct vmm_virtio *d);
/* Gives every virtio device its MMIO window and IRQ (vm.c): boot and restore alike. */
void vmm_place_devices(struct vmm *vm);
/* Snapshots: the transport's part of a device (its kind's part: ops->save / ops->load). */
void vmm_virtio_save(const struct vmm_virtio *d, struct vmstate_virtio *t);
const char *vmm_virtio_check(const struct vmstate_virtio *t, const struct vmm_virtio_ops *kind);   /* NULL: fine */
void vmm_virtio_restore(struct vmm_virtio *d, const struct vmstate_virtio *t);

/* One buffer of a descriptor chain: p is valid for exactly len (>= 1) bytes of guest RAM. */
struct vmm_vbuf {
	uint8_t *p;
	uint32_t len;
	int write;             /* device writes into it */
};
#define VMM_CHAIN_MAX 64
/*
 * Pops the next available chain of q: head id and up to min(queue size, VMM_CHAIN_MAX)
 * buffers, each translated once by vmm_gmem(). 1 when a chain was popped, 0 when the ring is
 * empty, -EINVAL on a malformed ring or chain (*why says what, for the log).
 */
int vmm_vq_pop(struct vmm *vm, struct vmm_vq *q, uint16_t *head, struct vmm_vbuf *bufs, unsigned *n,
	       const char **why);
int vmm_vq_push(struct vmm *vm, struct vmm_vq *q, uint16_t head, uint32_t written);
/*
 * The device cannot go on without trusting the guest: DEVICE_NEEDS_RESET, the config-change
 * interrupt (returns 1: pulse the IRQ), nothing written to guest memory; the first faults of
 * each device are reported through the VM's warn callback.
 */
int vmm_virtio_fault(struct vmm *vm, struct vmm_virtio *d, unsigned q, const char *why);
/* Serves every available chain of queue qi through d->ops->chain; 1 when the IRQ must be pulsed. */
int vmm_virtio_serve(struct vmm *vm, struct vmm_virtio *d, unsigned qi);

/* ---- the VM ---- */
struct vmm_vcpu {
	struct vmm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	int started;
	/* restore: the vCPU thread loads its own state blob before it waits at the gate */
	const uint8_t *load_blob;
	size_t load_len;
	int load_rc;
	char load_err[200];
};

/* Markers watched on the console: snapshot trigger, health, the kernel's power-down line. */
#define VMM_LINE_MAX 512

enum vmm_event { VMM_EV_NONE, VMM_EV_POWEROFF, VMM_EV_RESET, VMM_EV_ERROR, VMM_EV_SNAPSHOT };

struct vmm {
	int kvm_fd, vm_fd;
	uint8_t *mem;
	uint64_t mem_size;
	int nvcpus;
	struct vmm_vcpu vcpu[CONFIG_VMM_MAX_VCPUS];
	struct kvm_cpuid2 *cpuid;     /* as set on vCPU 0 (APIC ids patched per vCPU) */
	size_t run_size;
	size_t xsave_bytes;           /* KVM_CAP_XSAVE2 (at least struct kvm_xsave) */
	struct kvm_msr_list *msr_list;  /* the MSRs this host's KVM saves (cached) */
	/*
	 * Restore (restore.c): vCPU 0's thread sets KVM up while the main thread reads the
	 * snapshot; they meet through these fields, under lock. The vCPU threads then load their
	 * own state and wait at a gate that vmm_run opens.
	 */
	int setup_mem_ready;          /* main: mem, mem_size, nvcpus are final */
	int setup_blobs_ready;        /* main: every vcpu[i].load_blob is set */
	int setup_abort;              /* main failed: vCPU 0's thread stops setting up */
	const uint8_t *setup_vm_blob; /* main: the VM state vCPU 0's thread loads */
	size_t setup_vm_len;
	int setup_rc;                 /* vCPU 0's thread failed (message in setup_err) */
	char setup_err[200];
	int gated;                    /* vCPU threads exist and wait for vmm_run */
	int gate_open;
	int loaded;                   /* vCPU threads done loading their state */

	pthread_mutex_t lock;         /* devices, console, events */
	pthread_cond_t cond;
	struct vmm_uart uart;
	struct vmm_rtc rtc;
	struct vmm_virtio virtio[VMM_MAX_VIRTIO];
	int nvirtio;

	void (*warn)(void *ctx, const char *line);   /* from vmm_config, NULL: silent */
	void *warn_ctx;
	int (*confine)(int thread);  /* see struct vmm_config */
	int out_fd;                   /* console output */
	int in_fd;                    /* console input, -1: none */
	int announce_restored;        /* write "restored\n" to ready_fd on start */
	char line[VMM_LINE_MAX];
	size_t line_len;
	const char *snapshot_marker;  /* NULL: none */
	const char *health_marker;
	int ready_fd;                 /* -1: none */
	int healthy;

	int event_fd;                 /* wakes the main loop */
	volatile int event;           /* enum vmm_event, first one wins */
	char error[160];
	volatile int pause_req;
	volatile int stop_req;
	int paused;                   /* vCPUs parked */
	int running;                  /* vCPU threads alive */
	unsigned long exits;          /* exits served in user space (atomic): the halt check's hint */

	int irqchip_first;
	int pit_deferred;             /* restore: the PIT is created after the vCPUs start (kvm_x86_64.c) */
	struct kvm_pit_state2 pit_state;  /* restore: the PIT state to load once it exists */
	pthread_t pit_thread;
	int pit_thread_started;
	struct vmm_disk disks[VMM_MAX_DISKS];   /* restore: disks to reattach, in device order */
	struct snap_disk *obj_disks[VMM_MAX_DISKS];   /* restore: the manifest's ro disks, owned */
	char obj_names[VMM_MAX_DISKS][SNAP_DISK_NAME_MAX + 1];
	int ndisks;
	int net_fd;                   /* restore: the NIC's backend (-1: none; the link is then down) */
	uint8_t net_mac[6];
	char health_buf[260];
	uint64_t saved_clock, saved_realtime;   /* restore: from the VM blob */
	uint64_t t_start_ns;          /* restore call: total = first exit - this */
	uint64_t t_first_exit_ns;     /* first exit after resume (restore latency) */
	uint64_t t_resume_ns;
	struct vmm_timing timing;
};

/* kvm_x86_64.c */
int vmm_kvm_open(struct vmm *vm, uint64_t mem_size, int nvcpus, void *premapped);
/* vmm_kvm_open in two halves: the VM (and host facts), then its memory slot and irqchip. */
int vmm_kvm_create_vm(struct vmm *vm);
int vmm_kvm_memory(struct vmm *vm, uint64_t mem_size, int nvcpus, void *premapped);
/* The MSR index list, fetched once per VM (vmstate.c); NULL when KVM will not say. */
const struct kvm_msr_list *vmm_msr_list(struct vmm *vm);
/*
 * Restore: start the vCPU threads, each loading its load_blob, then waiting at a gate that
 * vmm_run opens; vmm_wait_loaded returns the first vCPU's load error (message in err).
 */
int vmm_start_gated(struct vmm *vm, int first);
/* Starts fn(arg) as vCPU i's thread (counted in running, joined by vmm_stop). */
int vmm_spawn_vcpu_thread(struct vmm *vm, int i, void *(*fn)(void *), void *arg);
/* A vCPU thread's life: load (restore), gate, run until stopped; then vmm_vcpu_thread_exit. */
void vmm_vcpu_thread(struct vmm_vcpu *c);
void vmm_vcpu_thread_exit(struct vmm *vm);
int vmm_wait_loaded(struct vmm *vm, char *err, size_t errlen);
int vmm_kvm_create_vcpus(struct vmm *vm);
/* Restore: creates the PIT and loads vm->pit_state on a thread of its own (off the resume path). */
int vmm_kvm_start_pit(struct vmm *vm);
void vmm_kvm_join_pit(struct vmm *vm);
int vmm_kvm_setup_cpuid(struct vmm *vm, struct vmm_vcpu *c);
/* What keel's CPUID policy hides from every guest: cleared at boot, refused in a snapshot. */
struct vmm_cpuid_hide {
	uint32_t leaf;
	int reg;               /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t mask;
	const char *what;
};
extern const struct vmm_cpuid_hide vmm_cpuid_hidden[];
extern const size_t vmm_cpuid_nhidden;
/* The first hidden feature entry e shows, or NULL. */
const struct vmm_cpuid_hide *vmm_cpuid_shows_hidden(const struct kvm_cpuid_entry2 *e);
int vmm_kvm_set_cpuid(struct vmm_vcpu *c, const struct kvm_cpuid2 *cpuid);
int vmm_kvm_set_lint(struct vmm_vcpu *c);
int vmm_kvm_longmode(struct vmm *vm, struct vmm_vcpu *c, uint64_t entry, uint64_t rsi);
void vmm_kvm_close(struct vmm *vm);
int vmm_irq_pulse(struct vmm *vm, unsigned irq);
/* Page tables and GDT in guest memory for the 64-bit entry. */
int vmm_boot_pagetables(struct vmm *vm);

/* boot_linux.c: load a bzImage or an ELF at their 64-bit entry. */
int vmm_boot_load(struct vmm *vm, const char *kernel, const char *initrd, const char *cmdline,
		  uint64_t *entry, char *err, size_t errlen);

/* 1 when the kernel command line turns ACPI off (the guest then cannot see the DSDT). */
int vmm_cmdline_acpi_off(const char *cmdline);

/* acpi.c: RSDP/XSDT/FADT/MADT/DSDT in the BIOS area, and a fresh VM generation ID. */
int vmm_acpi_write(struct vmm *vm);
/* A new random generation ID in guest memory (boot and every restore). */
int vmm_vmgenid_renew(struct vmm *vm);
/* Tells the guest the ID changed: the GED's interrupt (its _EVT notifies the VGEN device). */
int vmm_vmgenid_notify(struct vmm *vm);

/* mptable.c */
int vmm_mptable_write(struct vmm *vm);

/* vm_run.c */
/* The guest's port I/O and MMIO accesses (what KVM exits with), dispatched to the devices;
 * data holds size (len) bytes, at most 8 for MMIO. Fuzzed without KVM (fuzz_vmm_bus). */
void vmm_pio(struct vmm *vm, uint16_t port, int out, uint8_t *data, unsigned size);
void vmm_mmio(struct vmm *vm, uint64_t addr, int is_write, uint8_t *data, unsigned len);
int vmm_run_loop(struct vmm *vm);
void vmm_stop(struct vmm *vm);
/* Allocates and initialises an empty VM object (no KVM yet). */
struct vmm *vmm_alloc(void);
/* Adds the virtio devices of cfg (disks, rng); fills err on failure. */
int vmm_add_devices(struct vmm *vm, const struct vmm_config *cfg, char *err, size_t errlen);
int vmm_pause_all(struct vmm *vm);
void vmm_resume_all(struct vmm *vm);
void vmm_raise_event(struct vmm *vm, int ev, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with vm->lock held (a device's io). */
void vmm_event_locked(struct vmm *vm, int ev, const char *msg);
void vmm_console_out(struct vmm *vm, uint8_t c);

/*
 * vmstate.c: a vCPU state blob, parsed and validated with no KVM call (fuzzed: fuzz_vmstate),
 * then applied by vmm_load_vcpu. A blob whose CPUID shows a feature keel's CPUID policy hides
 * (vmm_cpuid_hidden: VMX, SVM, the PMU, ...) is refused, never filtered: a guest that already
 * used a feature cannot have it taken away under it.
 */
struct vmm_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	uint32_t tsc_khz;
	struct kvm_cpuid2 *cpuid;
	struct kvm_msrs *msrs;
	struct kvm_lapic_state *lapic;
	void *xsave;
};
int vmm_vcpu_state_parse(const uint8_t *blob, size_t len, size_t xsave_bytes, const struct kvm_msr_list *list,
			 struct vmm_vcpu_state *st, char *err, size_t errlen);
void vmm_vcpu_state_free(struct vmm_vcpu_state *st);
/* The VM blob (irqchips, PIT, clock), parsed and validated with no KVM call. */
struct vmm_vm_state {
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	uint64_t clock, realtime;
};
int vmm_vm_state_parse(const uint8_t *blob, size_t len, struct vmm_vm_state *st, char *err, size_t errlen);

/* A device blob parsed and validated, nothing applied (vmm_load_devices applies it). */
struct vmm_dev_state {
	struct vmstate_uart uart;
	uint32_t n;
	struct {
		const struct vmm_virtio_ops *kind;
		struct vmstate_virtio transport;
		const uint8_t *state;            /* kind->state_size bytes inside the blob */
	} dev[VMM_MAX_VIRTIO];
};
int vmm_dev_state_parse(const uint8_t *blob, size_t len, struct vmm_dev_state *st, char *err, size_t errlen);

/* vmstate.c: KVM_SET_CLOCK to the snapshot's clock plus the wall time since. */
int vmm_clock_resume(struct vmm *vm);

/* snapshot.c / restore.c */
struct vmm_snapshot_info {
	const char *kernel, *initrd, *cmdline, *name, *health_marker;
	unsigned cpu_quota;                  /* policy-cpu-quota; 0: 100 per vCPU */
};
int vmm_snapshot_write(struct vmm *vm, const char *store_dir, const struct vmm_snapshot_info *info,
		       char id_hex[65], char *err, size_t errlen);
int vmm_restore_open(const struct snap_source *src, const char *name, const struct vmm_config *cfg,
		     struct vmm **out, char *err, size_t errlen);

#endif
