/*
 * libFuzzer: the listener's plaintext protocol (first line, "want?" rounds, a pushed pack, end
 * of stream) on a connection without a socket, fed random bytes in random slices, filing into
 * a real temp store. Invariants: the answer is whole lines, each round's a "need" line of 0/1
 * digits, exactly one final line (ok or error) once the stream ends, unless it ended silently
 * before the first byte; nothing is left staged and the store verifies.
 */
#include <stdint.h>
#include <string.h>

#include "net/net_int.h"
#include "net/net.h"
#include "tests/fuzz/fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct net_config cfg;
	static struct net_server srv;
	struct net_conn *c;
	size_t len = 0, i, start, finals = 0, sent;
	uint32_t x;

	fuzz_store_open("keel-fuzz-conn-");
	if (size < 1)
		return 0;
	srv.cfg = &cfg;
	srv.store = store;
	srv.max_stream_bytes = 1 << 20;
	c = net_conn_detached(&srv);
	if (!c)
		return 0;
	/* The first byte seeds the slicing; the rest is what the peer sends. */
	x = data[0] * 2654435761u + 1;
	data++, size--;
	sent = size;
	while (size) {
		size_t n = fuzz_slice(&x, 96, size);

		net_conn_detached_input(c, data, n);
		len += net_conn_detached_output(c, out + len, sizeof(out) - len);
		data += n;
		size -= n;
	}
	net_conn_detached_eof(c);
	len += net_conn_detached_output(c, out + len, sizeof(out) - len);
	net_conn_detached_free(c);
	if (len && out[len - 1] != '\n')
		abort();
	for (start = 0, i = 0; i < len; i++) {
		const char *l = out + start;
		size_t n = i - start;

		if (out[i] != '\n')
			continue;
		if (n >= 5 && !memcmp(l, "need ", 5)) {
			if (finals)
				abort();   /* nothing after the final line */
			for (size_t k = 5; k < n; k++)
				if (l[k] != '0' && l[k] != '1')
					abort();
		} else if ((n >= 2 && !memcmp(l, "ok", 2)) || (n >= 6 && !memcmp(l, "error ", 6))) {
			finals++;
		} else {
			abort();
		}
		start = i + 1;
	}
	if (finals > 1 || (sent && finals == 0))
		abort();
	fuzz_store_check();
	return 0;
}
