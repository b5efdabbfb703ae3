/* KVM x86-64 plumbing: the VM, its memory slot, irqchip and PIT, vCPUs, CPUID, 64-bit entry state. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

uint64_t vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void *vmm_gmem(struct vmm *vm, vmm_gpa_t gpa, uint64_t len)
{
	/* One slot; written so that neither gpa + len nor any other sum can overflow. */
	if (!vm->mem || len == 0 || gpa.a >= vm->mem_size || len > vm->mem_size - gpa.a)
		return NULL;
	return vm->mem + gpa.a;
}

static int create_pit(struct vmm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	return 0;
}

static int create_irqchip(struct vmm *vm)
{
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	return vm->pit_deferred ? 0 : create_pit(vm);
}

/*
 * KVM_CREATE_PIT2 starts a kernel thread (kvm-pit) and registers two I/O devices, each
 * waiting for an SRCU grace period, and it holds kvm->lock throughout: measured 0.05..3 ms
 * here, the slowest KVM setup step when the host is busy. A restored Linux guest keeps time
 * with the LAPIC timer and kvmclock and has the PIT shut down, so restore creates it on this
 * thread, after the vCPUs exist (KVM_CREATE_VCPU takes kvm->lock too), while the vCPUs start.
 * Until it exists, port reads of 0x40..0x43 see an open bus; the saved state then loads.
 */
static void *pit_main(void *arg)
{
	struct vmm *vm = arg;
	int r = create_pit(vm);

	if (!r && ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->pit_state) < 0)
		r = -errno;
	if (r)
		vmm_raise_event(vm, VMM_EV_ERROR, "restoring the PIT: %s", strerror(-r));
	return NULL;
}

int vmm_kvm_start_pit(struct vmm *vm)
{
	int r = pthread_create(&vm->pit_thread, NULL, pit_main, vm);

	if (r)
		return -r;
	vm->pit_thread_started = 1;
	return 0;
}

void vmm_kvm_join_pit(struct vmm *vm)
{
	if (vm->pit_thread_started)
		pthread_join(vm->pit_thread, NULL);
	vm->pit_thread_started = 0;
}

static int set_memory(struct vmm *vm, void *premapped)
{
	struct kvm_userspace_memory_region r;

	if (premapped) {
		vm->mem = premapped;
	} else {
		vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (vm->mem == MAP_FAILED) {
			vm->mem = NULL;
			return -errno;
		}
	}
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = vm->mem_size;
	r.userspace_addr = (uint64_t)(uintptr_t)vm->mem;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	return 0;
}

/*
 * The VM itself, plus what the vCPU and state setup will ask /dev/kvm for (run area size, XSAVE
 * size, MSR index list), so restore can do all of it on a thread of its own while the manifest
 * is read and guest memory mapped: the first KVM_CREATE_VM of a process costs ~0.3 ms here.
 */
static int kvm_preopened = -1;

int vmm_kvm_preopen(void)
{
	if (kvm_preopened < 0)
		kvm_preopened = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	return kvm_preopened < 0 ? -errno : kvm_preopened;
}

int vmm_kvm_create_vm(struct vmm *vm)
{
	uint64_t t0 = vmm_now_ns(), idmap = 0xfffbc000ULL;
	int n;

	if (kvm_preopened >= 0)
		vm->kvm_fd = fcntl(kvm_preopened, F_DUPFD_CLOEXEC, 3);
	else
		vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return -ENOTSUP;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return -errno;
	/* Intel needs these three pages below 4 GiB outside RAM; harmless elsewhere. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		return -errno;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return -errno;
	n = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n < (int)sizeof(struct kvm_run))
		return n < 0 ? -errno : -EINVAL;
	vm->run_size = (size_t)n;
	n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->xsave_bytes = n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
	vm->timing.vm_create = vmm_now_ns() - t0;
	return 0;
}

/*
 * The order is deliberate: on nested and paravirtual hosts registering the memory slot after
 * the irqchip costs a full MMU rebuild (measured 40x slower here), so memory comes first.
 * premapped: guest memory already mapped by the restore path (NULL: fresh anonymous memory).
 */
int vmm_kvm_memory(struct vmm *vm, uint64_t mem_size, int nvcpus, void *premapped)
{
	uint64_t t0, t1;
	int r;

	vm->mem_size = mem_size;
	vm->nvcpus = nvcpus;
	t0 = vmm_now_ns();
	if (vm->irqchip_first) {
		r = create_irqchip(vm);
		if (r)
			return r;
		t1 = vmm_now_ns();
		vm->timing.irqchip = t1 - t0;
		r = set_memory(vm, premapped);
		if (r)
			return r;
		vm->timing.mem_slots = vmm_now_ns() - t1;
		return 0;
	}
	r = set_memory(vm, premapped);
	if (r)
		return r;
	t1 = vmm_now_ns();
	vm->timing.mem_slots = t1 - t0;
	r = create_irqchip(vm);
	if (r)
		return r;
	vm->timing.irqchip = vmm_now_ns() - t1;
	return 0;
}

int vmm_kvm_open(struct vmm *vm, uint64_t mem_size, int nvcpus, void *premapped)
{
	int r = vmm_kvm_create_vm(vm);

	return r ? r : vmm_kvm_memory(vm, mem_size, nvcpus, premapped);
}

int vmm_kvm_create_vcpus(struct vmm *vm)
{
	uint64_t t0 = vmm_now_ns();
	int i;

	for (i = 0; i < vm->nvcpus; i++) {
		struct vmm_vcpu *c = &vm->vcpu[i];
		void *p;

		c->vm = vm;
		c->index = i;
		c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0)
			return -errno;
		p = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		c->run = p;
	}
	vm->timing.vcpus = vmm_now_ns() - t0;
	return 0;
}

void vmm_kvm_close(struct vmm *vm)
{
	int i;

	for (i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpu[i].run)
			munmap(vm->vcpu[i].run, vm->run_size);
		if (vm->vcpu[i].fd > 0)
			close(vm->vcpu[i].fd);
		vm->vcpu[i].run = NULL;
		vm->vcpu[i].fd = -1;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	vm->mem = NULL;
	free(vm->cpuid);
	vm->cpuid = NULL;
	free(vm->msr_list);
	vm->msr_list = NULL;
}

int vmm_irq_pulse(struct vmm *vm, unsigned irq)
{
	struct kvm_irq_level l = { .irq = irq, .level = 1 };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	l.level = 0;
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	return 0;
}

/* KVM_GET_SUPPORTED_CPUID, growing the buffer until it fits. */
static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	int n = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = (uint32_t)n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || n >= 4096)
			return NULL;
		n *= 2;
	}
}

/*
 * What the guest may see: the host's KVM-supported CPUID minus what this VMM does not
 * provide or cannot carry across a snapshot (nested virtualisation, the PMU, invariant
 * TSC — so Linux keeps kvm-clock, which restore moves with KVM_SET_CLOCK), plus the
 * hypervisor bit and a distinct APIC id per vCPU.
 * The TSC-deadline timer is not in KVM_GET_SUPPORTED_CPUID (KVM reports it through
 * KVM_CAP_TSC_DEADLINE_TIMER). Without it Linux calibrates the LAPIC timer against the PIT
 * (a few hundred ms of guest time; on a slow or nested host the check fails and the PIT,
 * reprogrammed by port I/O on every tick, becomes the clock event device). With it Linux
 * programs one MSR per timer event and calibrates nothing. Snapshots carry MSR 0x6e0.
 */
const struct vmm_cpuid_hide vmm_cpuid_hidden[] = {
	{ 1, 2, 1U << 5, "VMX" },
	{ 0x80000001, 2, 1U << 2, "SVM" },
	{ 0xa, 0, ~0U, "the PMU" },
	{ 0xa, 1, ~0U, "the PMU" },
	{ 0xa, 2, ~0U, "the PMU" },
	{ 0xa, 3, ~0U, "the PMU" },
	{ 0x80000007, 3, 1U << 8, "the invariant TSC" },
};
const size_t vmm_cpuid_nhidden = sizeof(vmm_cpuid_hidden) / sizeof(vmm_cpuid_hidden[0]);

static uint32_t *cpuid_reg(struct kvm_cpuid_entry2 *e, int reg)
{
	return reg == 0 ? &e->eax : reg == 1 ? &e->ebx : reg == 2 ? &e->ecx : &e->edx;
}

const struct vmm_cpuid_hide *vmm_cpuid_shows_hidden(const struct kvm_cpuid_entry2 *e)
{
	struct kvm_cpuid_entry2 x = *e;
	size_t h;

	for (h = 0; h < vmm_cpuid_nhidden; h++)
		if (x.function == vmm_cpuid_hidden[h].leaf && (*cpuid_reg(&x, vmm_cpuid_hidden[h].reg) &
							       vmm_cpuid_hidden[h].mask))
			return &vmm_cpuid_hidden[h];
	return NULL;
}

static void filter_cpuid(struct kvm_cpuid2 *c, int index, int nvcpus, int tsc_deadline)
{
	uint32_t i;
	size_t h;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		for (h = 0; h < vmm_cpuid_nhidden; h++)
			if (e->function == vmm_cpuid_hidden[h].leaf)
				*cpuid_reg(e, vmm_cpuid_hidden[h].reg) &= ~vmm_cpuid_hidden[h].mask;
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffU) | ((uint32_t)index << 24) | ((uint32_t)nvcpus << 16);
			e->ecx |= 1U << 31;      /* hypervisor */
			if (nvcpus > 1)
				e->edx |= 1U << 28;  /* HTT: the logical count is valid */
			if (tsc_deadline)
				e->ecx |= 1U << 24;  /* TSC-deadline LAPIC timer mode */
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)index;
			break;
		case 0x8000001e:
			e->eax = (uint32_t)index;
			break;
		default:
			break;
		}
	}
}

int vmm_kvm_set_cpuid(struct vmm_vcpu *c, const struct kvm_cpuid2 *cpuid)
{
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		return -errno;
	return 0;
}

int vmm_kvm_setup_cpuid(struct vmm *vm, struct vmm_vcpu *c)
{
	struct kvm_cpuid2 *cp = supported_cpuid(vm->kvm_fd);
	int r;

	if (!cp)
		return -ENOMEM;
	filter_cpuid(cp, c->index, vm->nvcpus,
		     ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0);
	r = vmm_kvm_set_cpuid(c, cp);
	if (r == 0 && c->index == 0 && !vm->cpuid) {
		vm->cpuid = cp;
		return 0;
	}
	free(cp);
	return r;
}

/* 4 GiB identity map with 2 MiB pages, and a GDT with the Linux boot selectors 0x10/0x18. */
int vmm_boot_pagetables(struct vmm *vm)
{
	uint64_t *pml4 = vmm_gmem(vm, vmm_gpa(VMM_PML4), 4096);
	uint64_t *pdpt = vmm_gmem(vm, vmm_gpa(VMM_PDPT), 4096);
	uint64_t *pd = vmm_gmem(vm, vmm_gpa(VMM_PD), 4 * 4096);
	uint64_t *gdt = vmm_gmem(vm, vmm_gpa(VMM_GDT_ADDR), 4 * 8);
	int i;

	if (!pml4 || !pdpt || !pd || !gdt)
		return -ENOMEM;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = VMM_PDPT | 0x3;
	for (i = 0; i < 4; i++)
		pdpt[i] = (VMM_PD + (uint64_t)i * 4096) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;  /* present, writable, 2 MiB */
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffULL;  /* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL;  /* 0x18: data */
	return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code64)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = code64 ? 0 : 1;
	s->s = 1;
	s->l = code64 ? 1 : 0;
	s->g = 1;
}

/* What firmware would do: LINT0 takes the PIC (ExtINT), LINT1 takes NMIs. */
int vmm_kvm_set_lint(struct vmm_vcpu *c)
{
	struct kvm_lapic_state la;
	uint32_t v;

	if (ioctl(c->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	memcpy(&v, la.regs + 0x350, 4);
	v = (v & ~0x700U) | 0x700U;
	memcpy(la.regs + 0x350, &v, 4);
	memcpy(&v, la.regs + 0x360, 4);
	v = (v & ~0x700U) | 0x400U;
	memcpy(la.regs + 0x360, &v, 4);
	if (ioctl(c->fd, KVM_SET_LAPIC, &la) < 0)
		return -errno;
	return 0;
}

/* Registers for the 64-bit entry: long mode, paging on, interrupts off, rsi = zero page. */
int vmm_kvm_longmode(struct vmm *vm, struct vmm_vcpu *c, uint64_t entry, uint64_t rsi)
{
	struct kvm_sregs sr;
	struct kvm_regs r;
	struct kvm_fpu fpu;

	(void)vm;
	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	seg(&sr.cs, 0x10, 0xb, 1);
	seg(&sr.ds, 0x18, 0x3, 0);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = 0;
	sr.tr.limit = 0x67;
	sr.tr.type = 0xb;     /* busy 64-bit TSS */
	sr.tr.present = 1;
	sr.gdt.base = VMM_GDT_ADDR;
	sr.gdt.limit = 4 * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr3 = VMM_PML4;
	sr.cr4 = 0x20;                 /* PAE */
	sr.cr0 = 0x80050033;           /* PG WP NE ET MP PE */
	sr.efer = 0x500;               /* LME LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = entry;
	r.rsi = rsi;
	r.rsp = 0x8ff0;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}
