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

/* Every vector returns at once: an idle guest may take (and ignore) whatever interrupt comes. */
__asm__(".text\n.global tiny_iret\ntiny_iret:\n\tiretq\n");
extern char tiny_iret[];

struct __attribute__((packed)) gate {
	uint16_t lo, sel;
	uint8_t ist, type;
	uint16_t mid;
	uint32_t hi, zero;
};

static struct gate idt_tab[256] __attribute__((aligned(16)));

static void idle(void)
{
	uint64_t a = (uint64_t)(uintptr_t)tiny_iret;
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr = { sizeof(idt_tab) - 1,
		(uint64_t)(uintptr_t)idt_tab };

	for (int i = 0; i < 256; i++)
		idt_tab[i] = (struct gate){ (uint16_t)a, 0x10, 0, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0 };
	__asm__ volatile("lidt %0" : : "m"(idtr));
	for (;;)
		__asm__ volatile("sti; hlt");
}

static void poweroff(void)
{
	put("reboot: Power down\n");   /* what Linux prints last; the VMM exits 0 on it */
}

/*
 * tiny=blkattack m=MiB: a hostile driver for the virtio-blk device at the first virtio-mmio
 * window. Each attack posts one malformed chain; the device must refuse it (DEVICE_NEEDS_RESET)
 * without touching memory; after a reset a well-formed read of sector 0 must still complete.
 */
#define VIO 0xd0000000UL
#define QN 8
#define RING 0x400000UL
#define BUF 0x410000UL

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static volatile struct vdesc *const vdesc = (volatile struct vdesc *)RING;
static volatile uint16_t *const vavail = (volatile uint16_t *)(RING + 0x1000);
static volatile uint16_t *const vused = (volatile uint16_t *)(RING + 0x2000);
static uint16_t avail_idx;

static uint32_t vrd(unsigned off) { return *(volatile uint32_t *)(VIO + off); }
static void vwr(unsigned off, uint32_t v) { *(volatile uint32_t *)(VIO + off) = v; }

static void zero(volatile uint8_t *p, uint64_t n)
{
	while (n--)
		*p++ = 0;
}

static void blk_setup(void)
{
	vwr(0x70, 0);
	zero((volatile uint8_t *)RING, 0x3000);
	avail_idx = 0;
	vwr(0x70, 1);
	vwr(0x70, 3);
	vwr(0x24, 1);
	vwr(0x20, 1);           /* VIRTIO_F_VERSION_1 */
	vwr(0x24, 0);
	vwr(0x20, 0);
	vwr(0x70, 0xb);
	vwr(0x30, 0);
	vwr(0x38, QN);
	vwr(0x80, (uint32_t)RING);
	vwr(0x84, 0);
	vwr(0x90, (uint32_t)(RING + 0x1000));
	vwr(0x94, 0);
	vwr(0xa0, (uint32_t)(RING + 0x2000));
	vwr(0xa4, 0);
	vwr(0x44, 1);
	vwr(0x70, 0xf);
}

static void setd(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vdesc[i].addr = addr;
	vdesc[i].len = len;
	vdesc[i].flags = flags;
	vdesc[i].next = next;
}

/* Offers head (the ring index advanced by bump), notifies, reports what the device did. */
static void post(const char *name, uint16_t head, uint16_t bump)
{
	uint32_t st;

	vavail[2 + avail_idx % QN] = head;
	avail_idx = (uint16_t)(avail_idx + bump);
	vavail[1] = avail_idx;
	vwr(0x50, 0);
	st = vrd(0x70);
	put("tiny: attack ");
	put(name);
	put(st & 0x40 ? " needs-reset" : " accepted");
	put(" used ");
	putnum(vused[1], 10);
	put("\n");
	blk_setup();
}

static void blk_attack(uint64_t mem)
{
	volatile uint8_t *hdr = (volatile uint8_t *)BUF, *data = (volatile uint8_t *)(BUF + 0x1000);
	volatile uint8_t *status = (volatile uint8_t *)(BUF + 0x2000);

	blk_setup();
	setd(0, 0, 0, 2, 0);
	post("zero-len-at-0", 0, 1);
	setd(0, BUF, 0, 2, 0);
	post("zero-len-in-ram", 0, 1);
	setd(0, mem, 0, 2, 0);
	post("zero-len-past-ram", 0, 1);
	zero(hdr, 16);
	setd(0, BUF, 16, 1, 1);
	setd(1, BUF + 0x1000, 512, 3, 2);
	setd(2, BUF + 0x2000, 0, 2, 0);
	post("zero-len-status", 0, 1);
	setd(0, 0xfffffffffffff000ULL, 0x2000, 2, 0);
	post("wraps-address-space", 0, 1);
	setd(0, mem - 8, 16, 2, 0);
	post("crosses-end-of-ram", 0, 1);
	for (unsigned i = 0; i < QN; i++)
		setd(i, BUF, 16, 1, (uint16_t)((i + 1) % QN));
	post("chain-longer-than-queue", 0, 1);
	setd(0, BUF, 16, 0, 0);
	post("head-past-queue", 200, 1);
	post("avail-index-past-ring", 0, 100);

	/* a legitimate read of sector 0 after all that */
	zero(hdr, 16);
	zero(data, 512);
	*status = 0xff;
	setd(0, BUF, 16, 1, 1);
	setd(1, BUF + 0x1000, 512, 3, 2);
	setd(2, BUF + 0x2000, 1, 2, 0);
	vavail[2] = 0;
	vavail[1] = avail_idx = 1;
	vwr(0x50, 0);
	put("tiny: blk read status ");
	putnum(*status, 10);
	put(" used ");
	putnum(vused[1], 10);
	put(" data ");
	for (int i = 0; i < 16 && data[i] >= 0x20 && data[i] < 0x7f; i++)
		outb(0x3f8, data[i]);
	put("\n");
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
	} else if (mode(cl, "blkattack")) {
		blk_attack(arg(cl, "m", 64) << 20);
	} else if (mode(cl, "cf9")) {
		outb(0xcf9, 0x06);
	} else if (mode(cl, "kbd")) {
		outb(0x64, 0xfe);
	} else if (mode(cl, "hog")) {
		/* writes one byte per page from 4 MiB up to m MiB: a guest using all the memory it was given */
		uint64_t top = arg(cl, "m", 64) << 20;

		for (uint64_t a = 4ULL << 20, mib = 4; a < top; a += 4096) {
			*(volatile uint8_t *)(uintptr_t)a = (uint8_t)(a >> 12 | 1);
			if (((a + 4096) & ((8ULL << 20) - 1)) == 0) {
				mib += 8;
				put("tiny: touched ");
				putnum(mib, 10);
				put(" MiB\n");
			}
		}
		put("tiny: hog done\n");
		idle();
	} else if (mode(cl, "flood")) {
		/* prints as fast as it can, forever */
		for (uint64_t i = 0;; i++) {
			put("tiny: flood ");
			putnum(i, 10);
			put(" the quick brown fox jumps over the lazy dog\n");
		}
	} else if (mode(cl, "esc")) {
		/* terminal controls an operator's console must not obey, then a quiet wait */
		put("tiny: esc \x1b[2J\x1b]0;owned\x07\x1b[31mred\x1b[0m bell\x07 back\b cr\r end\n");
		idle();
	} else if (mode(cl, "spin")) {
		for (;;)
			delay(1000);
	} else if (mode(cl, "idle")) {
		/* an idle sandbox: halted with interrupts on, the way an idle kernel waits (no CPU time) */
		idle();
	} else if (mode(cl, "dead")) {
		/* stops without a word: halted with interrupts off, nothing can wake it */
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	poweroff();
}
