/*
 * The Intel MultiProcessor table (spec 1.4) in the EBDA: how a guest booted with acpi=off finds
 * its vCPUs, the IOAPIC and the ISA interrupt wiring. Written for every VM so that one vCPU and
 * many use the same interrupt path (IOAPIC), and virtio-mmio IRQs above 15 would work too.
 */
#include <errno.h>
#include <string.h>

#include "vmm/vmm_int.h"

#define MPC_LAPIC_ADDR 0xfee00000U
#define MPC_IOAPIC_ADDR 0xfec00000U
#define MPC_IOAPIC_PINS 24
#define MPC_APIC_VERSION 0x14
#define MPC_IOAPIC_VERSION 0x11

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)(0 - s);
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *put8(uint8_t *p, uint8_t v) { *p = v; return p + 1; }
static uint8_t *put16(uint8_t *p, uint16_t v) { return put(p, &v, 2); }
static uint8_t *put32(uint8_t *p, uint32_t v) { return put(p, &v, 4); }

int vmm_mptable_write(struct vmm *vm)
{
	size_t need = 16 + 44 + (size_t)vm->nvcpus * 20 + 8 + 8 + 8 * MPC_IOAPIC_PINS + 2 * 8;
	uint8_t *fp = vmm_gmem(vm, vmm_gpa(VMM_EBDA), need);
	uint8_t *tab, *p;
	uint8_t ioapic_id = (uint8_t)vm->nvcpus;
	uint16_t count = 0;
	int i;

	if (!fp || VMM_EBDA + need > 0xa0000)
		return -E2BIG;
	memset(fp, 0, need);
	tab = fp + 16;

	/* floating pointer structure */
	p = put(fp, "_MP_", 4);
	p = put32(p, (uint32_t)(VMM_EBDA + 16));
	p = put8(p, 1);         /* length in 16-byte units */
	p = put8(p, 4);         /* spec revision 1.4 */
	/* checksum at fp[10], features 0: a configuration table follows */

	/* configuration table: header filled last */
	p = tab + 44;
	for (i = 0; i < vm->nvcpus; i++) {
		p = put8(p, 0);                         /* processor */
		p = put8(p, (uint8_t)i);                /* APIC id = vCPU index (CPUID agrees) */
		p = put8(p, MPC_APIC_VERSION);
		p = put8(p, (uint8_t)(1 | (i == 0 ? 2 : 0))); /* enabled, bootstrap */
		p = put32(p, 0x600);                    /* family 6 signature */
		p = put32(p, 0x201);                    /* FPU, APIC */
		p = put32(p, 0);
		p = put32(p, 0);
		count++;
	}
	p = put8(p, 1);                                 /* bus 0: ISA */
	p = put8(p, 0);
	p = put(p, "ISA   ", 6);
	count++;
	p = put8(p, 2);                                 /* IOAPIC */
	p = put8(p, ioapic_id);
	p = put8(p, MPC_IOAPIC_VERSION);
	p = put8(p, 1);                                 /* enabled */
	p = put32(p, MPC_IOAPIC_ADDR);
	count++;
	for (i = 0; i < MPC_IOAPIC_PINS; i++) {         /* ISA IRQ i -> IOAPIC pin i, bus defaults */
		p = put8(p, 3);
		p = put8(p, 0);                         /* INT */
		p = put16(p, 0);
		p = put8(p, 0);
		p = put8(p, (uint8_t)i);
		p = put8(p, ioapic_id);
		p = put8(p, (uint8_t)i);
		count++;
	}
	p = put8(p, 4);                                 /* LINT0: ExtINT from the PIC */
	p = put8(p, 3);
	p = put16(p, 0);
	p = put8(p, 0);
	p = put8(p, 0);
	p = put8(p, 0xff);
	p = put8(p, 0);
	count++;
	p = put8(p, 4);                                 /* LINT1: NMI */
	p = put8(p, 1);
	p = put16(p, 0);
	p = put8(p, 0);
	p = put8(p, 0);
	p = put8(p, 0xff);
	p = put8(p, 1);
	count++;

	{
		uint16_t len = (uint16_t)(p - tab);
		uint8_t *h = tab;

		h = put(h, "PCMP", 4);
		h = put16(h, len);
		h = put8(h, 4);
		h = put8(h, 0);                         /* checksum, below */
		h = put(h, "KEEL    ", 8);
		h = put(h, "MICROVM     ", 12);
		h = put32(h, 0);
		h = put16(h, 0);
		h = put16(h, count);
		h = put32(h, MPC_LAPIC_ADDR);
		put32(h, 0);
		tab[7] = checksum(tab, len);
	}
	fp[10] = checksum(fp, 16);
	return 0;
}
