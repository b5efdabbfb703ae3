/*
 * A hostile guest's connection storm (egress tests): `storm ADDR PORT N [SPREAD]` tries N TCP
 * connections, 64 at a time, to ADDR:PORT, ADDR+1:PORT, ... ADDR+SPREAD-1 (then again), each
 * given at most one second, and says how they ended and how long it all took:
 *   storm: N attempts in S s: R refused, C connected, T timed out, E other (last error)
 * Built static into the test guest's initramfs (tests/appliance/mkguest.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define WINDOW 64   /* attempts in flight at once */

int main(int argc, char **argv)
{
	struct in_addr base;
	struct pollfd pfd[WINDOW];
	double start[WINDOW], t0;
	unsigned long n, spread, next = 0, done = 0, refused = 0, connected = 0, timedout = 0, other = 0;
	unsigned port;
	int last = 0;

	if (argc < 4 || !inet_aton(argv[1], &base)) {
		fprintf(stderr, "usage: storm ADDR PORT N [SPREAD]\n");
		return 2;
	}
	port = (unsigned)atoi(argv[2]);
	n = strtoul(argv[3], NULL, 10);
	spread = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
	if (!spread)
		spread = 1;
	for (int k = 0; k < WINDOW; k++)
		pfd[k].fd = -1;
	t0 = now();
	while (done < n) {
		for (int k = 0; k < WINDOW && next < n; k++) {
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
			int fd;

			if (pfd[k].fd >= 0)
				continue;
			fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (fd < 0) {
				other++, done++, next++, last = errno;
				continue;
			}
			sa.sin_addr.s_addr = htonl(ntohl(base.s_addr) + (uint32_t)(next++ % spread));
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != EINPROGRESS) {
				if (errno == ECONNREFUSED)
					refused++;
				else
					connected += errno == 0, other += errno != 0, last = errno;
				close(fd);
				done++;
				continue;
			}
			pfd[k].fd = fd;
			pfd[k].events = POLLOUT;
			start[k] = now();
		}
		if (poll(pfd, WINDOW, 100) < 0)
			break;
		for (int k = 0; k < WINDOW; k++) {
			int err = 0;
			socklen_t el = sizeof(err);

			if (pfd[k].fd < 0)
				continue;
			if (!pfd[k].revents) {
				if (now() - start[k] < 1.0)
					continue;
				timedout++;
			} else {
				getsockopt(pfd[k].fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (!err)
					connected++;
				else if (err == ECONNREFUSED)
					refused++;
				else
					other++, last = err;
			}
			close(pfd[k].fd);
			pfd[k].fd = -1;
			done++;
		}
	}
	printf("storm: %lu attempts in %.2f s: %lu refused, %lu connected, %lu timed out, %lu other (%s)\n", n,
	       now() - t0, refused, connected, timedout, other, last ? strerror(last) : "-");
	return 0;
}
