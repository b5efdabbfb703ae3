/* A sandbox's cgroup limits: the manifest's policy, narrowed (never widened) by board.conf. */
#include <errno.h>
#include <string.h>

#include "init/pid1_int.h"
#include "tests/harness.h"

static const struct init_policy two_vcpus = { .vcpus = 2, .cpu_quota = 150, .memory_bytes = 256ULL << 20 };

TEST(limits_come_from_the_manifest)
{
	struct init_sandbox_conf c = { .name = "web" };
	struct init_limits l;
	char err[200], line[160];

	REQUIRE(init_limits_for(&c, &two_vcpus, &l, err, sizeof(err)) == 0);
	CHECK_EQ(l.cpu_pct, 150);
	CHECK_EQ(l.mem_bytes, (256ULL + CONFIG_SANDBOX_MEM_OVERHEAD_MIB) << 20);
	CHECK_EQ(l.pids, 10);
	CHECK_EQ(l.io_weight, 100);
	init_limits_describe(&l, line, sizeof(line));
	CHECK(strstr(line, "cpu 150% of one CPU") && strstr(line, "pids 10"));
}

TEST(limits_board_narrows)
{
	struct init_sandbox_conf c = { .name = "web", .cpu_quota = 40, .memory_max = 200ULL << 20 };
	struct init_limits l;
	char err[200];

	REQUIRE(init_limits_for(&c, &two_vcpus, &l, err, sizeof(err)) == 0);
	CHECK_EQ(l.cpu_pct, 40);
	CHECK_EQ(l.mem_bytes, 200ULL << 20);
	/* equal is not wider */
	c.cpu_quota = 150;
	c.memory_max = (256ULL + CONFIG_SANDBOX_MEM_OVERHEAD_MIB) << 20;
	CHECK_EQ(init_limits_for(&c, &two_vcpus, &l, err, sizeof(err)), 0);
}

TEST(limits_board_never_widens)
{
	struct init_sandbox_conf c = { .name = "web", .cpu_quota = 151 };
	struct init_limits l;
	char err[200];

	CHECK_EQ(init_limits_for(&c, &two_vcpus, &l, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "sandbox.web.cpu-quota 151") && strstr(err, "policy-cpu-quota 150"));
	c.cpu_quota = 0;
	c.memory_max = ((256ULL + CONFIG_SANDBOX_MEM_OVERHEAD_MIB) << 20) + 4096;
	CHECK_EQ(init_limits_for(&c, &two_vcpus, &l, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "memory-max"));
}

TEST(limits_cgroup_setup_refuses_what_is_no_cgroup2)
{
	struct init_cg cg;
	char why[300];

	/* /tmp is no cgroup2 mount: nothing is enforced, and the line says why */
	CHECK(init_cg_setup(&cg, "/tmp/keel-limits-test", why, sizeof(why)) < 0);
	CHECK(strstr(why, "not mounted at /tmp"));
	CHECK(cg.root[0] == 0);
	CHECK(init_cg_setup(&cg, "relative", why, sizeof(why)) < 0);
	CHECK_EQ(init_cg_oom_kills(&cg, "sandbox-x"), 0);
}
