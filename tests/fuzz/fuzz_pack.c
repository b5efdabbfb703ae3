/* libFuzzer: random bytes in random slices through the SNAPPACK 1 push parser into a real temp store. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap_store *store;
static char dir[64];

static void cleanup(void)
{
	char cmd[96];

	snap_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_pack: could not remove %s\n", dir);
}

/* libFuzzer may leave through _Exit (time limit) without atexit: remove stores of dead runs. */
static void sweep_dead(const char *base)
{
	struct dirent *de;
	DIR *d = opendir(base);

	if (!d)
		return;
	while ((de = readdir(d))) {
		int pid;
		char cmd[160];
		if (sscanf(de->d_name, "keel-fuzz-pack-%d", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0)
			continue;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/keel-fuzz-pack-%d'", base, pid);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz_pack: could not remove %s/%s\n", base, de->d_name);
	}
	closedir(d);
}

static int staged_files(void)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/objects", dir);
	d = opendir(path);
	if (!d)
		abort();
	while ((de = readdir(d)))
		n += de->d_name[0] == '~';
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_pack_rx rx;
	struct snap_pack_limits lim = { .max_manifest_bytes = 65536 };
	uint32_t x;
	int r = 0, has_m;

	if (!store) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		sweep_dead(base);
		snprintf(dir, sizeof(dir), "%s/keel-fuzz-pack-%d", base, (int)getpid());
		if (snap_store_init(dir) < 0 || snap_store_open(dir, &store) < 0)
			abort();
		atexit(cleanup);
	}
	if (size < 1)
		return 0;
	/* The first byte seeds the slicing; the rest is the stream. */
	x = data[0] * 2654435761u + 1;
	data++, size--;
	snap_pack_rx_init(&rx, store, &lim);
	while (size && r == 0) {
		size_t n;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		n = 1 + x % 64;
		if (n > size)
			n = size;
		r = snap_pack_rx_feed(&rx, data, n);
		data += n;
		size -= n;
	}
	if (r == 0)
		r = snap_pack_rx_finish(&rx, &has_m, NULL);
	/* Invariants: an error always has its one-line message; nothing is left staged. */
	if (r < 0 && (!snap_pack_rx_error(&rx)[0] || strchr(snap_pack_rx_error(&rx), '\n')))
		abort();
	snap_pack_rx_free(&rx);
	if (staged_files() != 0)
		abort();
	if (snap_store_verify(store, NULL, NULL) != 0)
		abort();
	snap_store_gc(store, NULL);   /* no refs: empties the store for the next input */
	return 0;
}
