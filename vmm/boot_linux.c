/*
 * The x86-64 Linux boot protocol as a loader without firmware: a bzImage (protocol >= 2.12,
 * entered at its 64-bit entry, load address + 0x200) or an ELF image (vmlinux or a tiny test
 * guest, entered at e_entry in 64-bit mode), with a zero page (boot_params) at VMM_ZERO_PAGE
 * holding the setup header, the e820 map, the command line pointer and the initrd.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

/* boot_params / setup_header offsets (Documentation/arch/x86/boot.rst, zero-page.rst) */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_INIT_SIZE 0x260
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* pread exactly len bytes at off into dst. */
static int pread_all(int fd, void *dst, size_t len, off_t off)
{
	uint8_t *p = dst;

	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * PT_LOAD segments at their physical addresses, read from the file straight into guest
 * memory (one copy out of the page cache; a Debian vmlinux is ~65 MB, and an intermediate
 * buffer doubled the copying and the page faults, which dominate on nested hosts).
 * hdr holds the file's first hdrlen bytes; returns the highest byte used in *end.
 */
static int load_elf(struct vmm *vm, int fd, size_t len, const uint8_t *hdr, size_t hdrlen, uint64_t *entry,
		    uint64_t *end, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)hdr;
	Elf64_Phdr ph[64];
	uint64_t hi = 0;
	int i, r;

	if (hdrlen < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		return fail(err, errlen, -EINVAL, "not a 64-bit x86 ELF image");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > 64 || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return fail(err, errlen, -EINVAL, "ELF program headers out of the file (or more than 64)");
	r = pread_all(fd, ph, (size_t)eh->e_phnum * sizeof(Elf64_Phdr), (off_t)eh->e_phoff);
	if (r)
		return fail(err, errlen, r, "cannot read the ELF program headers: %s", strerror(-r));
	for (i = 0; i < eh->e_phnum; i++) {
		uint8_t *dst;

		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset > len || ph[i].p_filesz > len - ph[i].p_offset)
			return fail(err, errlen, -EINVAL, "ELF segment %d out of the file", i);
		if (ph[i].p_paddr < VMM_HIMEM)
			return fail(err, errlen, -EINVAL, "ELF segment %d below 1 MiB", i);
		dst = vmm_gmem(vm, vmm_gpa(ph[i].p_paddr), ph[i].p_memsz);
		if (!dst)
			return fail(err, errlen, -ENOMEM, "ELF segment %d does not fit in guest memory", i);
		r = pread_all(fd, dst, ph[i].p_filesz, (off_t)ph[i].p_offset);
		if (r)
			return fail(err, errlen, r, "cannot read ELF segment %d: %s", i, strerror(-r));
		/* Fresh guest memory is already zero: clearing the bss would only fault its pages in. */
		if (ph[i].p_paddr + ph[i].p_memsz > hi)
			hi = ph[i].p_paddr + ph[i].p_memsz;
	}
	if (hi == 0)
		return fail(err, errlen, -EINVAL, "ELF image has no loadable segment");
	*entry = eh->e_entry;
	if (*entry >= 0xffffffff80000000ULL)  /* a virtual entry: vmlinux maps phys 0 there */
		*entry -= 0xffffffff80000000ULL;
	if (*entry >= hi)
		return fail(err, errlen, -EINVAL, "ELF entry point outside the image");
	*end = hi;
	return 0;
}

/* hdr holds the file's first hdrlen bytes (all of the real-mode setup when it is well formed). */
static int load_bzimage(struct vmm *vm, int fd, size_t len, const uint8_t *hdr, size_t hdrlen, uint8_t *zp,
			uint64_t *entry, uint64_t *end, char *err, size_t errlen)
{
	unsigned setup_sects = hdr[HDR_SETUP_SECTS] ? hdr[HDR_SETUP_SECTS] : 4;
	size_t koff = ((size_t)setup_sects + 1) * 512;
	size_t hdr_end = HDR_MAGIC + hdr[HDR_JUMP + 1];
	uint32_t init_size = get32(hdr + HDR_INIT_SIZE);
	uint16_t version = get16(hdr + HDR_VERSION);
	uint8_t *dst;
	int r;

	if (version < 0x020c || !(get16(hdr + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return fail(err, errlen, -EINVAL, "bzImage boot protocol %x.%02x has no 64-bit entry (need >= 2.12)",
			    version >> 8, version & 0xff);
	if (koff >= len || hdr_end > koff || hdr_end > 0x290 || hdr_end > hdrlen)
		return fail(err, errlen, -EINVAL, "bzImage setup header is malformed");
	if (init_size < len - koff)
		init_size = (uint32_t)(len - koff);
	dst = vmm_gmem(vm, vmm_gpa(VMM_KERNEL_ADDR), init_size);
	if (!dst)
		return fail(err, errlen, -ENOMEM, "kernel needs %u MiB above 16 MiB; give the guest more memory",
			    init_size >> 20);
	r = pread_all(fd, dst, len - koff, (off_t)koff);
	if (r)
		return fail(err, errlen, r, "cannot read the bzImage payload: %s", strerror(-r));
	memcpy(zp + HDR_SETUP_SECTS, hdr + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	*entry = VMM_KERNEL_ADDR + 0x200;
	*end = VMM_KERNEL_ADDR + init_size;
	return 0;
}

static void e820_add(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[BP_E820_ENTRIES];
	uint8_t *e = zp + BP_E820_TABLE + 20 * n;

	put64(e, addr);
	put64(e + 8, size);
	put32(e + 16, type);
	zp[BP_E820_ENTRIES] = (uint8_t)(n + 1);
}

int vmm_boot_load(struct vmm *vm, const char *kernel, const char *initrd, const char *cmdline,
		  uint64_t *entry, char *err, size_t errlen)
{
	uint8_t *zp = vmm_gmem(vm, vmm_gpa(VMM_ZERO_PAGE), 4096);
	size_t hdrcap = (256 + 1) * 512;   /* the largest real-mode setup a bzImage can have */
	uint8_t *hdr = NULL;
	size_t len = 0, hlen, clen = cmdline ? strlen(cmdline) : 0;
	struct stat st;
	int fd;
	uint64_t kend = 0, initrd_max = 0x37ffffff;
	uint8_t *cl = vmm_gmem(vm, vmm_gpa(VMM_CMDLINE), VMM_CMDLINE_MAX);
	int r, is_bz;

	if (!zp || !cl)
		return fail(err, errlen, -ENOMEM, "guest memory too small for the boot parameters");
	fd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)VMM_MAX_MEM) {
		r = fd < 0 ? -errno : -EINVAL;
		if (fd >= 0)
			close(fd);
		return fail(err, errlen, r, "cannot read kernel %s: %s", kernel, strerror(-r));
	}
	len = (size_t)st.st_size;
	hlen = len < hdrcap ? len : hdrcap;
	hdr = malloc(hdrcap);
	r = hdr ? pread_all(fd, hdr, hlen, 0) : -ENOMEM;
	if (r) {
		free(hdr);
		close(fd);
		return fail(err, errlen, r, "cannot read kernel %s: %s", kernel, strerror(-r));
	}
	memset(zp, 0, 4096);
	is_bz = hlen > 0x290 && get16(hdr + HDR_BOOT_FLAG) == 0xaa55 && memcmp(hdr + HDR_MAGIC, "HdrS", 4) == 0;
	if (is_bz) {
		r = load_bzimage(vm, fd, len, hdr, hlen, zp, entry, &kend, err, errlen);
		if (r == 0 && get32(zp + HDR_INITRD_ADDR_MAX))
			initrd_max = get32(zp + HDR_INITRD_ADDR_MAX);
		if (r == 0 && get32(zp + HDR_CMDLINE_SIZE) && clen > get32(zp + HDR_CMDLINE_SIZE))
			r = fail(err, errlen, -E2BIG, "command line longer than the kernel's %u bytes",
				 get32(zp + HDR_CMDLINE_SIZE));
	} else if (hlen >= 4 && memcmp(hdr, ELFMAG, SELFMAG) == 0) {
		r = load_elf(vm, fd, len, hdr, hlen, entry, &kend, err, errlen);
		/* No setup header in an ELF: write the fields a 64-bit entry reads. */
		put16(zp + HDR_BOOT_FLAG, 0xaa55);
		memcpy(zp + HDR_MAGIC, "HdrS", 4);
		put16(zp + HDR_VERSION, 0x020f);
		put32(zp + HDR_KERNEL_ALIGNMENT, 0x1000000);
		put32(zp + HDR_CMDLINE_SIZE, VMM_CMDLINE_MAX - 1);
		put32(zp + HDR_INITRD_ADDR_MAX, (uint32_t)initrd_max);
	} else {
		r = fail(err, errlen, -EINVAL, "%s is neither a bzImage nor an ELF image", kernel);
	}
	free(hdr);
	close(fd);
	if (r)
		return r;

	zp[HDR_TYPE_OF_LOADER] = 0xff;
	zp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put16(zp + HDR_HEAP_END_PTR, 0xfe00 - 0x200);
	if (clen >= VMM_CMDLINE_MAX)
		return fail(err, errlen, -E2BIG, "command line longer than %d bytes", VMM_CMDLINE_MAX - 1);
	memcpy(cl, cmdline ? cmdline : "", clen + 1);
	put32(zp + HDR_CMD_LINE_PTR, (uint32_t)VMM_CMDLINE);
	put32(zp + BP_EXT_CMD_LINE_PTR, 0);

	if (initrd) {
		uint64_t top = vm->mem_size < initrd_max + 1 ? vm->mem_size : initrd_max + 1;
		uint64_t addr;
		uint8_t *dst;

		fd = open(initrd, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			r = fd < 0 ? -errno : -EINVAL;
			if (fd >= 0)
				close(fd);
			return fail(err, errlen, r, "cannot read initrd %s", initrd);
		}
		if ((uint64_t)st.st_size > top || ((top - (uint64_t)st.st_size) & ~0xfffULL) < kend) {
			close(fd);
			return fail(err, errlen, -ENOMEM, "initrd does not fit below %llu MiB next to the kernel",
				    (unsigned long long)(top >> 20));
		}
		addr = (top - (uint64_t)st.st_size) & ~0xfffULL;
		dst = vmm_gmem(vm, vmm_gpa(addr), (uint64_t)st.st_size);
		r = !st.st_size ? 0 : dst ? pread_all(fd, dst, (size_t)st.st_size, 0) : -ENOMEM;
		close(fd);
		if (r)
			return fail(err, errlen, r, "cannot read initrd %s", initrd);
		put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
		put32(zp + HDR_RAMDISK_SIZE, (uint32_t)st.st_size);
		put32(zp + BP_EXT_RAMDISK_IMAGE, 0);
		put32(zp + BP_EXT_RAMDISK_SIZE, 0);
	}

	/* RAM, minus the EBDA (MP table) and the legacy hole 640 KiB - 1 MiB, whose top holds the ACPI
	 * tables and the VM generation ID (reserved); MMIO lies above RAM. */
	e820_add(zp, 0, VMM_EBDA, 1);
	e820_add(zp, VMM_EBDA, 0xa0000 - VMM_EBDA, 2);
	e820_add(zp, VMM_ACPI_BASE, VMM_HIMEM - VMM_ACPI_BASE, 2);
	e820_add(zp, VMM_HIMEM, vm->mem_size - VMM_HIMEM, 1);
	put64(zp + BP_ACPI_RSDP_ADDR, VMM_ACPI_BASE);
	return 0;
}
