/*
 * Restore: manifest -> a paused VM ready to resume, through struct snap_source only (the same
 * code serves the directory store and the partition image).
 *
 * IMPLEMENTATION NOTES
 * Guest memory is never copied: one anonymous MAP_NORESERVE region stands for the zero chunks,
 * and every stored chunk is mapped over it MAP_PRIVATE|MAP_FIXED straight from the source's fd
 * and offset (directory store: the object file; partition image: the chunk's page-aligned
 * offset in the image). Chunks adjacent both in guest memory and in the same file share one
 * mmap, so the cost is at most one mmap per non-zero chunk whatever the memory size, and clones
 * share page cache until they write (copy-on-write). Chunk objects are not re-hashed here: the
 * store verified them when they were filed (init re-verifies the partition image before it
 * starts a restore), and hashing would read all of guest memory; their
 * sizes, alignment and indices are checked. The small blobs (manifest, state) are read with
 * snap_source_read, which re-verifies their hash.
 * Setup order, and what overlaps: a thread creates the VM (the slowest single KVM call on the
 * hosts measured) while this one reads the manifest, maps memory and reads every state blob;
 * then memory slot before irqchip (see kvm_x86_64.c) and the vCPUs; each vCPU thread loads its
 * own state while this one loads device and VM state; KVM_SET_CLOCK last, right before the
 * vCPU threads pass their gate in vmm_run. The PIT is created and loaded on a thread of its own
 * started after the vCPUs exist (kvm_x86_64.c says why), not on the resume path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snap/snap.h"
#include "vmm/vmm_int.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

#define VMM_STATE_BLOB_MAX (4U << 20)

static int read_blob(const struct snap_source *src, const uint8_t id[SNAP_HASH_LEN], const char *what,
		     uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	char hex[SNAP_HEX_LEN + 1];
	/* state blobs are a few KiB (vCPU: XSAVE area, MSRs, CPUID): a bigger claim is refused unread */
	int r = snap_source_read_max(src, SNAP_KIND_OBJECT, id, VMM_STATE_BLOB_MAX, buf, len);

	if (r) {
		snap_hex(id, hex);
		return fail(err, errlen, r, "%s object %.16s...: %s", what, hex,
			    r == -EBADMSG ? "corrupt (hash mismatch)" : strerror(-r));
	}
	return 0;
}

/* One mmap for a run of chunks that are adjacent both in guest memory and in the same file. */
static int map_run(uint8_t *mem, const struct snap_manifest *m, uint64_t first, uint64_t n, int fd, uint64_t off,
		   char *err, size_t errlen)
{
	if (mmap(mem + first * m->chunk_bytes, n * m->chunk_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		 fd, (off_t)off) == MAP_FAILED)
		return fail(err, errlen, -errno, "mapping memory chunk %llu: %s", (unsigned long long)first,
			    strerror(errno));
	return 0;
}

static int map_memory(const struct snap_source *src, const struct snap_manifest *m, uint8_t **out,
		      char *err, size_t errlen)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t run_first = 0, run_n = 0, run_off = 0;
	int run_fd = -1, r;
	uint8_t *mem;
	size_t i;

	mem = mmap(NULL, m->memory_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return fail(err, errlen, -errno, "mapping %llu MiB of guest memory: %s",
			    (unsigned long long)(m->memory_bytes >> 20), strerror(errno));
	for (i = 0; i < m->nchunks; i++) {
		const struct snap_manifest_chunk *c = &m->chunks[i];
		uint64_t off, len;
		int fd;

		if (c->index >= m->memory_bytes / m->chunk_bytes || (i && c->index <= m->chunks[i - 1].index)) {
			r = fail(err, errlen, -EINVAL, "manifest chunk map is out of order or out of range");
			goto fail;
		}
		r = src->locate(src->ctx, SNAP_KIND_OBJECT, c->id, &fd, &off, &len);
		if (r) {
			fail(err, errlen, r, "memory chunk %llu: %s", (unsigned long long)c->index,
			     r == -ENOENT ? "object missing" : strerror(-r));
			goto fail;
		}
		if (len != m->chunk_bytes || off % pg) {
			r = fail(err, errlen, -EINVAL, "memory chunk %llu has %llu bytes at offset %llu (want %llu, page-aligned)",
				 (unsigned long long)c->index, (unsigned long long)len,
				 (unsigned long long)off, (unsigned long long)m->chunk_bytes);
			goto fail;
		}
		if (run_n && fd == run_fd && c->index == run_first + run_n && off == run_off + run_n * m->chunk_bytes) {
			run_n++;
			continue;
		}
		if (run_n && (r = map_run(mem, m, run_first, run_n, run_fd, run_off, err, errlen)))
			goto fail;
		run_first = c->index;
		run_n = 1;
		run_fd = fd;
		run_off = off;
	}
	if (run_n && (r = map_run(mem, m, run_first, run_n, run_fd, run_off, err, errlen)))
		goto fail;
	*out = mem;
	return 0;
fail:
	munmap(mem, m->memory_bytes);
	return r;
}

/* Waits until *flag is set (0) or the main thread gave up (-ECANCELED). */
static int setup_wait(struct vmm *vm, const int *flag)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	while (!*flag && !vm->setup_abort)
		pthread_cond_wait(&vm->cond, &vm->lock);
	r = *flag ? 0 : -ECANCELED;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

static void setup_signal(struct vmm *vm, int *flag, int value)
{
	pthread_mutex_lock(&vm->lock);
	*flag = value;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * vCPU 0's thread: creates the VM (the slowest single KVM call here: ~0.25 ms, the first in a
 * process) while the main thread reads the manifest and maps memory; then memory slot, irqchip,
 * the vCPUs and the other vCPU threads; then it becomes vCPU 0 (loads its state, waits at the
 * gate, runs).
 */
static void *setup_main(void *arg)
{
	struct vmm *vm = arg;
	const char *what = "KVM setup";
	char err[200];
	int r;

	r = vmm_kvm_create_vm(vm);
	if (!r && !vmm_msr_list(vm))
		r = -EIO;
	if (!r)
		r = setup_wait(vm, &vm->setup_mem_ready);
	if (!r)
		r = vmm_kvm_memory(vm, vm->mem_size, vm->nvcpus, vm->mem);
	if (!r) {
		what = "creating vCPUs";
		r = vmm_kvm_create_vcpus(vm);
	}
	if (!r)
		r = setup_wait(vm, &vm->setup_blobs_ready);
	if (!r && vm->nvcpus > 1) {
		what = "starting the vCPU threads";
		r = vmm_start_gated(vm, 1);
	}
	if (!r) {
		uint64_t t0 = vmm_now_ns();

		r = vmm_load_vm(vm, vm->setup_vm_blob, vm->setup_vm_len, err, sizeof(err));
		if (r) {
			what = NULL;
		} else {
			what = "starting the PIT thread";
			r = vmm_kvm_start_pit(vm);
		}
		vm->timing.vm_state = vmm_now_ns() - t0;
	}
	if (r) {
		pthread_mutex_lock(&vm->lock);
		if (what)
			snprintf(vm->setup_err, sizeof(vm->setup_err), "%s: %s", what, strerror(-r));
		else
			snprintf(vm->setup_err, sizeof(vm->setup_err), "%s", err);
		vm->setup_rc = r;
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		vmm_vcpu_thread_exit(vm);
		return NULL;
	}
	vmm_vcpu_thread(&vm->vcpu[0]);
	return NULL;
}

/* State blobs: they outlive restore_from until vCPU 0's thread is done with them or joined. */
struct blobs {
	uint8_t *dev, *vms, *vcpu[CONFIG_VMM_MAX_VCPUS];
	size_t dev_len, vms_len, vcpu_len[CONFIG_VMM_MAX_VCPUS];
};

static void blobs_free(struct blobs *b)
{
	int i;

	free(b->dev);
	free(b->vms);
	for (i = 0; i < CONFIG_VMM_MAX_VCPUS; i++)
		free(b->vcpu[i]);
}

static int restore_from(const struct snap_source *src, const char *name, const struct vmm_config *cfg,
			struct vmm *vm, struct blobs *b, char *err, size_t errlen, uint64_t t_start)
{
	struct snap_manifest m;
	uint8_t id[SNAP_HASH_LEN], *buf = NULL;
	size_t len;
	uint64_t t0;
	char perr[200];
	int r, i;

	snap_manifest_init(&m);
	r = snap_source_resolve(src, name, id);
	if (r) {
		fail(err, errlen, r, "%s: %s", name,
		     r == -ENOENT ? "no such snapshot" : r == -EINVAL ? "neither a name nor a manifest id" : strerror(-r));
		goto out;
	}
	r = snap_source_read(src, SNAP_KIND_MANIFEST, id, &buf, &len);
	if (r) {
		fail(err, errlen, r, "manifest of %s: %s", name, r == -EBADMSG ? "corrupt (hash mismatch)" : strerror(-r));
		goto out;
	}
	r = snap_manifest_parse(buf, len, &m, perr, sizeof(perr));
	free(buf);
	if (r) {
		fail(err, errlen, r, "manifest of %s: %s", name, perr);
		goto out;
	}
	if (m.memory_bytes < VMM_MIN_MEM || m.memory_bytes > VMM_MAX_MEM || m.memory_bytes % (2ULL << 20) ||
	    m.chunk_bytes < 4096 || m.memory_bytes % m.chunk_bytes || m.vcpus < 1 || m.vcpus > CONFIG_VMM_MAX_VCPUS) {
		r = fail(err, errlen, -EINVAL, "manifest of %s: memory %llu / chunk %llu / %u vCPUs out of range",
			 name, (unsigned long long)m.memory_bytes, (unsigned long long)m.chunk_bytes, m.vcpus);
		goto out;
	}
	t0 = vmm_now_ns();
	vm->timing.manifest = t0 - t_start;
	r = map_memory(src, &m, &vm->mem, err, errlen);
	if (r)
		goto out;
	vm->timing.map = vmm_now_ns() - t0;
	pthread_mutex_lock(&vm->lock);
	vm->mem_size = m.memory_bytes;
	vm->nvcpus = (int)m.vcpus;
	vm->setup_mem_ready = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);

	/* every state blob read (and its hash checked) before KVM sees any of it */
	t0 = vmm_now_ns();
	r = read_blob(src, m.devices, "device state", &b->dev, &b->dev_len, err, errlen);
	if (!r)
		r = read_blob(src, m.vm_state, "VM state", &b->vms, &b->vms_len, err, errlen);
	for (i = 0; !r && i < (int)m.vcpus; i++)
		r = read_blob(src, m.vcpu[i], "vCPU state", &b->vcpu[i], &b->vcpu_len[i], err, errlen);
	if (r)
		goto out;
	for (i = 0; i < (int)m.vcpus; i++) {
		vm->vcpu[i].load_blob = b->vcpu[i];
		vm->vcpu[i].load_len = b->vcpu_len[i];
	}
	vm->setup_vm_blob = b->vms;
	vm->setup_vm_len = b->vms_len;
	setup_signal(vm, &vm->setup_blobs_ready, 1);

	vm->out_fd = cfg->out_fd;
	vm->warn = cfg->warn;
	vm->warn_ctx = cfg->warn_ctx;
	vm->in_fd = cfg->in_fd;
	vm->ready_fd = cfg->ready_fd;
	vm->announce_restored = 1;
	for (i = 0; i < cfg->ndisks; i++)
		vm->disks[i] = cfg->disks[i];
	vm->ndisks = cfg->ndisks;
	if (m.ndisks && cfg->ndisks) {
		r = fail(err, errlen, -EINVAL, "%s has its own disks (in its manifest): give no --disk", name);
		goto out;
	}
	/* the manifest's read-only disks, read from their chunk objects in the snapshot's source */
	for (i = 0; i < (int)m.ndisks && i < VMM_MAX_DISKS; i++) {
		r = snap_disk_open(src, &m.disks[i], &vm->obj_disks[i], err, errlen);
		if (r)
			goto out;
		snprintf(vm->obj_names[i], sizeof(vm->obj_names[i]), "%s", m.disks[i].name);
		vm->disks[i].path = vm->obj_names[i];
		vm->disks[i].ro = 1;
		vm->disks[i].object = vm->obj_disks[i];
		vm->ndisks = i + 1;
	}
	vm->net_fd = cfg->nic ? cfg->net_fd : -1;
	memcpy(vm->net_mac, cfg->net_mac, 6);
	if (cfg->health_marker && *cfg->health_marker)
		snprintf(vm->health_buf, sizeof(vm->health_buf), "%s", cfg->health_marker);
	else
		snprintf(vm->health_buf, sizeof(vm->health_buf), "%s", m.health_marker);
	vm->health_marker = vm->health_buf[0] ? vm->health_buf : NULL;
	r = vmm_load_devices(vm, b->dev, b->dev_len, err, errlen);
	if (r)
		goto out;
	vm->timing.devices = vmm_now_ns() - t0;
	r = vmm_wait_loaded(vm, err, errlen);
	if (r)
		goto out;
	r = vmm_clock_resume(vm);
	if (r) {
		fail(err, errlen, r, "setting the guest clock: %s", strerror(-r));
		goto out;
	}
	/* Clones must not be twins: a new VM generation ID, its interrupt pending when the vCPUs run. */
	r = vmm_vmgenid_renew(vm);
	if (!r)
		r = vmm_vmgenid_notify(vm);
	if (r)
		fail(err, errlen, r, "VM generation ID: %s", strerror(-r));
out:
	snap_manifest_free(&m);
	return r;
}

int vmm_restore_open(const struct snap_source *src, const char *name, const struct vmm_config *cfg,
		     struct vmm **out, char *err, size_t errlen)
{
	uint64_t t_start = vmm_now_ns();
	struct blobs b;
	struct vmm *vm;
	int r;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	vm = vmm_alloc();
	if (!vm)
		return fail(err, errlen, -ENOMEM, "out of memory");
	/* vCPU 0's thread starts on KVM at once; until the manifest says more there is one vCPU */
	vm->nvcpus = 1;
	vm->pit_deferred = 1;
	vm->gated = 1;
	vm->t_start_ns = t_start;
	vm->confine = cfg->confine;
	r = vmm_spawn_vcpu_thread(vm, 0, setup_main, vm);
	if (r) {
		vmm_destroy(vm);
		return fail(err, errlen, r, "starting the vCPU thread: %s", strerror(-r));
	}
	r = restore_from(src, name, cfg, vm, &b, err, errlen, t_start);
	if (r) {
		setup_signal(vm, &vm->setup_abort, 1);
		vmm_destroy(vm);   /* joins vCPU 0's thread: then nothing reads the blobs */
		blobs_free(&b);
		return r;
	}
	blobs_free(&b);   /* every vCPU has loaded its state */
	vm->setup_vm_blob = NULL;
	*out = vm;
	return 0;
}

int vmm_restore_run(const struct snap_source *src, const char *name, const struct vmm_config *cfg,
		    struct vmm_timing *timing, char *err, size_t errlen)
{
	struct vmm *vm;
	int r = vmm_restore_open(src, name, cfg, &vm, err, errlen);

	if (r)
		return r < 0 ? r : -EINVAL;
	r = vmm_run(vm);
	if (timing)
		*timing = *vmm_timings(vm);
	if (r != VMM_EXIT_POWEROFF) {
		snprintf(err, errlen, "%s", vmm_error(vm));
		if (r >= 0)
			r = -EIO;   /* a reset, or the snapshot marker: neither is how a sandbox ends */
	}
	vmm_destroy(vm);
	return r;
}
