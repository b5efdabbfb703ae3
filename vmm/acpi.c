/*
 * Minimal ACPI (spec 6.x) describing the microVM to the guest without firmware: RSDP, XSDT,
 * a hardware-reduced FADT, MADT and a DSDT with the UART, one LNRO0005 device per virtio-mmio
 * window, a VM generation ID device and a Generic Event Device that notifies it.
 *
 * IMPLEMENTATION NOTES
 * Everything sits in the BIOS area VMM_ACPI_BASE..1 MiB (an e820 reserved range, see
 * boot_linux.c), so the layout is the same for boot and restore and snapshots carry nothing
 * about it. Linux finds the RSDP through boot_params.acpi_rsdp_addr and, failing that, by
 * scanning 0xe0000-0xfffff.
 * Hardware-reduced ACPI has no PM1 blocks or SCI: power off is a write of SLP_TYP|SLP_EN to the
 * FADT's sleep control register (an I/O port the VMM traps), reset a write to the FADT's reset
 * register (0xcf9, already the VMM's reset port).
 * VM generation ID (Microsoft's "Virtual Machine Generation ID" paper; Linux drivers/virt/
 * vmgenid.c): 16 bytes at VMM_VMGENID_ADDR, announced by the VGEN device's ADDR package. On every
 * restore the VMM writes a new random value there and pulses the GED's interrupt; the GED's _EVT
 * method does Notify(VGEN, 0x80) and the guest kernel reseeds its RNG from the new value.
 * The DSDT is assembled by a small AML writer with a sticky overflow error; package lengths are
 * patched in when a package closes (its content moves up by the size of the length encoding).
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "vmm/vmm_int.h"

#define RSDP_ADDR VMM_ACPI_BASE
#define XSDT_ADDR (VMM_ACPI_BASE + 0x40)
#define FADT_ADDR (VMM_ACPI_BASE + 0x100)
#define MADT_ADDR (VMM_ACPI_BASE + 0x300)
#define DSDT_ADDR (VMM_ACPI_BASE + 0x1000)
#define DSDT_MAX 0x4000

#define HDR_LEN 36
#define FADT_LEN 276
#define FADT_RESET_REG_SUP (1U << 10)
#define FADT_HW_REDUCED (1U << 20)
#define FADT_PWR_BUTTON (1U << 4)   /* no fixed-feature power button */
#define FADT_SLP_BUTTON (1U << 5)
#define BOOT_ARCH_NO_VGA (1U << 2)
#define BOOT_ARCH_NO_CMOS_RTC (1U << 5)

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void w32(uint8_t *p, uint32_t v) { w16(p, (uint16_t)v); w16(p + 2, (uint16_t)(v >> 16)); }
static void w64(uint8_t *p, uint64_t v) { w32(p, (uint32_t)v); w32(p + 4, (uint32_t)(v >> 32)); }

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Standard description header; the checksum goes in last (header_close). */
static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memset(t, 0, HDR_LEN);
	memcpy(t, sig, 4);
	w32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "KEEL  ", 6);
	memcpy(t + 16, "KEELVM  ", 8);
	w32(t + 24, 1);
	memcpy(t + 28, "KEEL", 4);
	w32(t + 32, 1);
}

static void header_close(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)(0 - sum8(t, len));
}

/* Generic Address Structure: an 8-bit register in I/O space. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = 1;       /* system I/O */
	p[1] = 8;       /* bit width */
	p[2] = 0;       /* bit offset */
	p[3] = 1;       /* byte access */
	w64(p + 4, port);
}

/* ---- AML writer ---- */
struct aml {
	uint8_t *b;
	size_t len, cap;
	int err;
};

static void a_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err || n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

static void a_byte(struct aml *a, uint8_t v) { a_bytes(a, &v, 1); }

static void a_int(struct aml *a, uint64_t v)
{
	uint8_t q[8];

	if (v <= 1) {
		a_byte(a, (uint8_t)v);               /* ZeroOp / OneOp */
	} else if (v <= 0xff) {
		a_byte(a, 0x0a);
		a_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		a_byte(a, 0x0b);
		w16(q, (uint16_t)v);
		a_bytes(a, q, 2);
	} else if (v <= 0xffffffffULL) {
		a_byte(a, 0x0c);
		w32(q, (uint32_t)v);
		a_bytes(a, q, 4);
	} else {
		a_byte(a, 0x0e);
		w64(q, v);
		a_bytes(a, q, 8);
	}
}

static void a_string(struct aml *a, const char *s)
{
	a_byte(a, 0x0d);
	a_bytes(a, s, strlen(s) + 1);
}

/* Opens a package (PkgLength follows whatever the caller wrote); returns where its content starts. */
static size_t a_open(const struct aml *a)
{
	return a->len;
}

static void a_close(struct aml *a, size_t start)
{
	size_t body = a->len - start, n, total;

	if (a->err)
		return;
	n = body + 1 <= 63 ? 1 : body + 2 < (1U << 12) ? 2 : body + 3 < (1U << 20) ? 3 : 4;
	total = body + n;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memmove(a->b + start + n, a->b + start, body);
	if (n == 1) {
		a->b[start] = (uint8_t)total;
	} else {
		size_t i;

		a->b[start] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (i = 1; i < n; i++)
			a->b[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len += n;
}

static size_t a_device(struct aml *a, const char name[4])
{
	size_t s;

	a_byte(a, 0x5b);
	a_byte(a, 0x82);                           /* DeviceOp */
	s = a_open(a);
	a_bytes(a, name, 4);
	return s;
}

static void a_name(struct aml *a, const char name[4])
{
	a_byte(a, 0x08);                           /* NameOp */
	a_bytes(a, name, 4);
}

/* Name(_CRS, ResourceTemplate() { <res> }) with the end tag appended. */
static void a_crs(struct aml *a, const uint8_t *res, size_t n)
{
	static const uint8_t end_tag[2] = { 0x79, 0x00 };
	size_t s;

	a_name(a, "_CRS");
	a_byte(a, 0x11);                           /* BufferOp */
	s = a_open(a);
	a_int(a, n + 2);
	a_bytes(a, res, n);
	a_bytes(a, end_tag, 2);
	a_close(a, s);
}

/* Extended Interrupt descriptor: consumer, edge-triggered, active high, exclusive, one GSI. */
static size_t res_irq(uint8_t *p, uint32_t gsi)
{
	p[0] = 0x89;
	w16(p + 1, 6);
	p[3] = 0x03;
	p[4] = 1;
	w32(p + 5, gsi);
	return 9;
}

static size_t res_mem32(uint8_t *p, uint32_t base, uint32_t len)
{
	p[0] = 0x86;
	w16(p + 1, 9);
	p[3] = 1;                                  /* read-write */
	w32(p + 4, base);
	w32(p + 8, len);
	return 12;
}

static void dsdt_body(struct vmm *vm, struct aml *a)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t res[32];
	size_t sb, dev, n, pkg, m;
	int i;

	a_byte(a, 0x10);                           /* Scope(\_SB) */
	sb = a_open(a);
	a_bytes(a, "\\_SB_", 5);

	/* COM1: with hardware-reduced ACPI there are no implied ISA IRQs, so the UART's IRQ comes from here. */
	dev = a_device(a, "COM1");
	a_name(a, "_HID");
	a_string(a, "PNP0501");
	a_name(a, "_UID");
	a_int(a, 0);
	res[0] = 0x47;                             /* I/O port descriptor, 16-bit decode */
	res[1] = 1;
	w16(res + 2, VMM_UART_PORT);
	w16(res + 4, VMM_UART_PORT);
	res[6] = 1;
	res[7] = 8;
	res[8] = 0x22;                             /* IRQ descriptor without flags: edge, high, exclusive */
	w16(res + 9, 1U << VMM_UART_IRQ);
	a_crs(a, res, 11);
	a_close(a, dev);

	for (i = 0; i < vm->nvirtio; i++) {
		char name[4] = { 'V', 'I', 'O', hex[i & 15] };

		dev = a_device(a, name);
		a_name(a, "_HID");
		a_string(a, "LNRO0005");
		a_name(a, "_UID");
		a_int(a, (uint64_t)i);
		n = res_mem32(res, (uint32_t)vm->virtio[i].base, VMM_MMIO_SIZE);
		n += res_irq(res + n, vm->virtio[i].irq);
		a_crs(a, res, n);
		a_close(a, dev);
	}

	/* VM generation ID: Linux binds "VMGENCTR"; other guests know the _CID. */
	dev = a_device(a, "VGEN");
	a_name(a, "_HID");
	a_string(a, "VMGENCTR");
	a_name(a, "_CID");
	a_string(a, "VM_Gen_Counter");
	a_name(a, "_DDN");
	a_string(a, "VM_Gen_Counter");
	a_name(a, "ADDR");
	a_byte(a, 0x12);                           /* Package(2) { low, high } */
	pkg = a_open(a);
	a_byte(a, 2);
	a_int(a, (uint32_t)VMM_VMGENID_ADDR);
	a_int(a, VMM_VMGENID_ADDR >> 32);
	a_close(a, pkg);
	a_close(a, dev);

	dev = a_device(a, "GED_");
	a_name(a, "_HID");
	a_string(a, "ACPI0013");
	a_name(a, "_UID");
	a_int(a, 0);
	n = res_irq(res, VMM_GED_IRQ);
	a_crs(a, res, n);
	a_byte(a, 0x14);                           /* Method(_EVT, 1) { Notify(\_SB.VGEN, 0x80) } */
	m = a_open(a);
	a_bytes(a, "_EVT", 4);
	a_byte(a, 1);
	a_byte(a, 0x86);
	a_bytes(a, "\\\x2e_SB_VGEN", 10);
	a_int(a, 0x80);
	a_close(a, m);
	a_close(a, dev);

	a_close(a, sb);

	a_name(a, "_S5_");                         /* Package(2) { SLP_TYP a, b } */
	a_byte(a, 0x12);
	pkg = a_open(a);
	a_byte(a, 2);
	a_int(a, VMM_ACPI_S5);
	a_int(a, 0);
	a_close(a, pkg);
}

static int write_dsdt(struct vmm *vm, uint32_t *len)
{
	uint8_t *t = vmm_gmem(vm, vmm_gpa(DSDT_ADDR), DSDT_MAX);
	struct aml a;

	if (!t)
		return -ENOMEM;
	a.b = t + HDR_LEN;
	a.len = 0;
	a.cap = DSDT_MAX - HDR_LEN;
	a.err = 0;
	dsdt_body(vm, &a);
	if (a.err)
		return a.err;
	*len = (uint32_t)(HDR_LEN + a.len);
	header(t, "DSDT", *len, 2);              /* revision 2: 64-bit integers */
	header_close(t, *len);
	return 0;
}

static void write_fadt(struct vmm *vm)
{
	uint8_t *t = vmm_gmem(vm, vmm_gpa(FADT_ADDR), FADT_LEN);

	memset(t, 0, FADT_LEN);
	header(t, "FACP", FADT_LEN, 6);
	w16(t + 109, BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_CMOS_RTC);
	w32(t + 112, FADT_HW_REDUCED | FADT_RESET_REG_SUP | FADT_PWR_BUTTON | FADT_SLP_BUTTON);
	gas_io8(t + 116, VMM_RESET_PORT);
	t[128] = VMM_RESET_VALUE;
	w32(t + 40, (uint32_t)DSDT_ADDR);
	w64(t + 140, DSDT_ADDR);                   /* X_DSDT, the same table */
	gas_io8(t + 244, VMM_ACPI_SLEEP_CTL);
	gas_io8(t + 256, VMM_ACPI_SLEEP_STS);
	memcpy(t + 268, "KEELVMM ", 8);            /* hypervisor vendor identity */
	header_close(t, FADT_LEN);
}

static void write_madt(struct vmm *vm)
{
	uint32_t len = HDR_LEN + 8 + 8 * (uint32_t)vm->nvcpus + 12 + 6;
	uint8_t *t = vmm_gmem(vm, vmm_gpa(MADT_ADDR), len), *p;
	int i;

	memset(t, 0, len);
	header(t, "APIC", len, 4);
	w32(t + 36, 0xfee00000U);                  /* local APIC address */
	w32(t + 40, 1);                            /* PCAT_COMPAT: the in-kernel 8259s exist */
	p = t + 44;
	for (i = 0; i < vm->nvcpus; i++, p += 8) {
		p[0] = 0;                          /* processor local APIC */
		p[1] = 8;
		p[2] = (uint8_t)i;                 /* ACPI processor UID */
		p[3] = (uint8_t)i;                 /* APIC id (CPUID agrees) */
		w32(p + 4, 1);                     /* enabled */
	}
	p[0] = 1;                                  /* I/O APIC, GSIs 0..23 */
	p[1] = 12;
	p[2] = (uint8_t)vm->nvcpus;                /* its id, as in the MP table */
	w32(p + 4, 0xfec00000U);
	w32(p + 8, 0);
	p += 12;
	p[0] = 4;                                  /* local APIC NMI: every processor, LINT1 */
	p[1] = 6;
	p[2] = 0xff;
	w16(p + 3, 0);
	p[5] = 1;
	header_close(t, len);
}

int vmm_acpi_write(struct vmm *vm)
{
	uint8_t *rsdp = vmm_gmem(vm, vmm_gpa(RSDP_ADDR), 36), *xsdt = vmm_gmem(vm, vmm_gpa(XSDT_ADDR), HDR_LEN + 16);
	uint32_t dsdt_len = 0;
	int r;

	if (!rsdp || !xsdt || !vmm_gmem(vm, vmm_gpa(VMM_ACPI_BASE), VMM_ACPI_SIZE) ||
	    MADT_ADDR + HDR_LEN + 8 + 8 * CONFIG_VMM_MAX_VCPUS + 18 > DSDT_ADDR)
		return -ENOMEM;
	r = write_dsdt(vm, &dsdt_len);
	if (r)
		return r;
	write_fadt(vm);
	write_madt(vm);

	header(xsdt, "XSDT", HDR_LEN + 16, 1);
	w64(xsdt + HDR_LEN, FADT_ADDR);
	w64(xsdt + HDR_LEN + 8, MADT_ADDR);
	header_close(xsdt, HDR_LEN + 16);

	memset(rsdp, 0, 36);
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "KEEL  ", 6);
	rsdp[15] = 2;                              /* ACPI 2.0+: XSDT */
	w32(rsdp + 16, 0);                         /* no RSDT */
	w32(rsdp + 20, 36);
	w64(rsdp + 24, XSDT_ADDR);
	rsdp[8] = (uint8_t)(0 - sum8(rsdp, 20));
	rsdp[32] = (uint8_t)(0 - sum8(rsdp, 36));
	return vmm_vmgenid_renew(vm);
}

int vmm_vmgenid_renew(struct vmm *vm)
{
	uint8_t *id = vmm_gmem(vm, vmm_gpa(VMM_VMGENID_ADDR), 16);
	size_t off = 0;

	if (!id)
		return -ENOMEM;
	while (off < 16) {
		ssize_t n = getrandom(id + off, 16 - off, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return 0;
}

int vmm_vmgenid_notify(struct vmm *vm)
{
	return vmm_irq_pulse(vm, VMM_GED_IRQ);
}
