/* keel's entry point: PID 1 runs init, anything else dispatches `keel <command>`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init/init.h"

static int usage(FILE *f)
{
	fprintf(f, "usage: keel <command> [args...]   (keel <command> --help for one)\n\ncommands:\n");
	for (const struct init_command *c = init_commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return usage(stdout);
	for (const struct init_command *c = init_commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	return cli_usage(argv[1], "unknown command (keel --help lists them)");
}
