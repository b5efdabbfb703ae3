/* board.conf: the board's devices, network, keys, sandboxes and watchdog, read by PID 1. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init/init.h"
#include "net/net.h"
#include "snap/snap.h"

#define BOARD_MAX_BYTES 65536

void init_board_defaults(struct init_board *b)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->data_fstype, sizeof(b->data_fstype), "ext4");
	snprintf(b->runner, sizeof(b->runner), "/proc/self/exe");
#ifdef CONFIG_NET_PORT
	b->port = CONFIG_NET_PORT;
#else
	b->port = 7070;
#endif
	b->verify = INIT_VERIFY_FULL;
	b->shutdown_timeout_s = 10;
	b->restart_backoff_ms = 500;
	b->restart_reset_s = 60;
	b->console_rate = 4096;
	b->net_stats_s = 300;
}

struct init_sandbox_conf *init_board_sandbox(struct init_board *b, const char *name)
{
	for (int i = 0; i < b->nsandboxes; i++)
		if (!strcmp(b->sandboxes[i].name, name))
			return &b->sandboxes[i];
	return NULL;
}

static int bad(char *err, size_t errlen, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(char *err, size_t errlen, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "line %d: ", line);

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long x;
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -1;
	*out = (unsigned)x;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) {
		*out = 0;
		return 0;
	}
	return -1;
}

static int printable(const char *v)
{
	for (; *v; v++)
		if (*v < 0x20 || *v > 0x7e)
			return 0;
	return 1;
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*end = 0;
	return s;
}

/* "dhcp" or A.B.C.D/P (the listener's one parser, net_parse_ipv4). */
static int address_ok(const char *v)
{
	uint32_t ip;
	unsigned prefix;

	return !strcmp(v, "dhcp") || net_parse_ipv4(v, 1, &ip, &prefix) == 0;
}

static int sandbox_key(struct init_board *b, const char *key, const char *v, int line, char *err, size_t errlen)
{
	const char *name = key + strlen("sandbox.");
	const char *dot = strrchr(name, '.');
	struct init_sandbox_conf *s;
	char nm[65];
	size_t nlen;

	if (!dot || dot == name)
		return bad(err, errlen, line, "'%s': expected sandbox.NAME.KEY", key);
	nlen = (size_t)(dot - name);
	if (!snap_name_valid(name, nlen))
		return bad(err, errlen, line, "'%s': sandbox name must be [A-Za-z0-9._-]{1,64}", key);
	memcpy(nm, name, nlen);
	nm[nlen] = 0;
	s = init_board_sandbox(b, nm);
	if (!s) {
		if (b->nsandboxes >= CONFIG_MAX_SANDBOXES)
			return bad(err, errlen, line, "more than %d sandboxes (CONFIG_MAX_SANDBOXES)",
				   CONFIG_MAX_SANDBOXES);
		s = &b->sandboxes[b->nsandboxes++];
		memset(s, 0, sizeof(*s));
		memcpy(s->name, nm, nlen + 1);
		s->autostart = 1;
		s->health_timeout_s = CONFIG_HEALTH_TIMEOUT_S;
		s->restart_limit = CONFIG_RESTART_LIMIT;
	}
	key = dot + 1;
	if (!strcmp(key, "autostart")) {
		if (parse_bool(v, &s->autostart))
			return bad(err, errlen, line, "autostart: expected yes or no");
	} else if (!strcmp(key, "health-marker")) {
		if (strlen(v) > INIT_MARKER_MAX || !printable(v))
			return bad(err, errlen, line, "health-marker: printable ASCII, at most %d bytes",
				   INIT_MARKER_MAX);
		memcpy(s->health_marker, v, strlen(v) + 1);
		s->has_health_marker = 1;
	} else if (!strcmp(key, "health-timeout")) {
		if (parse_uint(v, 0, 3600, &s->health_timeout_s))
			return bad(err, errlen, line, "health-timeout: seconds, 0..3600");
	} else if (!strcmp(key, "restart-limit")) {
		if (parse_uint(v, 0, 1000, &s->restart_limit))
			return bad(err, errlen, line, "restart-limit: 0..1000");
	} else if (!strcmp(key, "cpu-quota")) {
		if (parse_uint(v, 1, 100 * CONFIG_VMM_MAX_VCPUS, &s->cpu_quota))
			return bad(err, errlen, line, "cpu-quota: percent of one CPU, 1..%d", 100 * CONFIG_VMM_MAX_VCPUS);
	} else if (!strcmp(key, "memory-max")) {
		if (cli_parse_size(v, &s->memory_max) || s->memory_max < (8ULL << 20) || s->memory_max > (1ULL << 50))
			return bad(err, errlen, line, "memory-max: a size such as 256M, at least 8M");
	} else if (!strcmp(key, "net")) {
		if (!strcmp(v, "none"))
			s->net = INIT_NET_NONE;
		else if (!strcmp(v, "nat"))
			s->net = INIT_NET_NAT;
		else if (!strcmp(v, "bridge"))
			s->net = INIT_NET_BRIDGE;
		else
			return bad(err, errlen, line, "net: expected none, nat or bridge");
	} else if (!strcmp(key, "allow")) {
		/* "api.example.com:443, 192.0.2.0/24:*": several entries, the key given again for more */
		char list[512];

		if (set_str(list, sizeof(list), v))
			return bad(err, errlen, line, "allow: longer than %zu bytes (give the key again)", sizeof(list) - 1);
		for (char *e = list, *next; e; e = next) {
			next = strchr(e, ',');
			if (next)
				*next++ = 0;
			e = trim(e, e + strlen(e));
			if (s->nallow >= NET_MAX_ALLOW)
				return bad(err, errlen, line, "allow: at most %d entries per sandbox", NET_MAX_ALLOW);
			if (net_parse_allow(e, &s->allow[s->nallow]))
				return bad(err, errlen, line, "allow: '%s': expected HOST:PORT or A.B.C.D[/P]:PORT "
					   "(PORT may be *), e.g. api.example.com:443, 192.0.2.0/24:*", e);
			s->nallow++;
		}
	} else if (!strcmp(key, "forward")) {
		unsigned outer, inner;
		char *colon = strchr(v, ':');

		if (!colon)
			return bad(err, errlen, line, "forward: expected APPLIANCE-PORT:GUEST-PORT, e.g. 8080:80");
		*colon = 0;
		if (parse_uint(v, 1, 65535, &outer) || parse_uint(colon + 1, 1, 65535, &inner))
			return bad(err, errlen, line, "forward: ports are 1..65535 (APPLIANCE-PORT:GUEST-PORT)");
		if (s->nforward >= INIT_MAX_FORWARDS)
			return bad(err, errlen, line, "forward: at most %d per sandbox", INIT_MAX_FORWARDS);
		for (int i = 0; i < b->nsandboxes; i++)
			for (unsigned f = 0; f < b->sandboxes[i].nforward; f++)
				if (b->sandboxes[i].forward[f].outer == outer)
					return bad(err, errlen, line, "forward: port %u is already forwarded to sandbox %s",
						   outer, b->sandboxes[i].name);
		s->forward[s->nforward].outer = (uint16_t)outer;
		s->forward[s->nforward++].inner = (uint16_t)inner;
	} else {
		return bad(err, errlen, line, "unknown sandbox key '%s'", key);
	}
	return 0;
}

/* Paths: absolute, printable, no "..": board.conf comes from the signed initramfs but be strict anyway. */
static int path_ok(const char *v)
{
	return v[0] == '/' && printable(v) && !strstr(v, "/../") && strlen(v) < INIT_PATH_MAX &&
	       !(strlen(v) >= 3 && !strcmp(v + strlen(v) - 3, "/.."));
}

static int one_key(struct init_board *b, const char *key, const char *v, int line, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
		size_t cap;
	} paths[] = {
		{ "image", offsetof(struct init_board, image), INIT_PATH_MAX },
		{ "data-device", offsetof(struct init_board, data_device), INIT_PATH_MAX },
		{ "data-dir", offsetof(struct init_board, data_dir), INIT_PATH_MAX },
		{ "tls-cert", offsetof(struct init_board, tls_cert), INIT_PATH_MAX },
		{ "tls-key", offsetof(struct init_board, tls_key), INIT_PATH_MAX },
		{ "tls-ca", offsetof(struct init_board, tls_ca), INIT_PATH_MAX },
		{ "watchdog", offsetof(struct init_board, watchdog), INIT_PATH_MAX },
		{ "runner", offsetof(struct init_board, runner), INIT_PATH_MAX },
		{ "console-dir", offsetof(struct init_board, console_dir), INIT_PATH_MAX },
	};

	if (!strncmp(key, "sandbox.", 8))
		return sandbox_key(b, key, v, line, err, errlen);
	if (!strcmp(key, "cgroup")) {
		if (strcmp(v, "none") && !path_ok(v))
			return bad(err, errlen, line, "cgroup: expected an absolute path or none");
		memcpy(b->cgroup, v, strlen(v) + 1);
		return 0;
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(key, paths[i].key))
			continue;
		if (!path_ok(v))
			return bad(err, errlen, line, "%s: expected an absolute path (printable, no '..')", key);
		memcpy((char *)b + paths[i].off, v, strlen(v) + 1);
		return 0;
	}
	if (!strcmp(key, "module") || !strcmp(key, "trusted-key")) {
		int is_mod = key[0] == 'm';
		int *n = is_mod ? &b->nmodules : &b->ntrusted_keys;
		int max = is_mod ? INIT_MAX_MODULES : INIT_MAX_KEYS;
		char *dst = is_mod ? b->modules[*n] : b->trusted_keys[*n];
		if (*n >= max)
			return bad(err, errlen, line, "more than %d %s lines", max, key);
		if (!path_ok(v))
			return bad(err, errlen, line, "%s: expected an absolute path", key);
		memcpy(dst, v, strlen(v) + 1);
		(*n)++;
		return 0;
	}
	if (!strcmp(key, "data-fstype")) {
		if (set_str(b->data_fstype, sizeof(b->data_fstype), v) || !snap_name_valid(v, strlen(v)))
			return bad(err, errlen, line, "data-fstype: a filesystem name such as ext4");
	} else if (!strcmp(key, "nic")) {
		/* "tap:NAME": lwIP behind a TAP device keel creates (development and test boards). */
		const char *ifn = !strncmp(v, "tap:", 4) ? v + 4 : v;
		if (set_str(b->nic, sizeof(b->nic), v) || strlen(ifn) > 15 || !snap_name_valid(ifn, strlen(ifn)))
			return bad(err, errlen, line, "nic: an interface name (at most 15 characters) or tap:NAME");
	} else if (!strcmp(key, "address")) {
		if (!address_ok(v) || set_str(b->address, sizeof(b->address), v))
			return bad(err, errlen, line, "address: 'dhcp' or A.B.C.D/PREFIX");
	} else if (!strcmp(key, "gateway")) {
		uint32_t gw;

		if (net_parse_ipv4(v, 0, &gw, NULL) < 0 || set_str(b->gateway, sizeof(b->gateway), v))
			return bad(err, errlen, line, "gateway: A.B.C.D");
	} else if (!strcmp(key, "bridge")) {
		if (parse_bool(v, &b->bridge))
			return bad(err, errlen, line, "bridge: expected yes or no");
	} else if (!strcmp(key, "dns")) {
		if (net_parse_ipv4(v, 0, &b->dns, NULL) < 0 || !b->dns)
			return bad(err, errlen, line, "dns: A.B.C.D (the resolver of the sandboxes' allowed names)");
	} else if (!strcmp(key, "port")) {
		if (parse_uint(v, 1, 65535, &b->port))
			return bad(err, errlen, line, "port: 1..65535");
		if (b->port >= NET_NAT_PORT_FIRST && b->port <= NET_NAT_PORT_LAST)
			return bad(err, errlen, line, "port: %u..%u are keel's for the guests' connections out",
				   NET_NAT_PORT_FIRST, NET_NAT_PORT_LAST);
	} else if (!strcmp(key, "insecure-unsigned")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad(err, errlen, line, "insecure-unsigned: 'yes' or 'no'");
		b->insecure_unsigned = !strcmp(v, "yes");
	} else if (!strcmp(key, "listener-plaintext")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad(err, errlen, line, "listener-plaintext: 'yes' or 'no'");
		b->listener_plaintext = !strcmp(v, "yes");
	} else if (!strcmp(key, "verify")) {
		if (!strcmp(v, "full"))
			b->verify = INIT_VERIFY_FULL;
		else if (!strcmp(v, "manifest"))
			b->verify = INIT_VERIFY_MANIFEST;
		else
			return bad(err, errlen, line, "verify: 'full' or 'manifest'");
	} else if (!strcmp(key, "watchdog-timeout")) {
		if (parse_uint(v, 1, 3600, &b->watchdog_timeout_s))
			return bad(err, errlen, line, "watchdog-timeout: seconds, 1..3600");
	} else if (!strcmp(key, "shutdown-timeout")) {
		if (parse_uint(v, 0, 600, &b->shutdown_timeout_s))
			return bad(err, errlen, line, "shutdown-timeout: seconds, 0..600");
	} else if (!strcmp(key, "restart-backoff-ms")) {
		if (parse_uint(v, 1, 60000, &b->restart_backoff_ms))
			return bad(err, errlen, line, "restart-backoff-ms: 1..60000");
	} else if (!strcmp(key, "restart-reset")) {
		if (parse_uint(v, 1, 86400, &b->restart_reset_s))
			return bad(err, errlen, line, "restart-reset: seconds, 1..86400");
	} else if (!strcmp(key, "net-stats")) {
		if (parse_uint(v, 0, 86400, &b->net_stats_s))
			return bad(err, errlen, line, "net-stats: seconds between the sandbox links' counter lines, 0..86400 "
				   "(0: at shutdown only)");
	} else if (!strcmp(key, "console-rate")) {
		if (parse_uint(v, 64, 1 << 20, &b->console_rate))
			return bad(err, errlen, line, "console-rate: bytes per second per sandbox, 64..1048576");
	} else {
		return bad(err, errlen, line, "unknown key '%s'", key);
	}
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

int init_board_parse(const char *buf, size_t len, struct init_board *b, char *err, size_t errlen)
{
	static const char *const once[] = { "image", "data-device", "data-dir", "data-fstype", "nic",
					    "address", "gateway", "dns", "bridge", "port", "tls-cert", "tls-key", "tls-ca",
					    "watchdog", "runner", "verify", "shutdown-timeout", "insecure-unsigned", "listener-plaintext",
					    "restart-backoff-ms", "restart-reset", "watchdog-timeout", "cgroup",
					    "console-dir", "console-rate", "net-stats" };
	unsigned seen = 0;
	char line[1024];
	size_t pos = 0;
	int lineno = 0, rc;

	init_board_defaults(b);
	if (err && errlen)
		err[0] = 0;
	if (len > BOARD_MAX_BYTES)
		return bad(err, errlen, 0, "board.conf is larger than %d bytes", BOARD_MAX_BYTES);
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		char *k, *v, *eq;

		lineno++;
		if (n >= sizeof(line))
			return bad(err, errlen, lineno, "line longer than %zu bytes", sizeof(line) - 1);
		memcpy(line, buf + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		if (memchr(line, 0, n))
			return bad(err, errlen, lineno, "NUL byte");
		k = trim(line, line + n);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq)
			return bad(err, errlen, lineno, "expected 'key = value'");
		v = trim(eq + 1, k + strlen(k));
		k = trim(k, eq);
		if (!*k)
			return bad(err, errlen, lineno, "empty key");
		if (!*v && !ends_with(k, ".health-marker"))
			return bad(err, errlen, lineno, "'%s' has no value", k);
		for (unsigned i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
			if (strcmp(k, once[i]))
				continue;
			if (seen & (1u << i))
				return bad(err, errlen, lineno, "'%s' given twice", k);
			seen |= 1u << i;
		}
		rc = one_key(b, k, v, lineno, err, errlen);
		if (rc)
			return rc;
	}
	if (b->data_device[0] && !b->data_dir[0])
		return bad(err, errlen, lineno, "data-device needs data-dir (where to mount it)");
	for (int i = 0; i < b->nsandboxes; i++) {
		const struct init_sandbox_conf *s = &b->sandboxes[i];

		if (s->nallow && (s->net == INIT_NET_NONE || s->net == INIT_NET_BRIDGE))
			return bad(err, errlen, lineno, "sandbox.%s.allow with sandbox.%s.net = %s (an allow-list is nat's)",
				   s->name, s->name, s->net == INIT_NET_NONE ? "none" : "bridge");
		if (s->net == INIT_NET_BRIDGE && !b->bridge)
			return bad(err, errlen, lineno, "sandbox.%s.net = bridge: this board does not allow it (bridge = yes)",
				   s->name);
		if (s->net == INIT_NET_BRIDGE && s->nforward)
			return bad(err, errlen, lineno, "sandbox.%s.forward with sandbox.%s.net = bridge (a bridged guest "
				   "has its own address on the LAN)", s->name, s->name);
		for (unsigned f = 0; f < s->nforward; f++) {
			if (s->forward[f].outer >= NET_NAT_PORT_FIRST && s->forward[f].outer <= NET_NAT_PORT_LAST)
				return bad(err, errlen, lineno, "sandbox.%s.forward: ports %u..%u are keel's for the "
					   "guests' connections out", s->name, NET_NAT_PORT_FIRST, NET_NAT_PORT_LAST);
			if (s->net == INIT_NET_NONE)
				return bad(err, errlen, lineno, "sandbox.%s.forward with sandbox.%s.net = none", s->name, s->name);
			if (s->forward[f].outer == b->port && (b->nic[0]))
				return bad(err, errlen, lineno, "sandbox.%s.forward: port %u is the update listener's", s->name,
					   b->port);
		}
	}
	return 0;
}

int init_board_load(const char *path, struct init_board *b, char *err, size_t errlen)
{
	char *buf;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	buf = malloc(BOARD_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, BOARD_MAX_BYTES + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > BOARD_MAX_BYTES)
			break;
	}
	rc = init_board_parse(buf, len, b, err, errlen);
out:
	free(buf);
	close(fd);
	return rc;
}
