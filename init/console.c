/*
 * A console stream per sandbox: the child's stdout and stderr are a pipe PID 1
 * drains without blocking. Each line goes to PID 1's console as "NAME| text",
 * with every control and non-ASCII byte escaped (a guest cannot clear the
 * operator's screen, retitle the terminal or fake a keel-init line), within a
 * byte budget per sandbox (a token bucket: board.conf console-rate bytes/s,
 * four seconds' worth at once); what is over budget is counted, said once, and kept with the rest
 * in a ring of the last CONSOLE_RING bytes, which PID 1 writes to
 * console-dir/NAME.log once a second when it changed.
 *
 * IMPLEMENTATION NOTES
 * - One drain reads at most CONSOLE_DRAIN bytes, so a flooding guest costs
 *   PID 1 one bounded step per loop and no other sandbox waits behind it; the
 *   pipe is never left full either, so the guest does not stall on its UART.
 * - '\r' is dropped (serial consoles end lines with "\r\n"; a bare one would
 *   let a guest overwrite the prefix); a line longer than CONSOLE_LINE is cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init/pid1_int.h"

#define CONSOLE_DRAIN 65536

size_t init_console_escape(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r')
			continue;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		} else if (c == '\t' || c == '\\') {
			if (o + 2 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = c == '\t' ? 't' : '\\';
		} else {
			if (o + 4 >= cap)
				break;
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		}
	}
	out[o] = 0;
	return o;
}

void init_console_open(struct init_console *c, const char *name, int fd, unsigned rate, uint64_t now_ms)
{
	if (c->fd >= 0)
		close(c->fd);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->fd = fd;
	c->plen = 0;
	c->rate = rate;
	if (!c->last_ms) {
		c->tokens = 4ULL * rate;
		c->last_ms = now_ms;
	}
}

static void ring_put(struct init_console *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c->ring[c->rhead] = s[i];
		c->rhead = (c->rhead + 1) % sizeof(c->ring);
		if (c->rlen < sizeof(c->ring))
			c->rlen++;
	}
	c->dirty = 1;
}

size_t init_console_ring(const struct init_console *c, char *out, size_t cap)
{
	size_t start = (c->rhead + sizeof(c->ring) - c->rlen) % sizeof(c->ring), n = 0, skip = 0;

	/* a full ring starts mid-line: from its first whole line on */
	if (c->rlen == sizeof(c->ring)) {
		while (skip < c->rlen && c->ring[(start + skip) % sizeof(c->ring)] != '\n')
			skip++;
		skip++;
	}
	for (size_t i = skip; i < c->rlen && n + 1 < cap; i++)
		out[n++] = c->ring[(start + i) % sizeof(c->ring)];
	if (cap)
		out[n] = 0;
	return n;
}

static void refill(struct init_console *c, uint64_t now_ms)
{
	uint64_t add = (now_ms - c->last_ms) * c->rate / 1000;

	if (add) {
		c->tokens = c->tokens + add > 4ULL * c->rate ? 4ULL * c->rate : c->tokens + add;
		c->last_ms = now_ms;
	}
}

/* One whole line (without its '\n'): into the ring, and to the console if the budget allows. */
static void line(struct init_console *c, const char *s, size_t n, uint64_t now_ms)
{
	char esc[CONSOLE_LINE * 4 + 1], out[sizeof(esc) + 160];
	size_t e = init_console_escape(s, n, esc, sizeof(esc));
	int len;

	ring_put(c, esc, e);
	ring_put(c, "\n", 1);
	refill(c, now_ms);
	if (c->tokens < e + 1) {
		c->dropped++;
		return;
	}
	if (c->dropped) {
		len = snprintf(out, sizeof(out), "%s| [%llu lines over %u bytes/s not shown; %s.log keeps the last %zu KiB]\n",
			       c->name, c->dropped, c->rate, c->name, sizeof(c->ring) >> 10);
		init_log_raw(out, (size_t)len);
		c->dropped = 0;
	}
	c->tokens -= e + 1;
	len = snprintf(out, sizeof(out), "%s| %s\n", c->name, esc);
	init_log_raw(out, (size_t)len);
}

int init_console_drain(struct init_console *c, uint64_t now_ms)
{
	char buf[4096];
	size_t total = 0;

	while (c->fd >= 0 && total < CONSOLE_DRAIN) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			init_console_close(c, now_ms);
			return -1;
		}
		total += (size_t)n;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				line(c, c->part, c->plen, now_ms);
				c->plen = 0;
			} else if (c->plen == sizeof(c->part)) {
				line(c, c->part, c->plen, now_ms);
				c->part[0] = buf[i];
				c->plen = 1;
			} else {
				c->part[c->plen++] = buf[i];
			}
		}
	}
	return 0;
}

void init_console_close(struct init_console *c, uint64_t now_ms)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	if (c->plen)
		line(c, c->part, c->plen, now_ms);
	c->plen = 0;
}

void init_console_save(struct init_console *c, const char *dir)
{
	char path[INIT_PATH_MAX + 80], text[sizeof(c->ring) + 1];
	size_t n;
	int fd;

	if (!c->dirty || !dir[0])
		return;
	c->dirty = 0;
	snprintf(path, sizeof(path), "%s/%s.log", dir, c->name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return;
	n = init_console_ring(c, text, sizeof(text));
	if (write(fd, text, n) < 0) {
		/* a full /run loses a copy of the ring, never a line of PID 1's */
	}
	close(fd);
}
