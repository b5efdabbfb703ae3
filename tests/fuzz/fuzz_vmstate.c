/*
 * libFuzzer: the snapshot state blobs a restore reads (vmm/vmstate.c), parsed and validated with
 * no KVM call: the first byte picks the vCPU blob (vmm_vcpu_state_parse, against this host's MSR
 * list and XSAVE size when /dev/kvm answers), the VM blob (vmm_vm_state_parse) or the device blob
 * (vmm_load_devices on a VM without KVM and without disks). Invariants: a refusal always says
 * why in one line; an accepted vCPU blob shows no CPUID feature keel hides.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kvm_msr_list *msrs;
static size_t xsave_bytes = sizeof(struct kvm_xsave);
static struct vmm *vm;

static void setup(void)
{
	static const uint32_t common[] = { 0x10, 0x1b, 0x3a, 0x6e0, 0x174, 0x175, 0x176, 0x277, 0xc0000080,
					   0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100,
					   0xc0000101, 0xc0000102, 0xc0000103, 0x4b564d00, 0x4b564d01 };
	struct kvm_msr_list probe = { .nmsrs = 0 };
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), n;

	if (fd >= 0 && (ioctl(fd, KVM_GET_MSR_INDEX_LIST, &probe) == 0 || probe.nmsrs) && probe.nmsrs < 4096) {
		msrs = calloc(1, sizeof(*msrs) + probe.nmsrs * sizeof(uint32_t));
		if (msrs) {
			msrs->nmsrs = probe.nmsrs;
			if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, msrs) < 0) {
				free(msrs);
				msrs = NULL;
			}
		}
		n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
		if (n > (int)sizeof(struct kvm_xsave))
			xsave_bytes = (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (!msrs) {
		msrs = calloc(1, sizeof(*msrs) + sizeof(common));
		if (!msrs)
			abort();
		msrs->nmsrs = sizeof(common) / sizeof(common[0]);
		memcpy(msrs->indices, common, sizeof(common));
	}
	vm = vmm_alloc();
	if (!vm)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int r;

	if (!vm)
		setup();
	if (size < 1)
		return 0;
	err[0] = 0;
	switch (data[0] % 3) {
	case 0: {
		struct vmm_vcpu_state st;
		uint32_t i;

		r = vmm_vcpu_state_parse(data + 1, size - 1, xsave_bytes, msrs, &st, err, sizeof(err));
		if (r == 0) {
			for (i = 0; i < st.cpuid->nent; i++)
				if (vmm_cpuid_shows_hidden(&st.cpuid->entries[i]))
					abort();
			vmm_vcpu_state_free(&st);
		}
		break;
	}
	case 1: {
		struct vmm_vm_state st;

		r = vmm_vm_state_parse(data + 1, size - 1, &st, err, sizeof(err));
		break;
	}
	default:
		vm->nvirtio = 0;
		r = vmm_load_devices(vm, data + 1, size - 1, err, sizeof(err));
		break;
	}
	if (r != 0 && (!err[0] || strchr(err, '\n')))
		abort();   /* every refusal says why, in one line */
	return 0;
}
