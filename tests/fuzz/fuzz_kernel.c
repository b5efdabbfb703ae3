/*
 * libFuzzer: the kernel loader (vmm/boot_linux.c) on any file: ELF headers and program headers,
 * the bzImage setup header, sizes and load addresses, into 32 MiB of guest memory without KVM.
 * Invariants: a refusal says why in one line; an accepted image's entry lies in guest memory.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (32U << 20)

static struct vmm *vm;
static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	uint64_t entry = 0;
	int r;

	if (!vm) {
		vm = vmm_alloc();
		fd = memfd_create("keel-fuzz-kernel", MFD_CLOEXEC);
		if (!vm || fd < 0)
			abort();
		vm->mem = calloc(1, MEM_SIZE);
		vm->mem_size = MEM_SIZE;
		if (!vm->mem)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = 0;
	r = vmm_boot_load(vm, path, NULL, "console=ttyS0", &entry, err, sizeof(err));
	if (r != 0 && (!err[0] || strchr(err, '\n')))
		abort();
	if (r == 0 && entry >= MEM_SIZE)
		abort();
	return 0;
}
