/*
 * libFuzzer target for PID 1's side of a sandbox's console stream: any bytes a guest can print,
 * cut into the reads a pipe can deliver, through line splitting, escaping, the budget and the
 * ring. Invariants: what reaches the console is prefixed lines of printable ASCII only; the
 * ring holds printable ASCII and newlines only, never more than its size.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init/pid1_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable_lines(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((s[i] < 0x20 || s[i] > 0x7e) && s[i] != '\n')
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct init_console c;
	static char out[1 << 17], ring[sizeof(c.ring) + 1];
	int in[2], log[2];
	uint64_t now = 1;
	size_t off = 0;
	ssize_t n;

	if (size > 60000 || pipe2(in, O_NONBLOCK) < 0)
		return 0;
	if (pipe2(log, O_NONBLOCK) < 0) {
		close(in[0]);
		close(in[1]);
		return 0;
	}
	fcntl(log[0], F_SETPIPE_SZ, 1 << 17);
	init_log_setup(log[1], -1);
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	init_console_open(&c, "fz", in[0], 64 + (size ? data[0] : 0) * 16, now);
	/* the first byte also sets how the bytes are cut into reads */
	while (off < size) {
		size_t chunk = 1 + (size_t)(data[off] % 97) * 17;
		if (chunk > size - off)
			chunk = size - off;
		if (write(in[1], data + off, chunk) != (ssize_t)chunk)
			abort();
		off += chunk;
		now += data[off - 1] % 50;
		init_console_drain(&c, now);
	}
	close(in[1]);
	if (init_console_drain(&c, now) != -1 || c.fd != -1)
		abort();
	n = read(log[0], out, sizeof(out));
	if (n > 0) {
		if (!printable_lines(out, (size_t)n) || out[n - 1] != '\n')
			abort();
		for (char *l = out; l < out + n; l = strchr(l, '\n') + 1)
			if (strncmp(l, "fz| ", 4))
				abort();
	}
	n = (ssize_t)init_console_ring(&c, ring, sizeof(ring));
	if (n >= (ssize_t)sizeof(ring) || !printable_lines(ring, (size_t)n) || strlen(ring) != (size_t)n)
		abort();
	close(log[0]);
	close(log[1]);
	return 0;
}
