/* The VM object: create and boot a guest, run it, tear it down. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

struct vmm *vmm_alloc(void)
{
	struct vmm *vm = calloc(1, sizeof(*vm));
	int i;

	if (!vm)
		return NULL;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->out_fd = vm->in_fd = vm->ready_fd = vm->net_fd = -1;
	for (i = 0; i < CONFIG_VMM_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vmm_uart_reset(&vm->uart);
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0) {
		free(vm);
		return NULL;
	}
	return vm;
}

void vmm_destroy(struct vmm *vm)
{
	int i;

	if (!vm)
		return;
	vmm_stop(vm);
	vmm_kvm_join_pit(vm);
	vmm_kvm_close(vm);
	for (i = 0; i < vm->nvirtio; i++)
		vmm_virtio_destroy(&vm->virtio[i]);
	for (i = 0; i < VMM_MAX_DISKS; i++)
		snap_disk_close(vm->obj_disks[i]);
	close(vm->event_fd);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	free(vm);
}

int vmm_add_devices(struct vmm *vm, const struct vmm_config *cfg, char *err, size_t errlen)
{
	int i, r;

	for (int k = 0; vmm_virtio_kinds[k]; k++) {
		int n = vmm_virtio_kinds[k]->count(cfg);

		for (i = 0; i < n; i++) {
			if (vm->nvirtio >= VMM_MAX_VIRTIO) {
				snprintf(err, errlen, "more than %d virtio devices", VMM_MAX_VIRTIO);
				return -E2BIG;
			}
			r = vmm_virtio_init(&vm->virtio[vm->nvirtio], vmm_virtio_kinds[k], cfg, i, err, errlen);
			if (r)
				return r;
			vm->nvirtio++;
		}
	}
	vmm_place_devices(vm);
	return 0;
}

/*
 * The bus: virtio device i gets the i-th 4 KiB MMIO window and IRQ 5 + i, on a fresh boot and on
 * restore alike (the snapshot keeps the order); the DSDT (acpi.c), the MP table and the
 * virtio_mmio.device= command line all describe what this placed.
 */
void vmm_place_devices(struct vmm *vm)
{
	for (int i = 0; i < vm->nvirtio; i++) {
		vm->virtio[i].base = VMM_MMIO_BASE + (uint64_t)i * VMM_MMIO_SIZE;
		vm->virtio[i].irq = VMM_MMIO_IRQ0 + (uint32_t)i;
	}
}

/*
 * The user's command line; a guest told acpi=off cannot see the DSDT, so it gets one
 * virtio_mmio.device= per device instead (kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
 * Never both: a kernel that honours both would register every device twice.
 */
static int build_cmdline(struct vmm *vm, const char *user, char *out, size_t outlen)
{
	size_t n;
	int i;

	n = (size_t)snprintf(out, outlen, "%s", user ? user : "");
	if (!vmm_cmdline_acpi_off(user))
		return n < outlen ? 0 : -E2BIG;
	for (i = 0; i < vm->nvirtio && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%svirtio_mmio.device=4K@0x%llx:%u", n ? " " : "",
				      (unsigned long long)vm->virtio[i].base, vm->virtio[i].irq);
	return n < outlen ? 0 : -E2BIG;
}

/*
 * Fresh guest RAM, 2 MiB aligned and marked for transparent huge pages. KVM maps a guest 2 MiB
 * frame with one large page only when the host backs it with a huge page at the same offset
 * within 2 MiB; an mmap at an arbitrary 4 KiB boundary breaks that for every frame, so the guest
 * ran on 4 KiB mappings only (far more nested page walks and faults). QEMU aligns RAM likewise.
 */
static void *alloc_guest_ram(uint64_t size)
{
	const uint64_t huge = 2ULL << 20;
	uint8_t *p = mmap(NULL, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	uint64_t head;

	if (p == MAP_FAILED)
		return NULL;
	head = (huge - ((uintptr_t)p & (huge - 1))) & (huge - 1);
	if (head)
		munmap(p, head);
	if (huge - head)
		munmap(p + head + size, huge - head);
	p += head;
	madvise(p, size, MADV_HUGEPAGE);   /* advice only: THP may be off on this host */
	return p;
}

int vmm_create(const struct vmm_config *cfg, struct vmm **out, char *err, size_t errlen)
{
	uint64_t t_start = vmm_now_ns(), t0, entry = 0;
	char cmdline[VMM_CMDLINE_MAX];
	struct vmm *vm;
	void *ram;
	int i, r;

	*out = NULL;
	if (cfg->mem_bytes < VMM_MIN_MEM || cfg->mem_bytes > VMM_MAX_MEM || cfg->mem_bytes % (2ULL << 20)) {
		snprintf(err, errlen, "guest memory must be 32..3072 MiB in steps of 2 MiB");
		return -EINVAL;
	}
	if (cfg->vcpus < 1 || cfg->vcpus > CONFIG_VMM_MAX_VCPUS) {
		snprintf(err, errlen, "vCPUs must be 1..%d", CONFIG_VMM_MAX_VCPUS);
		return -EINVAL;
	}
	if (cfg->ndisks < 0 || cfg->ndisks > VMM_MAX_DISKS) {
		snprintf(err, errlen, "at most %d disks", VMM_MAX_DISKS);
		return -EINVAL;
	}
	vm = vmm_alloc();
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->out_fd = cfg->out_fd;
	vm->warn = cfg->warn;
	vm->warn_ctx = cfg->warn_ctx;
	vm->in_fd = cfg->in_fd;
	vm->ready_fd = cfg->ready_fd;
	vm->snapshot_marker = cfg->snapshot_marker;
	vm->health_marker = cfg->health_marker;
	vm->irqchip_first = cfg->irqchip_first;

	ram = alloc_guest_ram(cfg->mem_bytes);
	if (!ram) {
		snprintf(err, errlen, "cannot map %llu MiB of guest memory", (unsigned long long)(cfg->mem_bytes >> 20));
		r = -ENOMEM;
		goto fail;
	}
	r = vmm_kvm_open(vm, cfg->mem_bytes, cfg->vcpus, ram);
	if (!vm->mem)                      /* failed before taking it: vmm_kvm_close will not unmap it */
		munmap(ram, cfg->mem_bytes);
	if (r) {
		snprintf(err, errlen, "KVM setup: %s", strerror(-r));
		goto fail;
	}
	r = vmm_kvm_create_vcpus(vm);
	if (r) {
		snprintf(err, errlen, "creating vCPUs: %s", strerror(-r));
		goto fail;
	}
	r = vmm_add_devices(vm, cfg, err, errlen);
	if (r)
		goto fail;
	r = build_cmdline(vm, cfg->cmdline, cmdline, sizeof(cmdline));
	if (r) {
		snprintf(err, errlen, "command line too long");
		goto fail;
	}
	r = vmm_boot_pagetables(vm);
	if (r) {
		snprintf(err, errlen, "no room for the boot page tables");
		goto fail;
	}
	if (cfg->kernel) {
		r = vmm_boot_load(vm, cfg->kernel, cfg->initrd, cmdline, &entry, err, errlen);
		if (r)
			goto fail;
	}
	r = vmm_mptable_write(vm);
	if (r) {
		snprintf(err, errlen, "MP table: %s", strerror(-r));
		goto fail;
	}
	r = vmm_acpi_write(vm);
	if (r) {
		snprintf(err, errlen, "ACPI tables: %s", strerror(-r));
		goto fail;
	}
	t0 = vmm_now_ns();
	for (i = 0; i < vm->nvcpus; i++) {
		r = vmm_kvm_setup_cpuid(vm, &vm->vcpu[i]);
		if (!r)
			r = vmm_kvm_set_lint(&vm->vcpu[i]);
		if (!r && i == 0)
			r = vmm_kvm_longmode(vm, &vm->vcpu[0], entry, VMM_ZERO_PAGE);
		if (r) {
			snprintf(err, errlen, "vCPU %d setup: %s", i, strerror(-r));
			goto fail;
		}
	}
	vm->timing.vcpu_state = vmm_now_ns() - t0;
	vm->timing.total = vmm_now_ns() - t_start;
	*out = vm;
	return 0;
fail:
	vmm_destroy(vm);
	return r;
}

int vmm_cmdline_acpi_off(const char *cmdline)
{
	const char *p = cmdline;
	size_t n = strlen("acpi=off");

	while (p && (p = strstr(p, "acpi=off")) != NULL) {
		if ((p == cmdline || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

int vmm_run(struct vmm *vm)
{
	int r;

	/*
	 * "restored" goes out before the vCPU threads start, not after: a guest that prints its
	 * health marker at once must not have "healthy" reach the ready fd first.
	 */
	if (vm->announce_restored && vm->ready_fd >= 0 && (!vm->vcpu[0].started || vm->gated) &&
	    write(vm->ready_fd, "restored\n", 9) < 0) {
		/* init notices the missing line (or the closed pipe) itself */
	}
	vm->announce_restored = 0;
	r = vmm_run_loop(vm);

	if (vm->t_first_exit_ns && vm->t_resume_ns && !vm->timing.first_exit) {
		vm->timing.first_exit = vm->t_first_exit_ns - vm->t_resume_ns;
		if (vm->t_start_ns)
			vm->timing.total = vm->t_first_exit_ns - vm->t_start_ns;
	}
	return r;
}

const char *vmm_error(const struct vmm *vm)
{
	return vm->error[0] ? vm->error : "unknown error";
}

void *vmm_mem(struct vmm *vm, uint64_t gpa, uint64_t len)
{
	return vmm_gmem(vm, vmm_gpa(gpa), len);
}

uint64_t vmm_mem_size(const struct vmm *vm)
{
	return vm->mem_size;
}

int vmm_vcpu_count(const struct vmm *vm)
{
	return vm->nvcpus;
}

const struct vmm_timing *vmm_timings(const struct vmm *vm)
{
	return &vm->timing;
}
