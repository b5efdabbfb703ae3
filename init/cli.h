/*
 * Helpers for the tool commands of every module (init/cli.c): a leaf header that includes
 * nothing of keel's, so a cmd_*.c file of snap/, vmm/ or net/ can use it without compiling
 * against PID 1. Only tool code, never library code, prints and chooses exit statuses:
 *   0 success, 1 the operation failed, 2 bad usage.
 */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

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

#endif
