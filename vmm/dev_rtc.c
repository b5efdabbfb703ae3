/*
 * An MC146818-compatible CMOS RTC at 0x70 (index) / 0x71 (data) that always reads the host's
 * UTC time. Linux without ACPI (acpi=off) registers rtc_cmos whatever the platform, and its probe
 * waits for "update in progress" to clear for 10 ms of udelay() steps; with nothing at these
 * ports every read is 0xff (UIP set), and on a nested host that wait took 11 s of a 20 s boot.
 * Here UIP is never set, the time is valid, and the guest gets a working /dev/rtc0.
 * ACPI guests are told there is no CMOS RTC (FADT) and keep the kvmclock wall clock.
 * No interrupt is ever raised (no periodic, alarm or update interrupts), and guest writes to the
 * clock do not move it: a sandbox keeps the host's time. Other CMOS bytes are plain RAM.
 */
#include <string.h>
#include <time.h>

#include "vmm/vmm_int.h"

#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define B_24H 0x02
#define B_BINARY 0x04
#define D_VRT 0x80

static void rtc_init(struct vmm_rtc *r)
{
	/* A state that is all zero (a fresh or restored VM) gets the power-on registers. */
	if (r->init)
		return;
	r->init = 1;
	r->ram[REG_A] = 0x26;          /* 32.768 kHz time base, 1024 Hz rate; UIP clear */
	r->ram[REG_B] = B_24H;         /* BCD, 24-hour, no interrupts */
}

static uint8_t enc(const struct vmm_rtc *r, int v)
{
	return (r->ram[REG_B] & B_BINARY) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static uint8_t hour(const struct vmm_rtc *r, int h)
{
	int pm = h >= 12;

	if (r->ram[REG_B] & B_24H)
		return enc(r, h);
	h %= 12;
	return (uint8_t)(enc(r, h ? h : 12) | (pm ? 0x80 : 0));
}

void vmm_rtc_out(struct vmm_rtc *r, unsigned off, uint8_t v)
{
	rtc_init(r);
	if (off == 0) {
		r->index = v & 0x7f;       /* bit 7 masks NMIs on a PC: nothing to mask here */
		return;
	}
	switch (r->index) {
	case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09:
	case REG_C: case REG_D:
		break;                     /* the clock and the status registers are read-only here */
	case REG_A:
		r->ram[REG_A] = v & 0x7f;  /* UIP is read-only */
		break;
	case REG_B:
		r->ram[REG_B] = v & 0x7f;  /* SET (bit 7) would freeze the clock for a write: ignored */
		break;
	default:
		r->ram[r->index] = v;
		break;
	}
}

void vmm_rtc_in(struct vmm_rtc *r, unsigned off, uint8_t *v)
{
	time_t now;
	struct tm tm;

	rtc_init(r);
	if (off == 0) {
		*v = 0xff;                 /* the index register is write-only */
		return;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	switch (r->index) {
	case 0x00: *v = enc(r, tm.tm_sec > 59 ? 59 : tm.tm_sec); break;
	case 0x02: *v = enc(r, tm.tm_min); break;
	case 0x04: *v = hour(r, tm.tm_hour); break;
	case 0x06: *v = enc(r, tm.tm_wday + 1); break;
	case 0x07: *v = enc(r, tm.tm_mday); break;
	case 0x08: *v = enc(r, tm.tm_mon + 1); break;
	case 0x09: *v = enc(r, tm.tm_year % 100); break;
	case 0x32: *v = enc(r, 19 + tm.tm_year / 100); break;   /* century (when a guest asks) */
	case REG_C: *v = 0; break;     /* no interrupt flags */
	case REG_D: *v = D_VRT; break;
	default: *v = r->ram[r->index]; break;
	}
}

static int rtc_io(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size)
{
	(void)size;
	if (out)
		vmm_rtc_out(&vm->rtc, off, data[0]);
	else
		vmm_rtc_in(&vm->rtc, off, data);
	return 0;
}

const struct vmm_pio_ops vmm_rtc_ops = { .name = "rtc", .port = VMM_RTC_PORT, .nports = 2, .byte_wide = 1,
				       .io = rtc_io };
