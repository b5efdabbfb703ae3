/*
 * A 16550A-compatible UART at 0x3f8: enough for Linux's 8250 driver (probe with scratch and
 * loopback, FIFO detection, THR-empty and receive interrupts). The line is an ISA edge
 * interrupt, so every new interrupt condition is one pulse.
 */
#include <errno.h>
#include <string.h>

#include "vmm/vmm_int.h"

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_DEFAULT 0xb0   /* DCD, DSR, CTS */

void vmm_uart_reset(struct vmm_uart *u)
{
	memset(u, 0, sizeof(*u));
	u->msr = MSR_DEFAULT;
	u->dll = 0x0c;          /* 9600 baud, as firmware would leave it */
	u->lcr = 0x03;
	u->mcr = 0x08;
}

static int rx_push(struct vmm_uart *u, uint8_t c)
{
	if (u->rx_len >= sizeof(u->rx))
		return 0;
	u->rx[(u->rx_head + u->rx_len) % sizeof(u->rx)] = c;
	u->rx_len++;
	return 1;
}

size_t vmm_uart_rx(struct vmm_uart *u, const uint8_t *buf, size_t len, int *irq)
{
	size_t n = 0;

	*irq = 0;
	if (u->mcr & MCR_LOOP)
		return 0;
	while (n < len && rx_push(u, buf[n]))
		n++;
	if (n && (u->ier & IER_RDI))
		*irq = 1;
	return n;
}

static uint8_t loop_msr(uint8_t mcr)
{
	/* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
	return (uint8_t)(((mcr & 1) << 5) | ((mcr & 2) << 3) | ((mcr & 4) << 4) | ((mcr & 8) << 4));
}

int vmm_uart_out(struct vmm *vm, struct vmm_uart *u, unsigned off, uint8_t v)
{
	int irq = 0;

	switch (off) {
	case 0:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP) {
			if (rx_push(u, v) && (u->ier & IER_RDI))
				irq = 1;
		} else {
			vmm_console_out(vm, v);
		}
		/*
		 * Transmitted at once: THR is empty again, and every byte pulses the (edge-triggered)
		 * line. Pulsing only when the last THR-empty was acknowledged saves two KVM_IRQ_LINE
		 * calls per byte but is fragile: one edge lost while the guest has the pin masked (the
		 * 8250 driver does that around its THRE tests) and no further edge ever comes, the
		 * guest's transmitter waits forever (seen as a rare hung guest in appliance_e2e).
		 */
		if (u->ier & IER_THRI) {
			u->iir_thre = 1;
			irq = 1;
		}
		break;
	case 1:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		if ((v & IER_THRI) && !(u->ier & IER_THRI)) {
			u->iir_thre = 1;
			irq = 1;
		}
		u->ier = v & 0x0f;
		if ((u->ier & IER_RDI) && u->rx_len)
			irq = 1;
		break;
	case 2:
		u->fcr = v;
		if (v & 0x02) {     /* clear receive FIFO */
			u->rx_len = 0;
			u->rx_head = 0;
		}
		break;
	case 3:
		u->lcr = v;
		break;
	case 4:
		u->mcr = v & 0x1f;
		break;
	case 7:
		u->scr = v;
		break;
	default:
		break;
	}
	return irq;
}

int vmm_uart_in(struct vmm_uart *u, unsigned off, uint8_t *v)
{
	switch (off) {
	case 0:
		if (u->lcr & LCR_DLAB) {
			*v = u->dll;
		} else if (u->rx_len) {
			*v = u->rx[u->rx_head];
			u->rx_head = (uint8_t)((u->rx_head + 1) % sizeof(u->rx));
			u->rx_len--;
		} else {
			*v = 0;
		}
		break;
	case 1:
		*v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case 2:
		if ((u->ier & IER_RDI) && u->rx_len) {
			*v = IIR_RDI;
		} else if ((u->ier & IER_THRI) && u->iir_thre) {
			*v = IIR_THRI;
			u->iir_thre = 0;   /* reading IIR acknowledges THR empty */
		} else {
			*v = IIR_NONE;
		}
		if (u->fcr & 1)
			*v |= IIR_FIFO;
		break;
	case 3:
		*v = u->lcr;
		break;
	case 4:
		*v = u->mcr;
		break;
	case 5:
		*v = LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0);
		break;
	case 6:
		*v = (u->mcr & MCR_LOOP) ? loop_msr(u->mcr) : u->msr;
		break;
	case 7:
		*v = u->scr;
		break;
	default:
		*v = 0xff;
		break;
	}
	return 0;
}

static int uart_io(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size)
{
	(void)size;
	if (out)
		return vmm_uart_out(vm, &vm->uart, off, data[0]);
	vmm_uart_in(&vm->uart, off, data);
	return 0;
}

const struct vmm_pio_ops vmm_uart_ops = {
	.name = "uart", .port = VMM_UART_PORT, .nports = 8, .irq = VMM_UART_IRQ, .byte_wide = 1, .io = uart_io,
};

/* ---- snapshots (vmstate_abi.h) ---- */

void vmm_uart_save(const struct vmm_uart *u, struct vmstate_uart *s)
{
	memset(s, 0, sizeof(*s));
	s->ier = u->ier;
	s->iir_thre = u->iir_thre;
	s->lcr = u->lcr;
	s->mcr = u->mcr;
	s->msr = u->msr;
	s->scr = u->scr;
	s->dll = u->dll;
	s->dlm = u->dlm;
	s->fcr = u->fcr;
	s->rx_head = u->rx_head;
	s->rx_len = u->rx_len;
	memcpy(s->rx, u->rx, sizeof(s->rx));
}

int vmm_uart_check(const struct vmstate_uart *s)
{
	return s->rx_len <= sizeof(s->rx) && s->rx_head < sizeof(s->rx) && s->iir_thre <= 1 && s->ier <= 0x0f &&
	       s->mcr <= 0x1f ? 0 : -EINVAL;
}

void vmm_uart_load(struct vmm_uart *u, const struct vmstate_uart *s)
{
	u->ier = s->ier;
	u->iir_thre = s->iir_thre;
	u->lcr = s->lcr;
	u->mcr = s->mcr;
	u->msr = s->msr;
	u->scr = s->scr;
	u->dll = s->dll;
	u->dlm = s->dlm;
	u->fcr = s->fcr;
	u->rx_head = s->rx_head;
	u->rx_len = s->rx_len;
	memcpy(u->rx, s->rx, sizeof(u->rx));
}
