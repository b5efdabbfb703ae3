/* The ACPI tables keel writes for a guest: checksums, the table chain, and what each describes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "vmm/vmm_int.h"

static const char *tiny(void)
{
	static char path[512];
	const char *b = getenv("KEEL_BUILD");

	if (access("/dev/kvm", R_OK | W_OK) != 0)
		t_skip("no usable /dev/kvm on this machine");
	snprintf(path, sizeof(path), "%s/tests/guest/tiny.elf", b ? b : "build");
	if (access(path, R_OK) != 0)
		t_skip("tiny guest not built (%s)", path);
	return path;
}

static struct vmm *create(int vcpus, int ndisks, int rng, const char *cmdline)
{
	char err[256], path[600];
	struct vmm_config cfg = { .mem_bytes = 64ULL << 20, .vcpus = vcpus, .kernel = tiny(), .cmdline = cmdline,
				  .out_fd = -1, .in_fd = -1, .ready_fd = -1, .rng = rng };
	struct vmm *vm = NULL;
	int i;

	for (i = 0; i < ndisks; i++) {
		snprintf(path, sizeof(path), "%s/disk%d", t_tmpdir(), i);
		if (t_sh("truncate -s 1M %s", path) != 0)
			t_skip("cannot make a disk file in %s", t_tmpdir());
		cfg.disks[i].path = strdup(path);
		cfg.disks[i].ro = i & 1;
	}
	cfg.ndisks = ndisks;
	if (vmm_create(&cfg, &vm, err, sizeof(err)) != 0)
		t_fail(__FILE__, __LINE__, "vmm_create: %s", err);
	return vm;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int sums_to_zero(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s == 0;
}

/* The table at gpa with its signature and a valid checksum, or NULL. */
static const uint8_t *table(struct vmm *vm, uint64_t gpa, const char *sig, uint32_t *len)
{
	const uint8_t *t = vmm_mem(vm, gpa, 36);

	if (!t || memcmp(t, sig, 4) != 0)
		return NULL;
	*len = rd32(t + 4);
	t = vmm_mem(vm, gpa, *len);
	return t && sums_to_zero(t, *len) ? t : NULL;
}

static size_t count(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s), c = 0, i;

	for (i = 0; i + k <= n; i++)
		if (memcmp(p + i, s, k) == 0)
			c++;
	return c;
}

/* The RSDP the zero page points at, and the tables hanging off its XSDT (by signature). */
static const uint8_t *find(struct vmm *vm, const char *sig, uint32_t *len)
{
	const uint8_t *zp = vmm_mem(vm, 0x7000, 4096), *rsdp, *xsdt, *fadt;
	uint32_t xl, fl, i;

	if (!zp)
		return NULL;
	rsdp = vmm_mem(vm, rd64(zp + 0x70), 36);
	if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0 || !sums_to_zero(rsdp, 20) || !sums_to_zero(rsdp, 36) ||
	    rsdp[15] != 2 || rd64(rsdp + 24) < 0xe0000 || rd64(rsdp + 24) >= 0x100000)
		return NULL;
	xsdt = table(vm, rd64(rsdp + 24), "XSDT", &xl);
	if (!xsdt || xl < 36 || (xl - 36) % 8)
		return NULL;
	for (i = 36; i < xl; i += 8) {
		const uint8_t *t = vmm_mem(vm, rd64(xsdt + i), 36);

		if (!t)
			return NULL;
		if (!strcmp(sig, "DSDT") && memcmp(t, "FACP", 4) == 0) {
			fadt = table(vm, rd64(xsdt + i), "FACP", &fl);
			if (!fadt || fl < 148)
				return NULL;
			return table(vm, rd64(fadt + 140), "DSDT", len);
		}
		if (memcmp(t, sig, 4) == 0)
			return table(vm, rd64(xsdt + i), sig, len);
	}
	return NULL;
}

TEST(rsdp_in_the_bios_area_and_every_table_checksums)
{
	struct vmm *vm = create(1, 0, 0, "tiny=mem");
	const uint8_t *bios = vmm_mem(vm, 0xe0000, 0x20000);
	uint32_t len;
	size_t off;

	REQUIRE(bios);
	/* a guest without boot_params.acpi_rsdp_addr scans 16-byte boundaries of 0xe0000-0xfffff */
	for (off = 0; off < 0x20000; off += 16)
		if (memcmp(bios + off, "RSD PTR ", 8) == 0)
			break;
	CHECK_EQ(off, 0);
	CHECK(find(vm, "FACP", &len) != NULL);
	CHECK(find(vm, "APIC", &len) != NULL);
	CHECK(find(vm, "DSDT", &len) != NULL);
	vmm_destroy(vm);
}

TEST(fadt_is_hardware_reduced_with_sleep_and_reset_registers)
{
	struct vmm *vm = create(1, 0, 0, "tiny=mem");
	uint32_t len;
	const uint8_t *f = find(vm, "FACP", &len);

	REQUIRE(f);
	CHECK_EQ(len, 276);
	CHECK_EQ(f[8], 6);
	CHECK(rd32(f + 112) & (1U << 20));           /* HW_REDUCED_ACPI */
	CHECK(rd32(f + 112) & (1U << 10));           /* RESET_REG_SUP */
	CHECK_EQ(f[116], 1);                         /* reset register in I/O space */
	CHECK_EQ(rd64(f + 120), 0xcf9);
	CHECK_EQ(f[128], 6);
	CHECK_EQ(f[244], 1);                         /* sleep control: I/O port */
	CHECK(rd64(f + 248) != 0);
	CHECK_EQ(f[256], 1);
	CHECK(rd64(f + 260) != 0);
	vmm_destroy(vm);
}

TEST(madt_lists_one_enabled_local_apic_per_vcpu_and_the_ioapic)
{
	struct vmm *vm = create(3, 0, 0, "tiny=mem");
	uint32_t len, off, lapics = 0, ioapics = 0;
	const uint8_t *m = find(vm, "APIC", &len);

	REQUIRE(m);
	CHECK_EQ(rd32(m + 36), 0xfee00000U);
	for (off = 44; off + 2 <= len && m[off + 1] >= 2; off += m[off + 1]) {
		if (m[off] == 0) {
			CHECK_EQ(m[off + 3], lapics);       /* APIC id = vCPU index */
			CHECK(rd32(m + off + 4) & 1);
			lapics++;
		} else if (m[off] == 1) {
			CHECK_EQ(rd32(m + off + 4), 0xfec00000U);
			CHECK_EQ(rd32(m + off + 8), 0);
			ioapics++;
		}
	}
	CHECK_EQ(off, len);
	CHECK_EQ(lapics, 3);
	CHECK_EQ(ioapics, 1);
	vmm_destroy(vm);
}

TEST(dsdt_has_a_virtio_mmio_device_per_device_and_vmgenid_behind_a_ged)
{
	struct vmm *vm = create(1, 2, 1, "tiny=mem");
	uint32_t len;
	const uint8_t *d = find(vm, "DSDT", &len);
	const uint8_t *zp = vmm_mem(vm, 0x7000, 4096), *id;
	const char *cl;
	static const uint8_t zero[16];

	REQUIRE(d && zp);
	CHECK_EQ(count(d, len, "LNRO0005"), 3);
	CHECK_EQ(count(d, len, "VM_Gen_Counter"), 2);
	CHECK_EQ(count(d, len, "ACPI0013"), 1);
	CHECK_EQ(count(d, len, "PNP0501"), 1);
	CHECK_EQ(count(d, len, "_EVT"), 1);
	CHECK_EQ(count(d, len, "_S5_"), 1);
	/* the windows are announced here, not on the command line */
	cl = vmm_mem(vm, rd32(zp + 0x228), 4096);
	REQUIRE(cl);
	CHECK(strstr(cl, "virtio_mmio.device=") == NULL);
	id = vmm_mem(vm, 0xf0000, 16);
	REQUIRE(id);
	CHECK(memcmp(id, zero, 16) != 0);
	vmm_destroy(vm);
}

TEST(acpi_off_guests_get_virtio_devices_on_the_command_line)
{
	struct vmm *vm = create(1, 1, 1, "tiny=mem acpi=off");
	const uint8_t *zp = vmm_mem(vm, 0x7000, 4096);
	const char *cl;

	REQUIRE(zp);
	cl = vmm_mem(vm, rd32(zp + 0x228), 4096);
	REQUIRE(cl);
	CHECK(strstr(cl, "virtio_mmio.device=4K@0xd0000000:5") != NULL);
	CHECK(strstr(cl, "virtio_mmio.device=4K@0xd0001000:6") != NULL);
	vmm_destroy(vm);
}

TEST(dsdt_disassembles_with_iasl_when_it_is_installed)
{
	struct vmm *vm = create(2, 2, 1, "tiny=mem");
	uint32_t len;
	const uint8_t *d = find(vm, "DSDT", &len);
	char path[600];
	FILE *f;

	REQUIRE(d);
	if (t_sh("command -v iasl >/dev/null 2>&1") != 0) {
		vmm_destroy(vm);
		t_skip("iasl (acpica-tools) is not installed");
	}
	snprintf(path, sizeof(path), "%s/dsdt.dat", t_tmpdir());
	f = fopen(path, "wb");
	REQUIRE(f);
	REQUIRE(fwrite(d, 1, len, f) == len);
	fclose(f);
	CHECK_EQ(t_sh("cd %s && iasl -d dsdt.dat >iasl.log 2>&1", t_tmpdir()), 0);
	CHECK_EQ(t_sh("grep -q 'Device (VIO2)' %s/dsdt.dsl", t_tmpdir()), 0);
	CHECK_EQ(t_sh("grep -q 'Notify (\\\\_SB.VGEN, 0x80)' %s/dsdt.dsl", t_tmpdir()), 0);
	vmm_destroy(vm);
}

/* Replaces the tiny guest's entry (1 MiB) with: out(0x600, sleep); out(0xcf9, 6); jmp $. */
static int run_sleep_write(uint8_t sleep_ctl)
{
	struct vmm *vm = create(1, 0, 0, "tiny=mem");
	uint8_t code[] = { 0x66, 0xba, 0x00, 0x06, 0xb0, sleep_ctl, 0xee,
			   0x66, 0xba, 0xf9, 0x0c, 0xb0, 0x06, 0xee, 0xeb, 0xfe };
	uint8_t *entry = vmm_mem(vm, 0x100000, sizeof(code));
	int r;

	if (!entry) {
		vmm_destroy(vm);
		return -1;
	}
	memcpy(entry, code, sizeof(code));
	r = vmm_run(vm);
	vmm_destroy(vm);
	return r;
}

TEST(s5_write_to_the_fadt_sleep_control_register_powers_off)
{
	CHECK_EQ(run_sleep_write(0x20 | 5 << 2), VMM_EXIT_POWEROFF);
}

TEST(other_sleep_states_are_ignored)
{
	/* S3 is not offered: the write does nothing and the reset after it ends the VM */
	CHECK_EQ(run_sleep_write(0x20 | 3 << 2), VMM_EXIT_RESET);
	CHECK_EQ(run_sleep_write(5 << 2), VMM_EXIT_RESET);    /* SLP_EN clear */
}

int t_restore_dir(const char *dir, const char *name, const struct vmm_config *cfg, struct vmm **vm, char *err,
		  size_t errlen);

/* The generation ID of a restored VM, after a snapshot of the tiny guest in store dir. */
static int restored_id(const char *dir, uint8_t id[16])
{
	struct vmm_config cfg = { .out_fd = -1, .in_fd = -1, .ready_fd = -1 };
	struct vmm *vm = NULL;
	char err[256];
	const uint8_t *p;
	int r;

	if (t_restore_dir(dir, "t", &cfg, &vm, err, sizeof(err)) != 0)
		return -1;
	p = vmm_mem(vm, VMM_VMGENID_ADDR, 16);
	if (p)
		memcpy(id, p, 16);
	r = vmm_run(vm);
	vmm_destroy(vm);
	return p && r == VMM_EXIT_POWEROFF ? 0 : -1;
}

TEST(every_restore_gets_a_new_vm_generation_id)
{
	struct vmm_config cfg = { .mem_bytes = 64ULL << 20, .vcpus = 1, .kernel = tiny(), .cmdline = "tiny=count n=3",
				  .out_fd = -1, .in_fd = -1, .ready_fd = -1, .snapshot_marker = "count 1." };
	struct vmm_snapshot_info info = { .kernel = cfg.kernel, .cmdline = cfg.cmdline, .name = "t" };
	struct vmm *vm = NULL;
	uint8_t boot[16], a[16], b[16];
	char err[256], id[65], dir[600];

	snprintf(dir, sizeof(dir), "%s/store", t_tmpdir());
	REQUIRE(vmm_create(&cfg, &vm, err, sizeof(err)) == 0);
	REQUIRE(vmm_run(vm) == VMM_EXIT_SNAPSHOT);
	memcpy(boot, vmm_mem(vm, VMM_VMGENID_ADDR, 16), 16);
	REQUIRE(vmm_snapshot_write(vm, dir, &info, id, err, sizeof(err)) == 0);
	vmm_destroy(vm);
	REQUIRE(restored_id(dir, a) == 0);
	REQUIRE(restored_id(dir, b) == 0);
	CHECK(memcmp(boot, a, 16) != 0);
	CHECK(memcmp(boot, b, 16) != 0);
	CHECK(memcmp(a, b, 16) != 0);
}
