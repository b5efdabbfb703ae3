/*
 * The LAN's resolver in the egress tests: `lan-dnsd ADDR NAME=A.B.C.D ...` answers A queries for
 * the names given on UDP ADDR:53 (TTL 300) and NXDOMAIN for anything else, and prints one line
 * per query it got ("query NAME"), so a test can tell which names reached the resolver.
 * Built static on the host, copied into the test appliance VM (tests/integration/egress.sh).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	unsigned char m[1500];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || !inet_aton(argv[1], &sa.sin_addr) || fd < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("lan-dnsd");
		return 1;
	}
	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, m, sizeof(m) - 16, 0, (struct sockaddr *)&from, &fl);
		char name[256];
		size_t p = 12, o = 0, qend;
		struct in_addr ip = { 0 };

		if (n < 17 || (m[2] & 0x80))
			continue;
		while (p < (size_t)n && m[p] && o + m[p] + 1 < sizeof(name)) {
			if (o)
				name[o++] = '.';
			memcpy(name + o, m + p + 1, m[p]);
			o += m[p];
			p += 1 + (size_t)m[p];
		}
		name[o] = 0;
		qend = p + 5;
		if (qend > (size_t)n)
			continue;
		printf("query %s\n", name);
		for (int i = 2; i < argc; i++) {
			char *eq = strchr(argv[i], '=');

			if (eq && (size_t)(eq - argv[i]) == o && !strncasecmp(argv[i], name, o))
				inet_aton(eq + 1, &ip);
		}
		m[2] = 0x81;   /* a response, RD */
		m[3] = ip.s_addr ? 0x80 : 0x83;   /* RA; NXDOMAIN when the name is not ours */
		memset(m + 6, 0, 6);
		n = (ssize_t)qend;
		if (ip.s_addr && m[qend - 3] == 1) {   /* type A: one answer, the name by pointer */
			unsigned char rr[16] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4 };

			memcpy(rr + 12, &ip.s_addr, 4);
			memcpy(m + qend, rr, 16);
			m[7] = 1;
			n += 16;
		}
		sendto(fd, m, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
}
