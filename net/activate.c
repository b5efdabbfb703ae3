/*
 * The privilege split for updates: the jailed listener files verified objects and manifests but
 * moves no ref (refs/, logs/ and floors/ are read-only in its jail and not its own). It asks the
 * privileged side (PID 1, or the parent of `keel net listen`) over a SOCK_SEQPACKET pair, which
 * checks the manifest itself (signature against its own keys, every object present, the
 * anti-rollback floor) before it moves anything.
 *
 * Messages, one per packet:
 *   listener:   "activate HEX64"
 *   privileged: "busy" (any number, at least one per ANSWER_MS while it copies objects from
 *               the image), then "ok MOVED HADPREV PREVHEX64|- NAME" | "error TEXT"
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "snap/snap.h"

#define MSG_MAX 512
#define ANSWER_MS 30000

int net_activation_request(int fd, const uint8_t id[SNAP_HASH_LEN], struct snap_activation *a, char *err,
			   size_t errlen)
{
	char msg[MSG_MAX + 1], hex[SNAP_HEX_LEN + 1], *sp;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int moved, had, n;
	ssize_t len;

	memset(a, 0, sizeof(*a));
	snap_hex(id, hex);
	n = snprintf(msg, sizeof(msg), "activate %s", hex);
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(err, errlen, "asking for activation: %s", strerror(errno));
		return -EIO;
	}
	for (;;) {
		do
			n = poll(&p, 1, ANSWER_MS);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			snprintf(err, errlen, "no answer to the activation request");
			return -ETIMEDOUT;
		}
		len = recv(fd, msg, MSG_MAX, 0);
		if (len <= 0) {
			snprintf(err, errlen, "the activation channel is closed");
			return -EIO;
		}
		msg[len] = 0;
		if (strcmp(msg, "busy"))
			break;
	}
	if (!strncmp(msg, "error ", 6)) {
		snprintf(err, errlen, "%s", msg + 6);
		return -EPERM;
	}
	/* "ok M H PREV NAME", M and H each 0 or 1, PREV 64 hex digits or "-" */
	sp = len > 7 ? strchr(msg + 7, ' ') : NULL;
	if (strncmp(msg, "ok ", 3) || (msg[3] != '0' && msg[3] != '1') || msg[4] != ' ' ||
	    (msg[5] != '0' && msg[5] != '1') || msg[6] != ' ' || !sp || !sp[1] || strlen(sp + 1) > SNAP_NAME_MAX) {
		snprintf(err, errlen, "a malformed activation answer");
		return -EPROTO;
	}
	moved = msg[3] - '0';
	had = msg[5] - '0';
	if (had ? snap_unhex(msg + 7, (size_t)(sp - msg - 7), a->prev) < 0 : sp != msg + 8 || msg[7] != '-') {
		snprintf(err, errlen, "a malformed activation answer");
		return -EPROTO;
	}
	memcpy(a->name, sp + 1, strlen(sp + 1) + 1);
	a->moved = moved;
	a->had_prev = had;
	return 0;
}

struct serve_fill {
	int fd;
	const struct snap_fill *caller;
};

/* While objects are copied: the listener hears that the answer is coming, the caller its progress. */
static void serve_busy(void *arg)
{
	struct serve_fill *sf = arg;

	send(sf->fd, "busy", 4, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sf->caller->progress)
		sf->caller->progress(sf->caller->arg);
}

int net_activation_serve(int fd, struct snap_store *s, const struct snap_pubkey *keys, size_t nkeys,
			 const struct snap_fill *fill, struct snap_activation *a, char *err, size_t errlen)
{
	struct serve_fill sf = { .fd = fd, .caller = fill };
	struct snap_fill mine = { .src = fill ? fill->src : NULL, .progress = serve_busy, .arg = &sf };
	char msg[MSG_MAX + 1], prev[SNAP_HEX_LEN + 1];
	uint8_t id[SNAP_HASH_LEN];
	ssize_t len;
	int r, n;

	memset(a, 0, sizeof(*a));
	len = recv(fd, msg, MSG_MAX, MSG_DONTWAIT);
	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (len <= 0)
		return len < 0 ? -errno : -EPIPE;
	msg[len] = 0;
	if (len != 9 + SNAP_HEX_LEN || strncmp(msg, "activate ", 9) || snap_unhex(msg + 9, SNAP_HEX_LEN, id) < 0) {
		snprintf(err, errlen, "a malformed activation request");
		r = -EPROTO;
	} else {
		r = snap_store_activate_signed(s, id, keys, nkeys, fill ? &mine : NULL, a, err, errlen);
	}
	if (r < 0) {
		n = snprintf(msg, sizeof(msg), "error %s", err);
	} else {
		if (a->had_prev)
			snap_hex(a->prev, prev);
		n = snprintf(msg, sizeof(msg), "ok %d %d %s %s", a->moved, a->had_prev, a->had_prev ? prev : "-",
			     a->name);
	}
	if (n >= (int)sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) < 0)
		return -errno;
	return r < 0 ? 2 : 1;
}
