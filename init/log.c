/* PID 1's log: one line per event on the console (or stderr) and in the kernel log. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init/pid1_int.h"

static int log_fd = 2, kmsg_fd = -1;

void init_log_setup(int fd, int kmsg)
{
	log_fd = fd;
	kmsg_fd = kmsg;
}

int init_log_fds(int fds[2])
{
	int n = 0;

	fds[n++] = log_fd;
	if (kmsg_fd >= 0)
		fds[n++] = kmsg_fd;
	return n;
}

uint64_t init_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes all of buf, ignoring failures: a log line must never stop PID 1. */
static void put(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void emit(const char *prefix, const char *fmt, va_list ap)
{
	char line[640];
	/* kmsg at debug level: in dmesg, and not echoed onto the console this line already went to */
	int n = snprintf(line, sizeof(line), "<7>keel-init: %s", prefix);

	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	n = (int)strnlen(line, sizeof(line) - 2);
	line[n++] = '\n';
	line[n] = 0;
	put(log_fd, line + 3, (size_t)n - 3);
	if (kmsg_fd >= 0)
		put(kmsg_fd, line, (size_t)n);
}

void init_log_raw(const char *line, size_t len)
{
	put(log_fd, line, len);
}

void init_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("", fmt, ap);
	va_end(ap);
}

void init_timeline(const char *fmt, ...)
{
	struct timespec ts;
	char prefix[48];
	va_list ap;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	snprintf(prefix, sizeof(prefix), "[%9.3f ms] ", (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6);
	va_start(ap, fmt);
	emit(prefix, fmt, ap);
	va_end(ap);
}
