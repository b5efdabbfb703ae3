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

static int is_command(const char *name)
{
	for (const struct init_command *c = init_commands; c->name; c++)
		if (!strcmp(name, c->name))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	/* The kernel's init: PID 1 and no command (the kernel may pass leftover boot words). */
	if (getpid() == 1 && (argc < 2 || !is_command(argv[1])))
		init_pid1_boot();
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return usage(stdout);
	for (const struct init_command *c = init_commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	return cli_usage(argv[1], "unknown command (keel --help lists them)");
}
