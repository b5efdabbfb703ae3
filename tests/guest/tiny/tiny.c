/*
 * keel's tiny test guest: freestanding 64-bit code entered by the VMM in long mode (page
 * tables and GDT are the VMM's), rsi = the zero page. It reads its orders from the kernel
 * command line ("tiny=MODE n=N d=D") and talks through the UART at 0x3f8.
 */
#include <stdint.h>

__asm__(".section .text.start, \"ax\"\n"
	".global _start\n"
	"_start:\n"
	"	mov $0x80000, %rsp\n"
	"	mov %rsi, %rdi\n"
	"	call tiny_main\n"
	"1:	cli\n"
	"	hlt\n"
	"	jmp 1b\n"
	".text\n");

void tiny_main(const uint8_t *bp);

static volatile uint64_t counter;
static uint64_t last_tsc;
static int tsc_backwards;

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static void put(const char *s)
{
	while (*s)
		outb(0x3f8, (uint8_t)*s++);
}

static void putnum(uint64_t v, unsigned base)
{
	char b[24];
	int i = 0;

	do {
		b[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i)
		outb(0x3f8, (uint8_t)b[--i]);
}

/* Value of "key=" on the command line, or def. */
static uint64_t arg(const char *cl, const char *key, uint64_t def)
{
	for (const char *p = cl; *p; p++) {
		const char *k = key, *q = p;

		if (p != cl && p[-1] != ' ')
			continue;
		while (*k && *q == *k)
			k++, q++;
		if (*k || *q != '=')
			continue;
		q++;
		if (*q < '0' || *q > '9')
			return def;
		uint64_t v = 0;
		while (*q >= '0' && *q <= '9')
			v = v * 10 + (uint64_t)(*q++ - '0');
		return v;
	}
	return def;
}

static int mode(const char *cl, const char *m)
{
	for (const char *p = cl; *p; p++) {
		const char *k = "tiny=", *q = p, *n = m;

		if (p != cl && p[-1] != ' ')
			continue;
		while (*k && *q == *k)
			k++, q++;
		if (*k)
			continue;
		while (*n && *q == *n)
			n++, q++;
		return !*n && (*q == ' ' || *q == 0);
	}
	return 0;
}

static void delay(uint64_t n)
{
	for (volatile uint64_t i = 0; i < n; i++)
		;
}

static void check_tsc(void)
{
	uint64_t t = rdtsc();

	if (t < last_tsc)
		tsc_backwards = 1;
	last_tsc = t;
}

static void poweroff(void)
{
	put("reboot: Power down\n");   /* what Linux prints last; the VMM exits 0 on it */
}

void tiny_main(const uint8_t *bp)
{
	const char *cl = (const char *)(uintptr_t)*(const uint32_t *)(bp + 0x228);
	uint64_t n = arg(cl, "n", 5), d = arg(cl, "d", 0);

	put("tiny: hello\n");
	if (mode(cl, "count")) {
		while (counter < n) {
			counter++;
			check_tsc();
			put("tiny: count ");
			putnum(counter, 10);
			put(".\n");
			delay(d);
		}
		check_tsc();
		put(tsc_backwards ? "tiny: tsc went backwards\n" : "tiny: tsc monotonic\n");
	} else if (mode(cl, "mem")) {
		const uint64_t *src = (const uint64_t *)0x200000;
		uint64_t *dst = (uint64_t *)0x300000, sum = 0;

		for (int i = 0; i < 4096; i++)
			sum += src[i] * (uint64_t)(i + 1);
		put("tiny: sum ");
		putnum(sum, 16);
		put("\n");
		for (int i = 0; i < 4096; i++)
			dst[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
		put("tiny: wrote\n");
	} else if (mode(cl, "triple")) {
		static const struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idt = { 0, 0 };
		__asm__ volatile("lidt %0; int3" : : "m"(idt));
	} else if (mode(cl, "cf9")) {
		outb(0xcf9, 0x06);
	} else if (mode(cl, "kbd")) {
		outb(0x64, 0xfe);
	} else if (mode(cl, "spin")) {
		for (;;)
			delay(1000);
	} else if (mode(cl, "idle")) {
		/* an idle sandbox: halted with interrupts off, KVM blocks the vCPU (no CPU time) */
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	poweroff();
}
