/* A sandbox's console stream: escaped, prefixed, within its budget, the rest in its ring. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init/pid1_int.h"
#include "tests/harness.h"

static struct init_console con;

/* The console (PID 1's log fd) as a pipe; returns its read end. */
static int capture(void)
{
	int p[2];

	if (pipe2(p, O_NONBLOCK) < 0)
		return -1;
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	init_log_setup(p[1], -1);
	return p[0];
}

static size_t slurp(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);

	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

TEST(console_escapes_what_a_terminal_would_obey)
{
	char out[256];
	const char in[] = "a\x1b[2J\x1b]0;owned\x07 b\\c\td\r\xc3\xa9\x7f";

	init_console_escape(in, sizeof(in) - 1, out, sizeof(out));
	CHECK_STR(out, "a\\x1b[2J\\x1b]0;owned\\x07 b\\\\c\\td\\xc3\\xa9\\x7f");
	/* never past cap, always terminated, never half an escape */
	CHECK_EQ(init_console_escape("\x1b\x1b", 2, out, 6), 4);
	CHECK_STR(out, "\\x1b");
}

TEST(console_lines_are_prefixed_and_escaped)
{
	int cap = capture(), p[2];
	char buf[4096];

	REQUIRE(cap >= 0 && pipe2(p, O_NONBLOCK) == 0);
	memset(&con, 0, sizeof(con));
	con.fd = -1;
	init_console_open(&con, "web", p[0], 4096, 1000);
	REQUIRE(write(p[1], "hello\r\n\x1b[31mred\nno newline", 26) == 26);
	CHECK_EQ(init_console_drain(&con, 1000), 0);
	slurp(cap, buf, sizeof(buf));
	CHECK_STR(buf, "web| hello\nweb| \\x1b[31mred\n");
	close(p[1]);
	/* the writer gone: the last partial line is said, the stream closed */
	CHECK_EQ(init_console_drain(&con, 1000), -1);
	CHECK_EQ(con.fd, -1);
	slurp(cap, buf, sizeof(buf));
	CHECK_STR(buf, "web| no newline\n");
	close(cap);
}

TEST(console_flood_is_cut_to_its_budget_and_kept_in_the_ring)
{
	int cap = capture(), p[2], shown = 0;
	char buf[1 << 16], ring[sizeof(con.ring) + 1], *l;
	uint64_t now = 5000;

	REQUIRE(cap >= 0 && pipe2(p, O_NONBLOCK) == 0);
	memset(&con, 0, sizeof(con));
	con.fd = -1;
	init_console_open(&con, "chatty", p[0], 4096, now);
	/* 2000 lines of 50 bytes in one second: 100 KB against a 16 KiB burst + 4 KiB/s */
	for (int i = 0; i < 2000; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "flood %04d the quick brown fox jumps over\n", i);
		REQUIRE(write(p[1], line, (size_t)n) == n);
		if (i % 100 == 99) {
			now += 50;
			init_console_drain(&con, now);
		}
	}
	now += 1000;
	REQUIRE(write(p[1], "after a second\n", 15) == 15);
	init_console_drain(&con, now);
	slurp(cap, buf, sizeof(buf));
	for (l = buf; (l = strstr(l, "chatty| flood ")); l++)
		shown++;
	CHECK(shown > 200 && shown < 600);
	CHECK(strstr(buf, "lines over 4096 bytes/s not shown"));
	CHECK(strstr(buf, "chatty| after a second\n"));
	/* the ring holds the newest lines, shown or not, from a whole line on */
	init_console_ring(&con, ring, sizeof(ring));
	CHECK(!strncmp(ring, "flood ", 6));
	CHECK(strstr(ring, "flood 1999 the quick brown fox jumps over\nafter a second\n"));
	close(p[1]);
	init_console_close(&con, now);
	close(cap);
}
