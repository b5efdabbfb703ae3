# The tiny freestanding test guest (tests/guest/tiny), built with the host gcc for every variant.
TINY_CFLAGS := -std=gnu11 -O2 -ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables -Wall -Wextra -Werror \
	-Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,-T,$(TOP)/tests/guest/tiny/tiny.ld

$(BIN)/tests/guest/tiny.elf: $(TOP)/tests/guest/tiny/tiny.c $(TOP)/tests/guest/tiny/tiny.ld
	@mkdir -p $(dir $@)
	gcc $(TINY_CFLAGS) -o $@ $<

all: $(BIN)/tests/guest/tiny.elf
