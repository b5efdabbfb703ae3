/* A temp store shared by the fuzz targets that file objects (fuzz_pack, fuzz_conn). */
#ifndef KEEL_FUZZ_STORE_H
#define KEEL_FUZZ_STORE_H
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap/snap.h"

static struct snap_store *store;
static char dir[64];

static void cleanup(void)
{
	char cmd[96];

	snap_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

/* libFuzzer may leave through _Exit (time limit) without atexit: remove stores of dead runs. */
static void sweep_dead(const char *base, const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(base);
	size_t np = strlen(prefix);

	if (!d)
		return;
	while ((de = readdir(d))) {
		int pid;
		char cmd[200];
		if (strncmp(de->d_name, prefix, np) || sscanf(de->d_name + np, "%d", &pid) != 1 || pid <= 0 ||
		    kill(pid, 0) == 0)
			continue;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s%d'", base, prefix, pid);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz: could not remove %s/%s\n", base, de->d_name);
	}
	closedir(d);
}

/* The next slice length (1..max, at most left) from the xorshift state *x the input's first byte seeds. */
static size_t fuzz_slice(uint32_t *x, size_t max, size_t left)
{
	size_t n;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	n = 1 + *x % max;
	return n < left ? n : left;
}

/* Opens the store on the first call (prefix names the target, e.g. "keel-fuzz-pack-"). */
static void fuzz_store_open(const char *prefix)
{
	const char *base;

	if (store)
		return;
	base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	sweep_dead(base, prefix);
	snprintf(dir, sizeof(dir), "%s/%s%d", base, prefix, (int)getpid());
	if (snap_store_init(dir) < 0 || snap_store_open(dir, &store) < 0)
		abort();
	atexit(cleanup);
}

/* Temp files (a "~" prefix) left in objects/: a write that was neither committed nor aborted. */
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

/* After each input: nothing staged, everything filed verifies; then the store is emptied. */
static void fuzz_store_check(void)
{
	if (staged_files() != 0)
		abort();
	if (snap_store_verify(store, NULL, NULL) != 0)
		abort();
	snap_store_gc(store, NULL);   /* no refs: empties the store for the next input */
}
#endif
