/* The table of `keel <command>` tools; each module's header declares its commands. */
#include <stddef.h>

#include "keel_config.h"
#include "init/init.h"
#include "net/net.h"
#include "snap/snap.h"
#include "vmm/vmm.h"

const struct init_command init_commands[] = {
	{ "init", init_cmd_init, "PID 1: restore and supervise the sandboxes (dev: --board FILE)" },
	{ "image", snap_cmd_image, "snapshot partition images: build, ls, verify, extract" },
	{ "version", init_cmd_version, "print versions of keel and of what it is built with" },
	{ "b3sum", snap_cmd_b3sum, "BLAKE3 sums of files, in the format of b3sum" },
	{ "store", snap_cmd_store, "directory store: init, put, get, verify, gc, ref" },
	{ "manifest", snap_cmd_manifest, "snapshot manifests: show, create, sign, verify" },
	{ "key", snap_cmd_key, "ECDSA P-256 key pairs for manifest signatures" },
	{ "pack", snap_cmd_pack, "SNAPPACK 1 streams: send, receive" },
	{ "vm", vmm_cmd_vm, "boot, snapshot and restore KVM microVMs" },
#if CONFIG_NET
	{ "net", net_cmd_net, "run the update listener on a raw interface (keel net listen)" },
	{ "push", net_cmd_push, "send a snapshot or pack to an appliance's update listener" },
#endif
#if CONFIG_SNAP_CAR
	{ "car", snap_cmd_car, "export and import CAR v1 files (IPFS interop)" },
#endif
	{ NULL, NULL, NULL },
};

