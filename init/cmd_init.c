/* `keel init` and the boot entry: keel as PID 1. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "init/pid1_int.h"

static const char help[] =
	"usage: keel init [--board FILE]\n"
	"  Runs keel's PID-1 logic in the foreground for development: reads FILE (default\n"
	"  " CONFIG_BOARD_CONF "), opens the snapshot partition and the data store, restores every\n"
	"  autostart sandbox in its own child (`keel vm restore`, or the board's runner), supervises\n"
	"  them (restart with backoff, rollback to an older snapshot, orphan reaping) and logs a boot\n"
	"  timeline on stderr. SIGTERM stops every sandbox and exits 0; SIGINT too; SIGHUP re-reads\n"
	"  FILE. Run it as PID 1 of a PID namespace with `unshare -fp --mount-proc keel init ...`.\n"
	"  When keel is the kernel's init (PID 1, started without a command) it does the same after\n"
	"  mounting /proc, /sys, /dev and /run and taking over the console, and ends with reboot(2).\n";

int init_cmd_init(int argc, char **argv)
{
	const char *board = CONFIG_BOARD_CONF;

	if (cli_wants_help(argc, argv))
		return cli_help(help);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--board") && i + 1 < argc)
			board = argv[++i];
		else
			return cli_usage(argv[0], "unknown argument '%s' (usage: keel init [--board FILE])", argv[i]);
	}
	/* Orphans of our sandboxes come back to us even when we are not PID 1. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	init_log_setup(2, -1);
	init_timeline("init start (pid %d, board %s)", (int)getpid(), board);
	return init_run(board, 0);
}

void init_pid1_boot(void)
{
	int kmsg;

	init_sys_mount_base();
	/* PID 1 never waits for a slow serial line: what does not fit is lost, not waited for */
	if (init_sys_console() >= 0)
		fcntl(2, F_SETFL, fcntl(2, F_GETFL) | O_NONBLOCK);
	kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	init_log_setup(2, kmsg);
	init_timeline("init start (keel %s, board %s)", KEEL_VERSION, CONFIG_BOARD_NAME);
	init_run(CONFIG_BOARD_CONF, 1);
	/* init_run only returns outside boot mode; PID 1 must never exit. */
	for (;;)
		pause();
}
