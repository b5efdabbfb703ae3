/*
 * Writing a paused VM into a directory store: kernel and initrd, guest memory as fixed-size
 * chunks (all-zero chunks are left out of the manifest), the state blobs, then the manifest
 * and its ref — manifest last, so a half-written snapshot is never visible.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap/snap.h"
#include "vmm/vmm_int.h"

#define VMM_DISK_CHUNK 65536   /* a read-only disk's chunk: small enough that versions share most */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static int put_file(struct snap_store *s, const char *path, uint8_t id[SNAP_HASH_LEN])
{
	struct snap_store_writer w;
	uint8_t buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = snap_store_begin(s, &w);
	while (!r) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		r = snap_store_write(&w, buf, (size_t)n);
	}
	close(fd);
	if (r) {
		snap_store_abort(&w);
		return r;
	}
	return snap_store_commit(&w, NULL, id);
}

/* 1 when the chunk is all zero. Pages never touched are zero without reading them. */
static int chunk_is_zero(const uint8_t *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), npages = len / pg, i;
	unsigned char vec[4096];

	if (npages <= sizeof(vec) && mincore((void *)p, len, vec) == 0) {
		for (i = 0; i < npages; i++)
			if (vec[i] & 1)
				break;
		if (i == npages)
			return 1;
	}
	{
		const uint64_t *q = (const uint64_t *)p;
		size_t n = len / 8;

		for (i = 0; i < n; i++)
			if (q[i])
				return 0;
	}
	return 1;
}

int vmm_snapshot_write(struct vmm *vm, const char *store_dir, const struct vmm_snapshot_info *info,
		       char id_hex[65], char *err, size_t errlen)
{
	uint64_t chunk = (uint64_t)CONFIG_SNAP_CHUNK_KIB * 1024, i;
	struct snap_manifest m;
	struct snap_store *s = NULL;
	uint8_t id[SNAP_HASH_LEN], *blob = NULL;
	char *mtext = NULL;
	size_t blen, mlen;
	int r, v, lockfd = -1;

	snap_manifest_init(&m);
	if (vm->mem_size % chunk)
		return fail(err, errlen, -EINVAL, "guest memory is not a multiple of the %llu KiB chunk",
			    (unsigned long long)(chunk >> 10));
	r = snap_store_init(store_dir);
	if (!r)
		r = snap_store_open(store_dir, &s);
	if (r)
		return fail(err, errlen, r, "store %s: %s", store_dir, strerror(-r));
	r = snap_store_hold(s, &lockfd);   /* until the ref names the chunks */
	if (r) {
		snap_store_close(s);
		return fail(err, errlen, r, "locking store %s: %s", store_dir, strerror(-r));
	}

	if (info->kernel) {
		r = put_file(s, info->kernel, m.kernel);
		if (r) {
			fail(err, errlen, r, "storing kernel %s: %s", info->kernel, strerror(-r));
			goto out;
		}
		m.has_kernel = 1;
	}
	if (info->initrd) {
		r = put_file(s, info->initrd, m.initrd);
		if (r) {
			fail(err, errlen, r, "storing initrd %s: %s", info->initrd, strerror(-r));
			goto out;
		}
		m.has_initrd = 1;
	}

	m.chunks = calloc(vm->mem_size / chunk, sizeof(*m.chunks));
	if (!m.chunks) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < vm->mem_size / chunk; i++) {
		const uint8_t *p = vmm_gmem(vm, vmm_gpa(i * chunk), chunk);

		if (!p) {
			r = fail(err, errlen, -EFAULT, "memory chunk %llu outside guest RAM", (unsigned long long)i);
			goto out;
		}
		if (chunk_is_zero(p, chunk))
			continue;
		r = snap_store_put_buf(s, SNAP_KIND_OBJECT, p, chunk, m.chunks[m.nchunks].id);
		if (r) {
			fail(err, errlen, r, "storing memory chunk %llu: %s", (unsigned long long)i, strerror(-r));
			goto out;
		}
		m.chunks[m.nchunks++].index = i;
	}

	/*
	 * Read-only disks become the manifest's (vda, vdb, ... in device order), chunked into the
	 * store: a restore reads them from their objects. A read-write disk stays the caller's to
	 * give again at restore, so a snapshot may not mix the two (the device order would be lost).
	 */
	{
		int nro = 0, nrw = 0;

		for (int k = 0; k < vm->nvirtio; k++) {
			const char *path;
			int fd, ro;

			if (vm->virtio[k].ops != &vmm_virtio_blk_ops)
				continue;
			vmm_blk_backing(&vm->virtio[k], &fd, &path, &ro);
			if (!ro || fd < 0) {
				nrw += !ro;
				if (fd < 0) {
					r = fail(err, errlen, -EINVAL, "disk %s: an object disk cannot be snapshotted again", path);
					goto out;
				}
				continue;
			}
			if (m.ndisks == SNAP_MAX_DISKS) {
				r = fail(err, errlen, -E2BIG, "more than %d read-only disks", SNAP_MAX_DISKS);
				goto out;
			}
			struct snap_manifest_disk *d = &m.disks[m.ndisks];

			snprintf(d->name, sizeof(d->name), "vd%c", 'a' + nro++);
			if (snap_file_bytes(fd, &d->bytes) < 0 || d->bytes == 0 || d->bytes % 512) {
				r = fail(err, errlen, -EINVAL, "disk %s: not a whole number of 512-byte sectors", path);
				goto out;
			}
			d->chunk_bytes = VMM_DISK_CHUNK;
			m.ndisks++;
			r = snap_chunks_put(s, fd, d->bytes, d->chunk_bytes, &d->chunks, &d->nchunks);
			if (r) {
				fail(err, errlen, r, "storing disk %s: %s", path, strerror(-r));
				goto out;
			}
		}
		if (nro && nrw) {
			r = fail(err, errlen, -EINVAL, "a snapshot records read-only disks only: give every disk ,ro "
				 "(a data disk comes with #33) or none");
			goto out;
		}
	}

	for (v = 0; v < vm->nvcpus; v++) {
		r = vmm_save_vcpu(vm, v, &blob, &blen);
		if (!r)
			r = snap_store_put_buf(s, SNAP_KIND_OBJECT, blob, blen, m.vcpu[v]);
		free(blob);
		blob = NULL;
		if (r) {
			fail(err, errlen, r, "saving vCPU %d: %s", v, strerror(-r));
			goto out;
		}
	}
	r = vmm_save_vm(vm, &blob, &blen);
	if (!r)
		r = snap_store_put_buf(s, SNAP_KIND_OBJECT, blob, blen, m.vm_state);
	free(blob);
	blob = NULL;
	if (r) {
		fail(err, errlen, r, "saving VM state: %s", strerror(-r));
		goto out;
	}
	r = vmm_save_devices(vm, &blob, &blen);
	if (!r)
		r = snap_store_put_buf(s, SNAP_KIND_OBJECT, blob, blen, m.devices);
	free(blob);
	blob = NULL;
	if (r) {
		fail(err, errlen, r, "saving device state: %s", strerror(-r));
		goto out;
	}

	snprintf(m.name, sizeof(m.name), "%s", info->name);
	snprintf(m.cmdline, sizeof(m.cmdline), "%s", info->cmdline ? info->cmdline : "");
	m.memory_bytes = vm->mem_size;
	m.chunk_bytes = chunk;
	m.vcpus = (uint32_t)vm->nvcpus;
	m.cpu_quota = info->cpu_quota ? info->cpu_quota : 100U * (uint32_t)vm->nvcpus;
	m.net = 0;   /* policy-net follows the NIC the guest was given */
	for (int k = 0; k < vm->nvirtio; k++)
		m.net |= vm->virtio[k].ops == &vmm_virtio_net_ops;
	snprintf(m.health_marker, sizeof(m.health_marker), "%s", info->health_marker ? info->health_marker : "");
	m.health_timeout = CONFIG_HEALTH_TIMEOUT_S;
	m.created = (uint64_t)time(NULL);
	r = snap_manifest_format(&m, &mtext, &mlen);
	if (r) {
		fail(err, errlen, r, "formatting the manifest: %s", strerror(-r));
		goto out;
	}
	r = snap_store_put_manifest(s, mtext, mlen, id, err, errlen);
	if (r)
		goto out;
	r = snap_store_ref_set(s, info->name, id);
	if (r) {
		fail(err, errlen, r, "setting ref %s: %s", info->name, strerror(-r));
		goto out;
	}
	snap_hex(id, id_hex);
out:
	free(mtext);
	snap_manifest_free(&m);
	snap_store_unhold(lockfd);
	snap_store_close(s);
	return r;
}
