/* Private to snap/: argument helpers shared by the snap tool commands. */
#ifndef KEEL_SNAP_CMD_INT_H
#define KEEL_SNAP_CMD_INT_H

#include <stdint.h>

#include "snap/snap.h"

/* Opens DIR as a store; on failure prints one line and returns 1. */
int snap_cli_open(const char *cmd, const char *dir, struct snap_store **s);
/* Parses a hex64 argument; on failure prints one line and returns 2. */
int snap_cli_id(const char *cmd, const char *s, uint8_t id[SNAP_HASH_LEN]);
/* Streams a file ("-": stdin) into the store as an object; 0 or -errno. */
int snap_cli_put_file(struct snap_store *s, const char *path, uint8_t id[SNAP_HASH_LEN]);

#endif
