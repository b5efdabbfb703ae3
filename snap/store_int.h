/* Private to snap/: helpers shared between the store, sources and packs. */
#ifndef KEEL_SNAP_STORE_INT_H
#define KEEL_SNAP_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "snap/snap.h"

/* BLAKE3 of len bytes of fd from off (mmap, multithreaded; pread fallback). 0 or -errno. */
int snap_store_hash_fd(int fd, uint64_t off, uint64_t len, uint8_t out[SNAP_HASH_LEN]);
/* The same with pread alone, on this thread (what a VMM's vCPU under seccomp may do). */
int snap_store_hash_pread(int fd, uint64_t off, uint64_t len, uint8_t out[SNAP_HASH_LEN]);

/* Writes all len bytes (retrying short writes and EINTR). 0 or -errno (-EIO if write returns 0). */
int snap_write_all(int fd, const void *buf, size_t len);
/* Reads all len bytes at off (retrying short reads and EINTR). 0, -ENODATA at end of file, or -errno. */
int snap_pread_full(int fd, void *buf, size_t len, uint64_t off);


#endif
