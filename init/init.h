/* init: PID 1 (boot, supervision, shutdown) and the front door of the multi-call binary. */
#ifndef KEEL_INIT_H
#define KEEL_INIT_H

#include <stddef.h>

/* One `keel <command>`: run() gets argv with argv[0] = the command name. */
struct init_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* The table of every command, ended by a NULL name (init/main.c). */
extern const struct init_command init_commands[];

/*
 * Helpers for tool commands of every module (init/cli.c). Only tool code,
 * never library code, prints and chooses exit statuses:
 *   0 success, 1 the operation failed, 2 bad usage.
 */
/* Prints "keel CMD: MSG" on stderr and returns 2 (usage error). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "keel CMD: MSG" on stderr and returns 1 (operation failed). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv asks for help (-h or --help anywhere before "--"). */
int cli_wants_help(int argc, char **argv);
/* Prints a command's help text on stdout and returns 0. */
int cli_help(const char *text);
/* Parses a decimal unsigned value with an optional K/M/G suffix; 0 or -EINVAL/-ERANGE. */
int cli_parse_size(const char *s, unsigned long long *out);

/* `keel version [--capabilities]` */
int init_cmd_version(int argc, char **argv);

#endif
