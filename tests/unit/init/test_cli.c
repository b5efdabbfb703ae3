/* The tool helpers every command uses. */
#include <errno.h>
#include <string.h>

#include "init/init.h"
#include "tests/harness.h"

TEST(parse_size_suffixes)
{
	unsigned long long v;

	REQUIRE(cli_parse_size("128M", &v) == 0);
	CHECK_EQ(v, 128ULL << 20);
	REQUIRE(cli_parse_size("1G", &v) == 0);
	CHECK_EQ(v, 1ULL << 30);
	REQUIRE(cli_parse_size("4096", &v) == 0);
	CHECK_EQ(v, 4096);
}

TEST(parse_size_rejects_garbage_and_overflow)
{
	unsigned long long v;

	CHECK_EQ(cli_parse_size("", &v), -EINVAL);
	CHECK_EQ(cli_parse_size("-1", &v), -EINVAL);
	CHECK_EQ(cli_parse_size("12X", &v), -EINVAL);
	CHECK_EQ(cli_parse_size("1MB", &v), -EINVAL);
	CHECK_EQ(cli_parse_size("99999999999999999999", &v), -ERANGE);
	CHECK_EQ(cli_parse_size("17179869184G", &v), -ERANGE);
}

TEST(help_detection_stops_at_double_dash)
{
	char x[] = "x", dd[] = "--", help[] = "--help", h[] = "-h";
	char *a[] = { x, dd, help };
	char *b[] = { x, h };

	CHECK(!cli_wants_help(3, a));
	CHECK(cli_wants_help(2, b));
}

TEST(command_table_is_terminated_and_unique)
{
	int n = 0;

	for (const struct init_command *c = init_commands; c->name; c++, n++)
		for (const struct init_command *d = c + 1; d->name; d++)
			CHECK(strcmp(c->name, d->name) != 0);
	CHECK(n > 0);
}
