/* libFuzzer target for PID 1's side of the listener's activation channel (net/activate.c): a
 * jailed listener is not trusted, so any packet it sends gets one well-formed answer, no more. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap_store *store;
static int sv[2] = { -1, -1 };

static void setup(void)
{
	char dir[] = "/tmp/keel-fuzz-activate-XXXXXX";

	if (!mkdtemp(dir) || snap_store_init(dir) < 0 || snap_store_open(dir, &store) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct snap_pubkey key;   /* matches no signature: the checks after parsing run and refuse */
	struct snap_activation a;
	char err[256], answer[600];
	ssize_t n;
	int r;

	if (!store)
		setup();
	if (size > 4096 || send(sv[1], data, size, 0) != (ssize_t)size)
		return 0;
	r = net_activation_serve(sv[0], store, &key, 1, NULL, &a, err, sizeof(err));
	if (r == -EPIPE && size == 0)
		return 0;   /* an empty packet reads as the end of the channel */
	if (r != 2)   /* nothing in an empty store can be activated */
		abort();
	n = recv(sv[1], answer, sizeof(answer) - 1, MSG_DONTWAIT);
	if (n <= 6 || memcmp(answer, "error ", 6) || memchr(answer, '\n', (size_t)n))
		abort();
	return 0;
}
