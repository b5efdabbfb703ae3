/*
 * How a guest stops on purpose through ports: the ACPI PM1 control register (SLP_EN with the
 * _S5_ sleep type is power off; the status register reads zero: nothing sleeps), the reset
 * control register at 0xcf9 (the FADT's reset register) and the i8042's pulse-reset command.
 */
#include <string.h>

#include "vmm/vmm_int.h"

static int sleep_io(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size)
{
	if (out && off == 0 && size == 1 && (data[0] & VMM_ACPI_SLP_EN) && ((data[0] >> 2) & 7) == VMM_ACPI_S5)
		vmm_event_locked(vm, VMM_EV_POWEROFF, "guest powered off (ACPI S5)");
	if (!out)
		memset(data, 0, size);
	return 0;
}

static int reset_io(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size)
{
	(void)off;
	if (out && size == 1 && (data[0] & 0x04))
		vmm_event_locked(vm, VMM_EV_RESET, "guest reset (port 0xcf9)");
	else if (!out)
		memset(data, 0xff, size);
	return 0;
}

static int i8042_io(struct vmm *vm, unsigned off, int out, uint8_t *data, unsigned size)
{
	(void)off;
	if (out && size == 1 && data[0] == 0xfe)
		vmm_event_locked(vm, VMM_EV_RESET, "guest reset (i8042)");
	else if (!out)
		memset(data, 0xff, size);
	return 0;
}

const struct vmm_pio_ops vmm_acpi_sleep_ops = { .name = "acpi-pm1", .port = VMM_ACPI_SLEEP_CTL, .nports = 2,
						 .io = sleep_io };
const struct vmm_pio_ops vmm_reset_ops = { .name = "reset", .port = VMM_RESET_PORT, .nports = 1, .io = reset_io };
const struct vmm_pio_ops vmm_i8042_ops = { .name = "i8042", .port = 0x64, .nports = 1, .io = i8042_io };
