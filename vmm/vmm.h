/* vmm: keel's KVM microVM monitor — boot Linux guests, snapshot them, restore them. */
#ifndef KEEL_VMM_H
#define KEEL_VMM_H

#include <stddef.h>
#include <stdint.h>

struct snap_source;

/* KVM_GET_API_VERSION of /dev/kvm, or -errno when KVM is not usable. */
int vmm_kvm_api_version(void);

/* `keel vm run|restore ...` (vmm/cmd_vm.c). */
int vmm_cmd_vm(int argc, char **argv);

/* Wall time of each setup step of the last create/restore, in nanoseconds. */
struct vmm_timing {
	uint64_t vm_create;    /* KVM_CREATE_VM (+ TSS/identity map addresses) */
	uint64_t mem_slots;    /* mmap + KVM_SET_USER_MEMORY_REGION */
	uint64_t irqchip;      /* KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2 */
	uint64_t vcpus;        /* KVM_CREATE_VCPU + kvm_run mmap */
	uint64_t vcpu_state;   /* CPUID + registers (boot) or every vCPU blob (restore) */
	uint64_t vm_state;     /* irqchip, PIT and clock blob (restore) */
	uint64_t devices;      /* device blob (restore) */
	uint64_t manifest;     /* locate, read, verify and parse the manifest (restore) */
	uint64_t map;          /* mapping the memory chunks (restore) */
	uint64_t first_exit;   /* resume -> the first exit of vCPU 0 */
	uint64_t total;        /* the whole create/restore call until the first exit */
};

struct snap_disk;
struct vmm_disk {
	const char *path;            /* a host file; or, with object, the disk's name */
	int ro;
	struct snap_disk *object;    /* a manifest's ro disk read from its chunk objects (restore); NULL: path */
};

#define VMM_MAX_DISKS 4

struct vmm_config {
	uint64_t mem_bytes;          /* 32 MiB .. 3 GiB, multiple of 2 MiB */
	int vcpus;                   /* 1 .. CONFIG_VMM_MAX_VCPUS */
	const char *kernel;          /* bzImage or ELF (vmlinux, tiny test guests) */
	const char *initrd;          /* NULL: none */
	const char *cmdline;         /* NULL: none; virtio devices are appended */
	struct vmm_disk disks[VMM_MAX_DISKS];
	int ndisks;
	int rng;                     /* add a virtio-rng device */
	int nic;                     /* add a virtio-net device on net_fd (vmm/virtio_net.c) */
	int net_fd;                  /* one frame per read/write (SEQPACKET or TAP), dup'ed; -1: link down */
	uint8_t net_mac[6];
	int out_fd;                  /* console output (the UART's transmitter), -1: none */
	int in_fd;                   /* console input (the UART's receiver), -1: none */
	const char *snapshot_marker; /* pause and report VMM_EXIT_SNAPSHOT once seen on the console */
	const char *health_marker;   /* write "healthy\n" to ready_fd once seen */
	int ready_fd;                /* -1: none */
	int irqchip_first;           /* benchmarks only: the slow KVM setup order */
	/* One line (no newline) about something the guest did wrong, e.g. a malformed virtqueue;
	 * rate-limited per device. NULL: not reported. */
	void (*warn)(void *ctx, const char *line);
	void *warn_ctx;
	/* Called by each thread right before the guest runs on it (enum vmm_thread): a jailed
	 * VMM narrows that thread's seccomp filter here. Non-zero stops the VM. NULL: nothing. */
	int (*confine)(int thread);
};

enum vmm_thread {
	VMM_THREAD_VCPU,             /* a vCPU thread: KVM_RUN and the device work of its exits */
	VMM_THREAD_IO,               /* the main thread: console input, interrupts, watching */
};

/*
 * A NIC's backend for `keel vm`: "tap:NAME" (a TAP device, made if missing), "fd:N" (an open
 * descriptor with one frame per read and write, e.g. a SOCK_SEQPACKET socket) or "none" (*fd -1:
 * a NIC without link, e.g. for a snapshot PID 1 will link up). 0 or -errno (err).
 */
int vmm_nic_open(const char *spec, int *fd, char *err, size_t errlen);
/* The MAC of sandbox name on box (any stable text naming the appliance): locally administered. */
void vmm_nic_mac(const char *box, const char *name, uint8_t mac[6]);

/* Opens /dev/kvm once for this process, for VMs created after a jail has hidden /dev. */
int vmm_kvm_preopen(void);

struct vmm;

enum vmm_exit {
	VMM_EXIT_POWEROFF = 0,       /* the guest powered off */
	VMM_EXIT_RESET = 1,          /* triple fault, 0xcf9 or i8042 reset: reboot or crash */
	VMM_EXIT_SNAPSHOT = 2,       /* the snapshot marker appeared; every vCPU is paused */
};

/* Creates the VM and loads cfg->kernel; on failure err holds one line. 0 or -errno. */
int vmm_create(const struct vmm_config *cfg, struct vmm **out, char *err, size_t errlen);
/* Runs every vCPU until an exit; returns enum vmm_exit or -errno (vmm_error() says why). */
int vmm_run(struct vmm *vm);
const char *vmm_error(const struct vmm *vm);
void vmm_destroy(struct vmm *vm);
/* Host pointer to guest-physical [gpa, gpa+len), NULL when outside RAM. */
void *vmm_mem(struct vmm *vm, uint64_t gpa, uint64_t len);
uint64_t vmm_mem_size(const struct vmm *vm);
int vmm_vcpu_count(const struct vmm *vm);
const struct vmm_timing *vmm_timings(const struct vmm *vm);

/*
 * A sandbox's whole life, for PID 1 and `keel vm restore` alike: restores NAME (a ref or a
 * manifest id) from src (an open directory store or partition image, which the caller may
 * close once this returns), runs it until it stops, frees it. 0 when the guest powered off; otherwise -errno and err holds one line
 * (a snapshot that does not restore, a reset, a crash). timing (may be NULL) gets the setup
 * steps' times. Prints nothing (cfg->warn and the console descriptors are the caller's).
 */
int vmm_restore_run(const struct snap_source *src, const char *name, const struct vmm_config *cfg,
		    struct vmm_timing *timing, char *err, size_t errlen);

/*
 * State blobs of a paused VM (format: vmm/vmstate.c). Each is self-describing and
 * checked strictly on load; a load error fills err with one line and returns -EINVAL.
 */
int vmm_save_vcpu(struct vmm *vm, int index, uint8_t **blob, size_t *len);
int vmm_load_vcpu(struct vmm *vm, int index, const uint8_t *blob, size_t len, char *err, size_t errlen);
int vmm_save_vm(struct vmm *vm, uint8_t **blob, size_t *len);
int vmm_load_vm(struct vmm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen);
int vmm_save_devices(struct vmm *vm, uint8_t **blob, size_t *len);
int vmm_load_devices(struct vmm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen);

#endif
