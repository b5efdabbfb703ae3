/*
 * Save and load of vCPU, VM and device state as self-describing blobs (the container and
 * every layout: vmm/vmstate_abi.h).
 *
 * IMPLEMENTATION NOTES
 * A blob either loads completely or not at all: each is parsed and validated whole before
 * anything is applied. The reader keeps a sticky first error and names the section that was
 * wrong.
 * Loads never trust the blob: counts are bounded, MSR indices must be ones this host's KVM
 * lists, CPUID entry counts are capped, device state must match the devices reattached, queue
 * sizes must be powers of two the device offers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vmm/vmm_int.h"

#define MAX_CPUID 256
#define MAX_MSRS 512

static const char *const vcpu_names[] = { "", "cpuid", "regs", "sregs", "xsave", "xcrs", "debugregs",
					  "lapic", "msrs", "events", "mp_state", "tsc_khz" };
static const char *const vm_names[] = { "", "pic-master", "pic-slave", "ioapic", "pit", "clock" };
static const char *const dev_names[] = { "", "uart", "virtio" };

/* ---- writer ---- */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
	size_t count_at;
	uint32_t count;
};

static void w_put(struct wbuf *w, const void *v, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		uint8_t *p;

		while (cap < w->len + n)
			cap *= 2;
		p = realloc(w->p, cap);
		if (!p) {
			w->err = -ENOMEM;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, v, n);
	w->len += n;
}

static void w_u32(struct wbuf *w, uint32_t v) { w_put(w, &v, 4); }
static void w_u64(struct wbuf *w, uint64_t v) { w_put(w, &v, 8); }

static void w_begin(struct wbuf *w, const char magic[8], uint32_t version)
{
	memset(w, 0, sizeof(*w));
	w_put(w, magic, 8);
	w_u32(w, version);
	w->count_at = w->len;
	w_u32(w, 0);
}

static void w_section(struct wbuf *w, uint32_t tag, const void *v, size_t n)
{
	w_u32(w, tag);
	w_u32(w, (uint32_t)n);
	w_put(w, v, n);
	w->count++;
}

static int w_end(struct wbuf *w, uint8_t **blob, size_t *len)
{
	if (w->err) {
		free(w->p);
		return w->err;
	}
	memcpy(w->p + w->count_at, &w->count, 4);
	*blob = w->p;
	*len = w->len;
	return 0;
}

/* ---- reader ---- */
struct rbuf {
	const uint8_t *p;
	size_t len, off;
	uint32_t next_tag, count, seen;
	const char *const *names;
	char *err;
	size_t errlen;
	int failed;
};

static int r_fail(struct rbuf *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int r_fail(struct rbuf *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->failed) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
		r->failed = 1;
	}
	return -EINVAL;
}

static int r_begin(struct rbuf *r, const uint8_t *p, size_t len, const char magic[8], uint32_t version,
		   uint32_t nsect, const char *const *names, const char *what, char *err, size_t errlen)
{
	uint32_t v;

	memset(r, 0, sizeof(*r));
	r->p = p;
	r->len = len;
	r->names = names;
	r->err = err;
	r->errlen = errlen;
	r->next_tag = 1;
	if (len < 16 || memcmp(p, magic, 8) != 0)
		return r_fail(r, "%s blob: bad magic (not a keel %s state)", what, what);
	memcpy(&v, p + 8, 4);
	if (v != version)
		return r_fail(r, "%s state version %u; this keel reads version %u (a snapshot of %s keel: take it again)",
			      what, v, version, v < version ? "an older" : "a newer");
	memcpy(&r->count, p + 12, 4);
	if (r->count != nsect)
		return r_fail(r, "%s blob: %u sections, version %u has %u", what, r->count, version, nsect);
	r->off = 16;
	return 0;
}

/* The next section: must carry tag `tag`; its length must be `want` unless want == 0. */
static const uint8_t *r_section(struct rbuf *r, uint32_t tag, size_t want, size_t *got)
{
	uint32_t t, n;

	if (r->failed)
		return NULL;
	if (r->len - r->off < 8) {
		r_fail(r, "state blob truncated before section %s", r->names[tag]);
		return NULL;
	}
	memcpy(&t, r->p + r->off, 4);
	memcpy(&n, r->p + r->off + 4, 4);
	if (t != tag) {
		r_fail(r, "state blob: section %u where %s was due", t, r->names[tag]);
		return NULL;
	}
	if (n > r->len - r->off - 8) {
		r_fail(r, "state blob: section %s runs past the end", r->names[tag]);
		return NULL;
	}
	if (want && n != want) {
		r_fail(r, "state blob: section %s has %u bytes, expected %zu", r->names[tag], n, want);
		return NULL;
	}
	r->off += 8;
	*got = n;
	r->off += n;
	return r->p + r->off - n;
}

static int r_end(struct rbuf *r)
{
	if (r->failed)
		return -EINVAL;
	if (r->off != r->len)
		return r_fail(r, "state blob: %zu unexpected bytes after the last section", r->len - r->off);
	return 0;
}

/* ---- vCPU ---- */
static size_t xsave_size(struct vmm *vm)
{
	int n;

	if (vm->xsave_bytes)
		return vm->xsave_bytes;
	n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

const struct kvm_msr_list *vmm_msr_list(struct vmm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;

	if (vm->msr_list)
		return vm->msr_list;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	if (probe.nmsrs > MAX_MSRS)
		return NULL;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return NULL;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return NULL;
	}
	vm->msr_list = l;
	return l;
}

/* Restore order inside KVM_SET_MSRS: the TSC first, the TSC deadline (needs LAPIC + TSC) last. */
static int msr_rank(uint32_t index)
{
	return index == 0x10 ? 0 : index == 0x6e0 ? 2 : 1;
}

static int msr_cmp(const void *a, const void *b)
{
	const struct kvm_msr_entry *x = a, *y = b;
	int rx = msr_rank(x->index), ry = msr_rank(y->index);

	return rx != ry ? rx - ry : (x->index > y->index) - (x->index < y->index);
}

int vmm_save_vcpu(struct vmm *vm, int index, uint8_t **blob, size_t *len)
{
	struct vmm_vcpu *c;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	uint32_t tsc_khz;
	const struct kvm_msr_list *list = NULL;
	/* struct kvm_msrs with room for one entry (its entries[] is a flexible array). */
	union {
		struct kvm_msrs h;
		unsigned char room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} one;
	struct kvm_msr_entry *msrs = NULL;
	void *xsave = NULL;
	size_t xs;
	uint32_t nmsrs = 0, i;
	struct wbuf w;
	int r = -ENOMEM;

	if (index < 0 || index >= vm->nvcpus || !vm->cpuid)
		return -EINVAL;
	c = &vm->vcpu[index];
	xs = xsave_size(vm);
	xsave = calloc(1, xs);
	list = vmm_msr_list(vm);
	if (!xsave || !list)
		goto out;
	msrs = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(*msrs));
	if (!msrs)
		goto out;
	r = -errno;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0 || ioctl(c->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0 ||
	    ioctl(c->fd, xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0 ||
	    ioctl(c->fd, KVM_GET_XCRS, &xcrs) < 0 || ioctl(c->fd, KVM_GET_DEBUGREGS, &dregs) < 0 ||
	    ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0 || ioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
		r = -errno;
		goto out;
	}
	r = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (r <= 0) {
		r = r < 0 ? -errno : -EIO;
		goto out;
	}
	tsc_khz = (uint32_t)r;
	/* One at a time: KVM_GET_MSRS stops at the first MSR this vCPU cannot read. */
	for (i = 0; i < list->nmsrs; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.h.entries[0].index = list->indices[i];
		if (ioctl(c->fd, KVM_GET_MSRS, &one) == 1)
			msrs[nmsrs++] = one.h.entries[0];
	}
	qsort(msrs, nmsrs, sizeof(*msrs), msr_cmp);

	w_begin(&w, VMSTATE_MAGIC_VCPU, VMSTATE_VCPU_VERSION);
	{
		/* APIC ids differ per vCPU: store this vCPU's own table. */
		size_t n = vm->cpuid->nent;
		struct kvm_cpuid2 *cp = malloc(sizeof(*cp) + n * sizeof(cp->entries[0]));
		uint32_t nent = (uint32_t)n;

		if (!cp) {
			w.err = -ENOMEM;
		} else {
			cp->nent = nent;
			if (ioctl(c->fd, KVM_GET_CPUID2, cp) < 0) {
				/* older kernels: the table we set, with this vCPU's APIC id patched */
				memcpy(cp, vm->cpuid, sizeof(*cp) + n * sizeof(cp->entries[0]));
			}
			w_u32(&w, V_CPUID);
			w_u32(&w, (uint32_t)(4 + cp->nent * sizeof(cp->entries[0])));
			w_u32(&w, cp->nent);
			w_put(&w, cp->entries, cp->nent * sizeof(cp->entries[0]));
			w.count++;
			free(cp);
		}
	}
	w_section(&w, V_REGS, &regs, sizeof(regs));
	w_section(&w, V_SREGS, &sregs, sizeof(sregs));
	w_section(&w, V_XSAVE, xsave, xs);
	w_section(&w, V_XCRS, &xcrs, sizeof(xcrs));
	w_section(&w, V_DEBUGREGS, &dregs, sizeof(dregs));
	w_section(&w, V_LAPIC, &lapic, sizeof(lapic));
	w_u32(&w, V_MSRS);
	w_u32(&w, 4 + nmsrs * 16);
	w_u32(&w, nmsrs);
	for (i = 0; i < nmsrs; i++) {
		w_u32(&w, msrs[i].index);
		w_u32(&w, 0);
		w_u64(&w, msrs[i].data);
	}
	w.count++;
	w_section(&w, V_EVENTS, &ev, sizeof(ev));
	w_section(&w, V_MPSTATE, &mp, sizeof(mp));
	w_section(&w, V_TSC_KHZ, &tsc_khz, sizeof(tsc_khz));
	r = w_end(&w, blob, len);
out:
	free(xsave);
	free(msrs);
	return r;
}

static int in_list(const struct kvm_msr_list *l, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < l->nmsrs; i++)
		if (l->indices[i] == index)
			return 1;
	return 0;
}

/* 0 unless the blob's CPUID shows a guest something keel's CPUID policy hides (VMX, SVM, ...). */
static int cpuid_hides_ok(struct rbuf *rd, const struct kvm_cpuid_entry2 *e, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct vmm_cpuid_hide *x = vmm_cpuid_shows_hidden(&e[i]);

		if (x)
			return r_fail(rd, "vCPU blob: CPUID exposes %s (leaf 0x%x), which keel hides from guests",
				      x->what, x->leaf);
	}
	return 0;
}

void vmm_vcpu_state_free(struct vmm_vcpu_state *st)
{
	free(st->cpuid);
	free(st->msrs);
	free(st->xsave);
	free(st->lapic);
	memset(st, 0, sizeof(*st));
}

int vmm_vcpu_state_parse(const uint8_t *blob, size_t len, size_t xsave_bytes, const struct kvm_msr_list *list,
			 struct vmm_vcpu_state *st, char *err, size_t errlen)
{
	struct rbuf rd;
	const uint8_t *s[V_END];
	size_t n[V_END];
	uint32_t cnt, ncpuid, i;
	int t, r;

	memset(st, 0, sizeof(*st));
	r = r_begin(&rd, blob, len, VMSTATE_MAGIC_VCPU, VMSTATE_VCPU_VERSION, V_END - 1, vcpu_names, "vCPU", err, errlen);
	if (r)
		return r;
	for (t = 1; t < V_END; t++) {
		size_t want = 0;

		switch (t) {
		case V_REGS: want = sizeof(struct kvm_regs); break;
		case V_SREGS: want = sizeof(struct kvm_sregs); break;
		case V_XSAVE: want = xsave_bytes; break;
		case V_XCRS: want = sizeof(struct kvm_xcrs); break;
		case V_DEBUGREGS: want = sizeof(struct kvm_debugregs); break;
		case V_LAPIC: want = sizeof(struct kvm_lapic_state); break;
		case V_EVENTS: want = sizeof(struct kvm_vcpu_events); break;
		case V_MPSTATE: want = sizeof(struct kvm_mp_state); break;
		case V_TSC_KHZ: want = sizeof(uint32_t); break;
		default: break;
		}
		s[t] = r_section(&rd, (uint32_t)t, want, &n[t]);
	}
	r = r_end(&rd);
	if (r)
		return r;

	/* CPUID: count bounded and consistent with the length */
	memcpy(&ncpuid, s[V_CPUID], n[V_CPUID] >= 4 ? 4 : 0);
	if (n[V_CPUID] < 4 || ncpuid == 0 || ncpuid > MAX_CPUID ||
	    n[V_CPUID] != 4 + ncpuid * sizeof(struct kvm_cpuid_entry2))
		return r_fail(&rd, "vCPU blob: section cpuid is malformed");
	memcpy(&cnt, s[V_MSRS], n[V_MSRS] >= 4 ? 4 : 0);
	if (n[V_MSRS] < 4 || cnt > MAX_MSRS || n[V_MSRS] != 4 + (size_t)cnt * 16)
		return r_fail(&rd, "vCPU blob: section msrs is malformed");
	memcpy(&st->mp, s[V_MPSTATE], sizeof(st->mp));
	if (st->mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		return r_fail(&rd, "vCPU blob: unknown mp_state %u", st->mp.mp_state);
	memcpy(&st->tsc_khz, s[V_TSC_KHZ], sizeof(st->tsc_khz));
	if (st->tsc_khz < 1000 || st->tsc_khz > 100000000)
		return r_fail(&rd, "vCPU blob: TSC frequency %u kHz is out of range", st->tsc_khz);
	memcpy(&st->xcrs, s[V_XCRS], sizeof(st->xcrs));
	if (st->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return r_fail(&rd, "vCPU blob: %u XCRs (at most %d)", st->xcrs.nr_xcrs, KVM_MAX_XCRS);

	st->cpuid = calloc(1, sizeof(*st->cpuid) + (size_t)ncpuid * sizeof(st->cpuid->entries[0]));
	st->msrs = calloc(1, sizeof(*st->msrs) + (size_t)cnt * sizeof(struct kvm_msr_entry));
	st->xsave = calloc(1, xsave_bytes < sizeof(struct kvm_xsave) ? sizeof(struct kvm_xsave) : xsave_bytes);
	st->lapic = malloc(sizeof(*st->lapic));
	if (!st->cpuid || !st->msrs || !st->xsave || !st->lapic) {
		vmm_vcpu_state_free(st);
		snprintf(err, errlen, "out of memory loading a vCPU");
		return -ENOMEM;
	}
	st->cpuid->nent = ncpuid;
	memcpy(st->cpuid->entries, s[V_CPUID] + 4, (size_t)ncpuid * sizeof(st->cpuid->entries[0]));
	st->msrs->nmsrs = cnt;
	for (i = 0; i < cnt; i++) {
		const uint8_t *e = s[V_MSRS] + 4 + 16 * i;

		memcpy(&st->msrs->entries[i].index, e, 4);
		memcpy(&st->msrs->entries[i].data, e + 8, 8);
		if (!in_list(list, st->msrs->entries[i].index)) {
			r = r_fail(&rd, "vCPU blob: MSR 0x%x is not one this host's KVM saves", st->msrs->entries[i].index);
			goto bad;
		}
	}
	r = cpuid_hides_ok(&rd, st->cpuid->entries, ncpuid);
	if (r)
		goto bad;
	memcpy(&st->regs, s[V_REGS], sizeof(st->regs));
	memcpy(&st->sregs, s[V_SREGS], sizeof(st->sregs));
	memcpy(st->xsave, s[V_XSAVE], xsave_bytes);
	memcpy(&st->dregs, s[V_DEBUGREGS], sizeof(st->dregs));
	memcpy(st->lapic, s[V_LAPIC], sizeof(*st->lapic));
	memcpy(&st->events, s[V_EVENTS], sizeof(st->events));
	return 0;
bad:
	vmm_vcpu_state_free(st);
	return r;
}

int vmm_load_vcpu(struct vmm *vm, int index, const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct vmm_vcpu_state st;
	struct vmm_vcpu *c;
	const struct kvm_msr_list *list;
	int r, have;

	if (index < 0 || index >= vm->nvcpus) {
		snprintf(err, errlen, "vCPU %d does not exist", index);
		return -EINVAL;
	}
	c = &vm->vcpu[index];
	list = vmm_msr_list(vm);
	if (!list) {
		snprintf(err, errlen, "vCPU %d: KVM will not list the MSRs it saves", index);
		return -ENOMEM;
	}
	r = vmm_vcpu_state_parse(blob, len, xsave_size(vm), list, &st, err, errlen);
	if (r)
		return r;

#define SET(req, ptr, what)                                                                     \
	do {                                                                                    \
		if (ioctl(c->fd, req, ptr) < 0) {                                               \
			r = -errno;                                                             \
			snprintf(err, errlen, "vCPU %d: restoring %s: %s", index, what, strerror(errno)); \
			goto out;                                                               \
		}                                                                               \
	} while (0)
	/*
	 * The guest calibrated its TSC once, at boot: a host whose TSC runs at another rate must
	 * scale it (KVM compares within its own tolerance, 250 ppm), or the guest's clock drifts.
	 */
	have = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (have > 0 && (uint64_t)(have > (int)st.tsc_khz ? (uint32_t)have - st.tsc_khz : st.tsc_khz - (uint32_t)have) * 4000 > st.tsc_khz &&
	    ioctl(c->fd, KVM_SET_TSC_KHZ, (unsigned long)st.tsc_khz) < 0) {
		r = -errno;
		snprintf(err, errlen, "vCPU %d: the snapshot's TSC runs at %u kHz, this host's at %d kHz, and KVM cannot scale it: %s",
			 index, st.tsc_khz, have, strerror(errno));
		goto out;
	}
	SET(KVM_SET_CPUID2, st.cpuid, "cpuid");
	SET(KVM_SET_SREGS, &st.sregs, "sregs");
	SET(KVM_SET_REGS, &st.regs, "regs");
	SET(KVM_SET_XSAVE, st.xsave, "xsave");
	SET(KVM_SET_XCRS, &st.xcrs, "xcrs");
	SET(KVM_SET_DEBUGREGS, &st.dregs, "debugregs");
	SET(KVM_SET_LAPIC, st.lapic, "lapic");
	r = ioctl(c->fd, KVM_SET_MSRS, st.msrs);
	if (r < 0 || (uint32_t)r != st.msrs->nmsrs) {
		snprintf(err, errlen, "vCPU %d: KVM refused MSR 0x%x from the snapshot", index,
			 r < 0 ? 0 : st.msrs->entries[r].index);
		r = -EINVAL;
		goto out;
	}
	SET(KVM_SET_VCPU_EVENTS, &st.events, "events");
	SET(KVM_SET_MP_STATE, &st.mp, "mp_state");
#undef SET
	if (index == 0 && !vm->cpuid) {
		vm->cpuid = st.cpuid;
		st.cpuid = NULL;
	}
	r = 0;
out:
	vmm_vcpu_state_free(&st);
	return r;
}

/* ---- VM: irqchip, PIT, clock ---- */
struct clock_sect {
	uint64_t clock;        /* KVM clock (guest ns) at the snapshot */
	uint64_t realtime;     /* host CLOCK_REALTIME ns at the same moment */
};
_Static_assert(sizeof(struct clock_sect) == 16, "clock section layout");

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int vmm_save_vm(struct vmm *vm, uint8_t **blob, size_t *len)
{
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;
	struct clock_sect cs;
	struct wbuf w;
	int i;

	for (i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = (uint32_t)i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0)
			return -errno;
	}
	memset(&clk, 0, sizeof(clk));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0 || ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0)
		return -errno;
	cs.realtime = (clk.flags & KVM_CLOCK_REALTIME) ? clk.realtime : realtime_ns();
	cs.clock = clk.clock;
	w_begin(&w, VMSTATE_MAGIC_VM, VMSTATE_VM_VERSION);
	w_section(&w, M_PIC0, &chip[0], sizeof(chip[0]));
	w_section(&w, M_PIC1, &chip[1], sizeof(chip[1]));
	w_section(&w, M_IOAPIC, &chip[2], sizeof(chip[2]));
	w_section(&w, M_PIT, &pit, sizeof(pit));
	w_section(&w, M_CLOCK, &cs, sizeof(cs));
	return w_end(&w, blob, len);
}

int vmm_vm_state_parse(const uint8_t *blob, size_t len, struct vmm_vm_state *st, char *err, size_t errlen)
{
	struct rbuf rd;
	const uint8_t *s[M_END];
	size_t n[M_END];
	int t, r;

	r = r_begin(&rd, blob, len, VMSTATE_MAGIC_VM, VMSTATE_VM_VERSION, M_END - 1, vm_names, "VM", err, errlen);
	if (r)
		return r;
	for (t = 1; t < M_END; t++)
		s[t] = r_section(&rd, (uint32_t)t, t == M_PIT ? sizeof(st->pit) : t == M_CLOCK ? 16 : sizeof(st->chip[0]),
				 &n[t]);
	r = r_end(&rd);
	if (r)
		return r;
	for (t = M_PIC0; t <= M_IOAPIC; t++) {
		memcpy(&st->chip[t - M_PIC0], s[t], sizeof(st->chip[0]));
		if (st->chip[t - M_PIC0].chip_id != (uint32_t)(t - M_PIC0))
			return r_fail(&rd, "VM blob: section %s holds chip %u", vm_names[t], st->chip[t - M_PIC0].chip_id);
	}
	memcpy(&st->pit, s[M_PIT], sizeof(st->pit));
	memcpy(&st->clock, s[M_CLOCK], 8);
	memcpy(&st->realtime, s[M_CLOCK] + 8, 8);
	return 0;
}

int vmm_load_vm(struct vmm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct vmm_vm_state st;
	int i, r;

	r = vmm_vm_state_parse(blob, len, &st, err, errlen);
	if (r)
		return r;
	for (i = 0; i < 3; i++) {
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st.chip[i]) < 0) {
			snprintf(err, errlen, "restoring %s: %s", vm_names[M_PIC0 + i], strerror(errno));
			return -errno;
		}
	}
	if (vm->pit_deferred)
		vm->pit_state = st.pit;   /* loaded by the PIT thread once the PIT exists */
	else if (ioctl(vm->vm_fd, KVM_SET_PIT2, &st.pit) < 0) {
		snprintf(err, errlen, "restoring the PIT: %s", strerror(errno));
		return -errno;
	}
	vm->saved_clock = st.clock;
	vm->saved_realtime = st.realtime;
	return 0;
}

/*
 * The guest's clock after a restore: the KVM clock continues from the snapshot plus the wall
 * time that passed since (KVM_SET_CLOCK moves kvmclock for every vCPU; the guest's wall clock
 * is its boot time plus kvmclock), so uptime grows and `date` is right at once. Then every
 * vCPU's kvmclock is flagged "guest was stopped" so the soft-lockup watchdog stays quiet.
 */
int vmm_clock_resume(struct vmm *vm)
{
	struct kvm_clock_data clk;
	uint64_t now = realtime_ns();
	int i;

	memset(&clk, 0, sizeof(clk));
	clk.clock = vm->saved_clock + (now > vm->saved_realtime ? now - vm->saved_realtime : 0);
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0)
		return -errno;
	for (i = 0; i < vm->nvcpus; i++)
		ioctl(vm->vcpu[i].fd, KVM_KVMCLOCK_CTRL, 0);  /* EINVAL when the guest has no kvmclock */
	return 0;
}

/* ---- devices ---- */

int vmm_save_devices(struct vmm *vm, uint8_t **blob, size_t *len)
{
	struct vmstate_uart u;
	struct wbuf w;
	size_t body = 4;
	int i;

	vmm_uart_save(&vm->uart, &u);
	w_begin(&w, VMSTATE_MAGIC_DEVS, VMSTATE_DEVS_VERSION);
	w_section(&w, D_UART, &u, sizeof(u));
	for (i = 0; i < vm->nvirtio; i++)
		body += sizeof(struct vmstate_virtio) + 4 + vm->virtio[i].ops->state_size;
	w_u32(&w, D_VIRTIO);
	w_u32(&w, (uint32_t)body);
	w_u32(&w, (uint32_t)vm->nvirtio);
	for (i = 0; i < vm->nvirtio; i++) {
		const struct vmm_virtio *d = &vm->virtio[i];
		struct vmstate_virtio t;
		uint8_t st[VMM_DEV_PRIV];

		vmm_virtio_save(d, &t);
		w_put(&w, &t, sizeof(t));
		w_u32(&w, (uint32_t)d->ops->state_size);
		if (d->ops->state_size) {
			memset(st, 0, sizeof(st));
			d->ops->save(d, st);
			w_put(&w, st, d->ops->state_size);
		}
	}
	w.count++;
	return w_end(&w, blob, len);
}

int vmm_dev_state_parse(const uint8_t *blob, size_t len, struct vmm_dev_state *st, char *err, size_t errlen)
{
	struct rbuf rd;
	const uint8_t *su, *sv;
	size_t nu, nv, off = 4;
	uint32_t i;
	int r;

	r = r_begin(&rd, blob, len, VMSTATE_MAGIC_DEVS, VMSTATE_DEVS_VERSION, D_END - 1, dev_names, "device", err,
		    errlen);
	if (r)
		return r;
	su = r_section(&rd, D_UART, sizeof(st->uart), &nu);
	sv = r_section(&rd, D_VIRTIO, 0, &nv);
	if ((r = r_end(&rd)))
		return r;
	memcpy(&st->uart, su, sizeof(st->uart));
	if (vmm_uart_check(&st->uart) < 0)
		return r_fail(&rd, "device blob: UART state out of range");
	if (nv < 4)
		return r_fail(&rd, "device blob: section virtio is malformed");
	memcpy(&st->n, sv, 4);
	if (st->n > VMM_MAX_VIRTIO)
		return r_fail(&rd, "device blob: %u virtio devices, at most %d", st->n, VMM_MAX_VIRTIO);
	for (i = 0; i < st->n; i++) {
		const struct vmm_virtio_ops *kind;
		const char *why;
		uint32_t slen;

		if (nv - off < sizeof(struct vmstate_virtio) + 4)
			return r_fail(&rd, "device blob: virtio device %u truncated", i);
		memcpy(&st->dev[i].transport, sv + off, sizeof(struct vmstate_virtio));
		memcpy(&slen, sv + off + sizeof(struct vmstate_virtio), 4);
		off += sizeof(struct vmstate_virtio) + 4;
		kind = vmm_virtio_kind(st->dev[i].transport.device_id);
		if (!kind)
			return r_fail(&rd, "device blob: virtio device %u (ID %u) is not one keel provides", i,
				      st->dev[i].transport.device_id);
		if ((why = vmm_virtio_check(&st->dev[i].transport, kind)))
			return r_fail(&rd, "device blob: %s device %u: %s", kind->name, i, why);
		if (slen != kind->state_size || nv - off < slen)
			return r_fail(&rd, "device blob: %s device %u: %u bytes of its own state, expected %zu", kind->name,
				      i, slen, kind->state_size);
		st->dev[i].kind = kind;
		st->dev[i].state = sv + off;
		off += slen;
	}
	if (off != nv)
		return r_fail(&rd, "device blob: section virtio is malformed");
	return 0;
}

int vmm_load_devices(struct vmm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct vmm_dev_state st;
	struct vmm_config cfg;
	int seen[VMM_MAX_VIRTIO] = { 0 }, r;
	uint32_t i;

	r = vmm_dev_state_parse(blob, len, &st, err, errlen);
	if (r)
		return r;
	/* what backs a device (a disk) comes from the caller, in device order, one for one */
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.disks, vm->disks, sizeof(cfg.disks));
	cfg.ndisks = vm->ndisks;
	cfg.warn = vm->warn;
	cfg.warn_ctx = vm->warn_ctx;
	/* a NIC is the snapshot's: it comes back with the caller's backend, or with its link down */
	cfg.net_fd = vm->net_fd;
	memcpy(cfg.net_mac, vm->net_mac, 6);
	for (i = 0; i < st.n; i++)
		cfg.nic += st.dev[i].kind == &vmm_virtio_net_ops;
	for (int k = 0; vmm_virtio_kinds[k]; k++) {
		const struct vmm_virtio_ops *kind = vmm_virtio_kinds[k];
		uint32_t n = 0;

		for (i = 0; i < st.n; i++)
			n += st.dev[i].kind == kind;
		if (kind->init && n != (uint32_t)kind->count(&cfg)) {
			snprintf(err, errlen, "the snapshot has %u %s device%s, %d given (reattach each disk with --disk)", n,
				 kind->name, n == 1 ? "" : "s", kind->count(&cfg));
			return -EINVAL;
		}
	}
	for (i = 0; i < (uint32_t)vm->nvirtio; i++)
		vmm_virtio_destroy(&vm->virtio[i]);
	vm->nvirtio = 0;
	for (i = 0; i < st.n; i++) {
		const struct vmm_virtio_ops *kind = st.dev[i].kind;
		struct vmm_virtio *d = &vm->virtio[i];
		int k;

		for (k = 0; vmm_virtio_kinds[k] != kind; k++)
			;
		r = vmm_virtio_init(d, kind, &cfg, seen[k]++, err, errlen);
		if (r)
			return r;
		vm->nvirtio = (int)i + 1;
		if (kind->load && (r = kind->load(d, st.dev[i].state, err, errlen)))
			return r;
		vmm_virtio_restore(d, &st.dev[i].transport);
	}
	vmm_place_devices(vm);
	vmm_uart_load(&vm->uart, &st.uart);
	return 0;
}
