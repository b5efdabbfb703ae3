/* The VMM with the tiny guest on /dev/kvm: memory and register round trips, strict state blobs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "snap/snap.h"
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

static struct vmm *boot(const char *cmdline, const char *marker, int *out_fd)
{
	char path[600], err[256];
	struct vmm_config cfg = { .mem_bytes = 64ULL << 20, .vcpus = 1, .kernel = tiny(), .cmdline = cmdline,
				  .in_fd = -1, .ready_fd = -1, .snapshot_marker = marker };
	struct vmm *vm = NULL;

	snprintf(path, sizeof(path), "%s/console", t_tmpdir());
	*out_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cfg.out_fd = *out_fd;
	if (vmm_create(&cfg, &vm, err, sizeof(err)) != 0)
		t_fail(__FILE__, __LINE__, "vmm_create: %s", err);
	return vm;
}

static void console(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
}

TEST(guest_reads_host_memory_and_host_reads_guest_memory)
{
	int fd;
	struct vmm *vm = boot("tiny=mem", NULL, &fd);
	uint64_t *src, *dst, sum = 0;
	char out[4096], want[64];
	int i;

	REQUIRE(vm);
	src = vmm_mem(vm, 0x200000, 4096 * 8);
	REQUIRE(src);
	for (i = 0; i < 4096; i++) {
		src[i] = (uint64_t)i * 7919 + 13;
		sum += src[i] * (uint64_t)(i + 1);
	}
	CHECK_EQ(vmm_run(vm), VMM_EXIT_POWEROFF);
	console(fd, out, sizeof(out));
	snprintf(want, sizeof(want), "tiny: sum %llx\n", (unsigned long long)sum);
	CHECK(strstr(out, want) != NULL);
	dst = vmm_mem(vm, 0x300000, 4096 * 8);
	REQUIRE(dst);
	for (i = 0; i < 4096; i++)
		if (dst[i] != (uint64_t)i * 0x9e3779b97f4a7c15ULL)
			break;
	CHECK_EQ(i, 4096);
	CHECK(vmm_mem(vm, vmm_mem_size(vm) - 8, 16) == NULL);
	vmm_destroy(vm);
	close(fd);
}

/* Section tag -> offset and length inside a blob (the blob is trusted here: we made it). */
static const uint8_t *section(const uint8_t *b, size_t len, uint32_t tag, uint32_t *n)
{
	size_t off = 16;

	while (off + 8 <= len) {
		uint32_t t, l;

		memcpy(&t, b + off, 4);
		memcpy(&l, b + off + 4, 4);
		if (t == tag) {
			*n = l;
			return b + off + 8;
		}
		off += 8 + l;
	}
	return NULL;
}

TEST(vcpu_state_round_trips_and_the_guest_continues)
{
	int fd;
	struct vmm *vm = boot("tiny=count n=5", "count 2.", &fd);
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	char err[256], out[4096];
	uint32_t tags[] = { 1, 2, 3, 4, 5, 6, 10, 11 }, na = 0, nb = 0;
	unsigned i;

	REQUIRE(vm);
	REQUIRE(vmm_run(vm) == VMM_EXIT_SNAPSHOT);
	REQUIRE(vmm_save_vcpu(vm, 0, &a, &alen) == 0);
	CHECK_EQ(vmm_load_vcpu(vm, 0, a, alen, err, sizeof(err)), 0);
	REQUIRE(vmm_save_vcpu(vm, 0, &b, &blen) == 0);
	CHECK_EQ(alen, blen);
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		const uint8_t *sa = section(a, alen, tags[i], &na), *sb = section(b, blen, tags[i], &nb);

		CHECK(sa && sb && na == nb && memcmp(sa, sb, na) == 0);
	}
	CHECK_EQ(vmm_run(vm), VMM_EXIT_POWEROFF);
	console(fd, out, sizeof(out));
	CHECK(strstr(out, "tiny: count 3.\ntiny: count 4.\ntiny: count 5.\n") != NULL);
	CHECK(strstr(out, "tiny: tsc monotonic") != NULL);
	free(a);
	free(b);
	vmm_destroy(vm);
	close(fd);
}

TEST(corrupt_state_blobs_are_refused_with_a_message)
{
	int fd;
	struct vmm *vm = boot("tiny=count n=3", "count 1.", &fd);
	uint8_t *a = NULL, *bad, *d = NULL, *v = NULL;
	size_t alen, dlen, vlen, l;
	char err[256];
	uint32_t n = 0;
	uint8_t *msr;

	REQUIRE(vm);
	REQUIRE(vmm_run(vm) == VMM_EXIT_SNAPSHOT);
	REQUIRE(vmm_save_vcpu(vm, 0, &a, &alen) == 0);
	REQUIRE(vmm_save_devices(vm, &d, &dlen) == 0);
	REQUIRE(vmm_save_vm(vm, &v, &vlen) == 0);
	bad = malloc(alen + 1);
	REQUIRE(bad);
	for (l = 0; l < alen; l += (l < 64 ? 1 : 97)) {
		err[0] = 0;
		memcpy(bad, a, l);
		CHECK_EQ(vmm_load_vcpu(vm, 0, bad, l, err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0);
	}
	memcpy(bad, a, alen);
	bad[alen] = 0;
	CHECK_EQ(vmm_load_vcpu(vm, 0, bad, alen + 1, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "after the last section") != NULL);
	msr = (uint8_t *)section(bad, alen, 8, &n);
	REQUIRE(msr && n >= 20);
	memcpy(msr + 4, "\xef\xbe\xad\xde", 4);
	CHECK_EQ(vmm_load_vcpu(vm, 0, bad, alen, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "MSR 0xdeadbeef") != NULL);
	memcpy(bad, a, alen);
	msr = (uint8_t *)section(bad, alen, 1, &n);
	memcpy(msr, "\xff\xff\xff\x7f", 4);
	CHECK_EQ(vmm_load_vcpu(vm, 0, bad, alen, err, sizeof(err)), -EINVAL);
	CHECK_EQ(vmm_load_vcpu(vm, 5, a, alen, err, sizeof(err)), -EINVAL);
	/* the TSC frequency: saved (this host's, in kHz) and range-checked before any KVM call */
	memcpy(bad, a, alen);
	msr = (uint8_t *)section(bad, alen, 11, &n);
	REQUIRE(msr && n == 4);
	{
		uint32_t khz;

		memcpy(&khz, msr, 4);
		CHECK(khz > 100000);
	}
	memset(msr, 0, 4);
	CHECK_EQ(vmm_load_vcpu(vm, 0, bad, alen, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "TSC frequency 0 kHz") != NULL);
	/* devices: the UART's receive count past its FIFO */
	bad = realloc(bad, dlen);
	REQUIRE(bad);
	memcpy(bad, d, dlen);
	msr = (uint8_t *)section(bad, dlen, 1, &n);
	REQUIRE(msr && n > 11);
	msr[10] = 200;
	CHECK_EQ(vmm_load_devices(vm, bad, dlen, err, sizeof(err)), -EINVAL);
	CHECK_EQ(vmm_load_vm(vm, d, dlen, err, sizeof(err)), -EINVAL);   /* wrong kind of blob */
	CHECK(strstr(err, "magic") != NULL);
	/* the untouched blobs still load, and the guest still finishes */
	CHECK_EQ(vmm_load_devices(vm, d, dlen, err, sizeof(err)), 0);
	CHECK_EQ(vmm_load_vm(vm, v, vlen, err, sizeof(err)), 0);
	CHECK_EQ(vmm_load_vcpu(vm, 0, a, alen, err, sizeof(err)), 0);
	CHECK_EQ(vmm_run(vm), VMM_EXIT_POWEROFF);
	free(bad);
	free(a);
	free(d);
	free(v);
	vmm_destroy(vm);
	close(fd);
}

/*
 * ref "bad" in store dir: ref "t" with the blob of kind which (0: vCPU 0, 1: VM state, 2: vCPU 0
 * again) replaced by a copy whose TSC frequency is zeroed, whose magic is broken, or whose CPUID
 * shows the guest SVM (nested virtualisation, which keel hides). Its hash is right: only the
 * VMM's own checks, on the thread that loads it, can refuse it.
 */
static void make_bad_ref(const char *dir, int which)
{
	struct snap_store *s = NULL;
	struct snap_manifest m;
	uint8_t id[SNAP_HASH_LEN], *mb = NULL, *blob = NULL, *sec;
	size_t mlen, blen;
	uint32_t n = 0;
	char err[200], *text = NULL;
	size_t tlen;

	snap_manifest_init(&m);
	REQUIRE(snap_store_open(dir, &s) == 0);
	REQUIRE(snap_store_ref_get(s, "t", id) == 0);
	REQUIRE(snap_store_get(s, SNAP_KIND_MANIFEST, id, &mb, &mlen) == 0);
	REQUIRE(snap_manifest_parse(mb, mlen, &m, err, sizeof(err)) == 0);
	REQUIRE(snap_store_get(s, SNAP_KIND_OBJECT, which == 1 ? m.vm_state : m.vcpu[0], &blob, &blen) == 0);
	if (which == 1) {
		memcpy(blob, "KEELNONE", 8);
	} else if (which == 2) {
		struct kvm_cpuid_entry2 e;
		uint32_t i, cnt, found = 0;

		sec = (uint8_t *)section(blob, blen, 1, &n);
		REQUIRE(sec && n >= 4);
		memcpy(&cnt, sec, 4);
		for (i = 0; i < cnt; i++) {
			memcpy(&e, sec + 4 + i * sizeof(e), sizeof(e));
			if (e.function == 0x80000001) {
				e.ecx |= 1U << 2;
				memcpy(sec + 4 + i * sizeof(e), &e, sizeof(e));
				found = 1;
			}
		}
		REQUIRE(found);
	} else {
		sec = (uint8_t *)section(blob, blen, 11, &n);
		REQUIRE(sec && n == 4);
		memset(sec, 0, 4);
	}
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, blob, blen, which == 1 ? m.vm_state : m.vcpu[0]) == 0);
	REQUIRE(snap_manifest_format(&m, &text, &tlen) == 0);
	REQUIRE(snap_store_put_manifest(s, text, tlen, id, err, sizeof(err)) == 0);
	REQUIRE(snap_store_ref_set(s, "bad", id) == 0);
	free(text);
	free(blob);
	free(mb);
	snap_manifest_free(&m);
	snap_store_close(s);
}

/* vmm_restore_open from the directory store dir (test_acpi.c uses it too). */
int t_restore_dir(const char *dir, const char *name, const struct vmm_config *cfg, struct vmm **vm, char *err,
		  size_t errlen);
int t_restore_dir(const char *dir, const char *name, const struct vmm_config *cfg, struct vmm **vm, char *err,
		  size_t errlen)
{
	struct snap_store *s;
	struct snap_source src;
	int r = snap_store_open(dir, &s);

	if (r)
		return r;
	snap_store_source(s, &src);
	r = vmm_restore_open(&src, name, cfg, vm, err, errlen);
	snap_store_close(s);
	return r;
}

TEST(state_the_vcpu_threads_refuse_fails_the_restore_in_one_line_and_the_good_one_runs)
{
	struct vmm_config cfg = { .mem_bytes = 64ULL << 20, .vcpus = 1, .kernel = tiny(), .cmdline = "tiny=count n=3",
				  .out_fd = -1, .in_fd = -1, .ready_fd = -1, .snapshot_marker = "count 1." };
	struct vmm_snapshot_info info = { .kernel = cfg.kernel, .cmdline = cfg.cmdline, .name = "t" };
	struct vmm_config rc = { .out_fd = -1, .in_fd = -1, .ready_fd = -1 };
	struct vmm *vm = NULL;
	char err[256], id[65], dir[600];

	snprintf(dir, sizeof(dir), "%s/store", t_tmpdir());
	REQUIRE(vmm_create(&cfg, &vm, err, sizeof(err)) == 0);
	REQUIRE(vmm_run(vm) == VMM_EXIT_SNAPSHOT);
	REQUIRE(vmm_snapshot_write(vm, dir, &info, id, err, sizeof(err)) == 0);
	vmm_destroy(vm);
	vm = NULL;

	/* loaded by vCPU 0's own thread */
	make_bad_ref(dir, 0);
	err[0] = 0;
	CHECK_EQ(t_restore_dir(dir, "bad", &rc, &vm, err, sizeof(err)), -EINVAL);
	CHECK(vm == NULL);
	CHECK(strstr(err, "TSC frequency 0 kHz") != NULL && !strchr(err, '\n'));
	/* loaded by the setup thread before it becomes vCPU 0 */
	make_bad_ref(dir, 1);
	err[0] = 0;
	CHECK_EQ(t_restore_dir(dir, "bad", &rc, &vm, err, sizeof(err)), -EINVAL);
	CHECK(vm == NULL);
	CHECK(strstr(err, "magic") != NULL && !strchr(err, '\n'));
	/* a vCPU that was shown SVM: refused, not filtered (the guest may already use it) */
	make_bad_ref(dir, 2);
	err[0] = 0;
	CHECK_EQ(t_restore_dir(dir, "bad", &rc, &vm, err, sizeof(err)), -EINVAL);
	CHECK(vm == NULL);
	CHECK(strstr(err, "CPUID exposes SVM") != NULL && !strchr(err, '\n'));
	/* and nothing of that stays behind: the good snapshot restores and the guest finishes */
	REQUIRE(t_restore_dir(dir, "t", &rc, &vm, err, sizeof(err)) == 0);
	CHECK_EQ(vmm_run(vm), VMM_EXIT_POWEROFF);
	vmm_destroy(vm);
}
