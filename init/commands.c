/* The table of `keel <command>` tools; each module's header declares its commands. */
#include <stddef.h>

#include "keel_config.h"
#include "init/init.h"
#include "net/net.h"
#include "snap/snap.h"
#include "vmm/vmm.h"

const struct init_command init_commands[] = {
	{ "version", init_cmd_version, "print versions of keel and of what it is built with" },
	{ "b3sum", snap_cmd_b3sum, "BLAKE3 sums of files, in the format of b3sum" },
	{ NULL, NULL, NULL },
};

