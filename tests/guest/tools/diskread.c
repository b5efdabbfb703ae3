/*
 * Disk read throughput inside a test guest (the disks bench): `diskread DEV seq|rand SECONDS`
 * reads DEV with O_DIRECT for about SECONDS, sequentially in 1 MiB requests or at random
 * 4 KiB-aligned offsets in 4 KiB requests, and prints
 *   diskread MODE: BYTES bytes in S s (X MiB/s, N requests)
 * Built static into the test guest's initramfs (tests/appliance/mkguest.sh).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t size = 0, bytes = 0, n = 0, x = 88172645463325252ull;
	int fd, rnd;
	size_t req;
	double t0, secs, el;
	void *buf;

	if (argc != 4 || (strcmp(argv[2], "seq") && strcmp(argv[2], "rand"))) {
		fprintf(stderr, "usage: diskread DEV seq|rand SECONDS\n");
		return 2;
	}
	rnd = !strcmp(argv[2], "rand");
	req = rnd ? 4096 : 1 << 20;
	secs = atof(argv[3]);
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd >= 0)
		size = (uint64_t)lseek(fd, 0, SEEK_END);   /* a block device's size */
	if (fd < 0 || size < req || size == (uint64_t)-1 || posix_memalign(&buf, 4096, req)) {
		perror("diskread");
		return 1;
	}
	t0 = now();
	do {
		uint64_t off;

		for (int k = 0; k < 64; k++) {
			if (rnd) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;   /* xorshift64 */
				off = (x % (size / 4096)) * 4096;
			} else {
				off = (n * req) % (size / req * req);
			}
			if (pread(fd, buf, req, (off_t)off) != (ssize_t)req) {
				perror("diskread: pread");
				return 1;
			}
			bytes += req;
			n++;
		}
		el = now() - t0;
	} while (el < secs);
	printf("diskread %s: %llu bytes in %.2f s (%.1f MiB/s, %llu requests)\n", argv[2], (unsigned long long)bytes, el,
	       (double)bytes / 1048576 / el, (unsigned long long)n);
	return 0;
}
