/* board.conf parsing: every key, defaults, and one-line errors naming the line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "init/init.h"
#include "tests/harness.h"

static struct init_board b;
static char err[200];

static int parse(const char *s)
{
	return init_board_parse(s, strlen(s), &b, err, sizeof(err));
}

TEST(board_parses_every_key)
{
	const char *conf =
		"# comment\n"
		"image = /dev/vda\n"
		"data-device = /dev/vdb\n"
		"data-fstype = ext4\n"
		"data-dir = /data\n"
		"nic = eth0\n"
		"address = 10.0.2.15/24\n"
		"gateway = 10.0.2.2\n"
		"port = 7443\n"
		"tls-cert = /etc/keel/cert.pem\n"
		"tls-key = /etc/keel/key.pem\n"
		"tls-ca = /etc/keel/ca.pem\n"
		"trusted-key = /etc/keel/k1.pem\n"
		"trusted-key = /etc/keel/k2.pem\n"
		"module = /lib/modules/kvm.ko\n"
		"watchdog = /dev/watchdog\n"
		"watchdog-timeout = 30\n"
		"verify = manifest\n"
		"shutdown-timeout = 3\n"
		"restart-backoff-ms = 50\n"
		"restart-reset = 10\n"
		"runner = /bin/true\n"
		"\n"
		"  sandbox.web.autostart = yes  \n"
		"sandbox.web.health-marker = heartbeat ok\n"
		"sandbox.web.health-timeout = 12\n"
		"sandbox.web.restart-limit = 3\n"
		"sandbox.web.cpu-quota = 50\n"
		"sandbox.web.memory-max = 96M\n"
		"cgroup = /sys/fs/cgroup/box\n"
		"sandbox.db.autostart = no\n";

	REQUIRE(parse(conf) == 0);
	CHECK_STR(b.image, "/dev/vda");
	CHECK_STR(b.data_device, "/dev/vdb");
	CHECK_STR(b.data_dir, "/data");
	CHECK_STR(b.address, "10.0.2.15/24");
	CHECK_EQ(b.port, 7443);
	CHECK_EQ(b.ntrusted_keys, 2);
	CHECK_STR(b.trusted_keys[1], "/etc/keel/k2.pem");
	CHECK_EQ(b.nmodules, 1);
	CHECK_EQ(b.verify, INIT_VERIFY_MANIFEST);
	CHECK_EQ(b.shutdown_timeout_s, 3);
	CHECK_STR(b.watchdog, "/dev/watchdog");
	CHECK_EQ(b.watchdog_timeout_s, 30);
	CHECK_EQ(b.restart_backoff_ms, 50);
	CHECK_EQ(b.nsandboxes, 2);
	struct init_sandbox_conf *s = init_board_sandbox(&b, "web");
	REQUIRE(s);
	CHECK(s->autostart);
	CHECK(s->has_health_marker);
	CHECK_STR(s->health_marker, "heartbeat ok");
	CHECK_EQ(s->health_timeout_s, 12);
	CHECK_EQ(s->restart_limit, 3);
	CHECK_EQ(s->cpu_quota, 50);
	CHECK_EQ(s->memory_max, 96ULL << 20);
	CHECK_STR(b.cgroup, "/sys/fs/cgroup/box");
	s = init_board_sandbox(&b, "db");
	REQUIRE(s);
	CHECK(!s->autostart);
	CHECK(!s->has_health_marker);
	CHECK_EQ(s->restart_limit, CONFIG_RESTART_LIMIT);
	CHECK_EQ(s->health_timeout_s, CONFIG_HEALTH_TIMEOUT_S);
}

TEST(board_defaults_when_empty)
{
	REQUIRE(parse("") == 0);
	CHECK_EQ(b.nsandboxes, 0);
	CHECK_STR(b.runner, "/proc/self/exe");
	CHECK_EQ(b.verify, INIT_VERIFY_FULL);
	CHECK(b.image[0] == 0);
}

TEST(board_errors_name_the_line)
{
	CHECK_EQ(parse("image = /dev/vda\nbogus = 1\n"), -EINVAL);
	CHECK(strstr(err, "line 2") && strstr(err, "bogus"));
	CHECK_EQ(parse("image = relative/path\n"), -EINVAL);
	CHECK(strstr(err, "line 1"));
	CHECK_EQ(parse("port = 70000\n"), -EINVAL);
	CHECK_EQ(parse("address = 10.0.0.300/24\n"), -EINVAL);
	CHECK_EQ(parse("address = 10.0.0.1\n"), -EINVAL);
	CHECK_EQ(parse("image = /a\nimage = /b\n"), -EINVAL);
	CHECK(strstr(err, "twice"));
	CHECK_EQ(parse("no equals sign\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.bad/name.autostart = yes\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.web.colour = red\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.web.autostart = maybe\n"), -EINVAL);
	CHECK_EQ(parse("data-device = /dev/vdb\n"), -EINVAL);
	CHECK_EQ(parse("image = /x/../etc\n"), -EINVAL);
	CHECK_EQ(parse("image =\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.web.cpu-quota = 0\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.web.cpu-quota = 50%\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.web.memory-max = 1M\n"), -EINVAL);
	CHECK(strstr(err, "memory-max"));
	CHECK_EQ(parse("sandbox.web.memory-max = lots\n"), -EINVAL);
	CHECK_EQ(parse("cgroup = relative\n"), -EINVAL);
	REQUIRE(parse("cgroup = none\n") == 0);
	CHECK_STR(b.cgroup, "none");
}

TEST(board_empty_health_marker_is_allowed)
{
	REQUIRE(parse("sandbox.a.health-marker =\n") == 0);
	CHECK(b.sandboxes[0].has_health_marker);
	CHECK_STR(b.sandboxes[0].health_marker, "");
}

TEST(board_sandbox_limit_is_enforced)
{
	char conf[8192];
	size_t n = 0;

	for (int i = 0; i <= CONFIG_MAX_SANDBOXES; i++)
		n += (size_t)snprintf(conf + n, sizeof(conf) - n, "sandbox.s%d.autostart = yes\n", i);
	CHECK_EQ(parse(conf), -EINVAL);
	CHECK(strstr(err, "sandboxes"));
}

TEST(board_rejects_nul_and_long_lines)
{
	char buf[2000];

	memset(buf, 'a', sizeof(buf));
	CHECK_EQ(init_board_parse(buf, sizeof(buf), &b, err, sizeof(err)), -EINVAL);
	CHECK_EQ(init_board_parse("port = 1\0\n", 10, &b, err, sizeof(err)), -EINVAL);
}

TEST(board_load_reports_missing_file)
{
	CHECK_EQ(init_board_load("/nonexistent/board.conf", &b, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nonexistent/board.conf"));
}

TEST(board_allow_lists_and_dns)
{
	REQUIRE(parse("dns = 192.168.50.53\n"
		      "sandbox.app.allow = api.example.com:443, 192.0.2.0/24:*\n"
		      "sandbox.app.allow = *.cdn.example:80\n") == 0);
	CHECK_EQ(b.dns, 0xc0a83235u);
	REQUIRE(b.nsandboxes == 1);
	REQUIRE(b.sandboxes[0].nallow == 3);
	CHECK_STR(b.sandboxes[0].allow[0].host, "api.example.com");
	CHECK_EQ(b.sandboxes[0].allow[0].port, 443);
	CHECK_EQ(b.sandboxes[0].allow[1].addr, 0xc0000200u);
	CHECK_STR(b.sandboxes[0].allow[2].host, "*.cdn.example");
	CHECK_EQ(parse("sandbox.app.allow = api.example.com\n"), -EINVAL);
	CHECK(strstr(err, "line 1") && strstr(err, "api.example.com"));
	CHECK_EQ(parse("sandbox.app.allow = a:1, b:2,\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.app.net = none\nsandbox.app.allow = a.b:1\n"), -EINVAL);
	CHECK(strstr(err, "net = none"));
	CHECK_EQ(parse("dns = 0.0.0.0\n"), -EINVAL);
	CHECK_EQ(parse("dns = 1.2.3.4\ndns = 1.2.3.5\n"), -EINVAL);
	/* keel's ports for the guests' connections out are no forward's and not the listener's */
	CHECK_EQ(parse("sandbox.app.forward = 45000:80\n"), -EINVAL);
	CHECK(strstr(err, "keel's"));
	CHECK_EQ(parse("port = 41000\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.app.allow = a.b:1,a.b:2,a.b:3,a.b:4,a.b:5,a.b:6,a.b:7,a.b:8,a.b:9,a.b:10,"
		       "a.b:11,a.b:12,a.b:13,a.b:14,a.b:15,a.b:16,a.b:17\n"), -EINVAL);
	CHECK(strstr(err, "at most"));
}

TEST(board_bridge_mode_only_where_the_board_allows_it)
{
	REQUIRE(parse("bridge = yes\nsandbox.lan.net = bridge\nnet-stats = 60\n") == 0);
	CHECK_EQ(b.sandboxes[0].net, INIT_NET_BRIDGE);
	CHECK_EQ(b.net_stats_s, 60);
	CHECK_EQ(parse("sandbox.lan.net = bridge\n"), -EINVAL);
	CHECK(strstr(err, "bridge = yes"));
	CHECK_EQ(parse("bridge = yes\nsandbox.lan.net = bridge\nsandbox.lan.forward = 8080:80\n"), -EINVAL);
	CHECK_EQ(parse("bridge = yes\nsandbox.lan.net = bridge\nsandbox.lan.allow = a.b:1\n"), -EINVAL);
	CHECK_EQ(parse("sandbox.lan.net = switch\n"), -EINVAL);
	REQUIRE(parse("image = /dev/vda\n") == 0);
	CHECK_EQ(b.net_stats_s, 300);
}
