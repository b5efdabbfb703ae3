/*
 * One thread per vCPU running KVM_RUN and serving its exits; the caller's thread waits for
 * events (power off, reset, errors, the snapshot marker) and feeds console input.
 *
 * IMPLEMENTATION NOTES
 * Pausing: pause_req is set first, then every vCPU thread gets SIGUSR1, whose handler sets
 * kvm_run.immediate_exit. A thread that sees pause_req enters KVM_RUN once more with
 * immediate_exit set: KVM then completes an I/O or MMIO instruction whose exit was just
 * served (its state is only consistent after that) and returns EINTR without running the
 * guest. Only then does the thread count itself paused, so saved state is always complete.
 *
 * A guest that can never run again is found here, not read from its console: when no vCPU has
 * left KVM for user space for a whole second (a halted guest does no I/O), the main loop parks
 * the vCPUs and looks at their state (guest_dead); every vCPU halted with
 * interrupts masked and nothing pending (or still waiting for a start-up IPI only such a vCPU
 * could send) is a stop. A console line that was lost or split can then no longer leave a
 * halted guest and a VMM that waits for ever.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

/* A kernel without ACPI (acpi=off, the tiny test guest) has no power-off method: "poweroff"
 * ends in a halt, so its last console line counts as power off. With ACPI the S5 write does. */
#define POWEROFF_LINE "reboot: Power down"
#define HALT_LINE "reboot: System halted"

static __thread struct vmm_vcpu *tls_vcpu;

static void kick_handler(int sig)
{
	(void)sig;
	if (tls_vcpu && tls_vcpu->run)
		tls_vcpu->run->immediate_exit = 1;
}

void vmm_event_locked(struct vmm *vm, int ev, const char *msg)
{
	uint64_t one = 1;

	if (vm->event == VMM_EV_NONE) {
		vm->event = ev;
		/* The vCPU that printed the marker must not run on: it parks at its next loop turn. */
		if (ev == VMM_EV_SNAPSHOT)
			vm->pause_req = 1;
		if (msg)
			snprintf(vm->error, sizeof(vm->error), "%s", msg);
	}
	if (write(vm->event_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in practice; the event is recorded anyway */
	}
}

void vmm_raise_event(struct vmm *vm, int ev, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vm->lock);
	vmm_event_locked(vm, ev, msg);
	pthread_mutex_unlock(&vm->lock);
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static int line_ends_with(const struct vmm *vm, const char *m)
{
	size_t n = strlen(m);

	return n && vm->line_len >= n && memcmp(vm->line + vm->line_len - n, m, n) == 0;
}

/* Called with vm->lock held, from the UART's transmitter. */
void vmm_console_out(struct vmm *vm, uint8_t c)
{
	if (vm->out_fd >= 0)
		write_all(vm->out_fd, &c, 1);
	if (c == '\n' || c == '\r') {
		vm->line_len = 0;
		return;
	}
	if (vm->line_len == sizeof(vm->line)) {
		memmove(vm->line, vm->line + sizeof(vm->line) / 2, sizeof(vm->line) / 2);
		vm->line_len = sizeof(vm->line) / 2;
	}
	vm->line[vm->line_len++] = (char)c;
	if (vm->snapshot_marker && line_ends_with(vm, vm->snapshot_marker)) {
		vm->snapshot_marker = NULL;
		vmm_event_locked(vm, VMM_EV_SNAPSHOT, NULL);
	}
	if (!vm->healthy && vm->health_marker && line_ends_with(vm, vm->health_marker)) {
		vm->healthy = 1;
		if (vm->ready_fd >= 0)
			write_all(vm->ready_fd, "healthy\n", 8);
	}
	/* The kernel's last word when it stops on purpose. */
	if (line_ends_with(vm, POWEROFF_LINE) || line_ends_with(vm, HALT_LINE))
		vmm_event_locked(vm, VMM_EV_POWEROFF, NULL);
}

static struct vmm_virtio *find_virtio(struct vmm *vm, uint64_t addr)
{
	int i;

	for (i = 0; i < vm->nvirtio; i++)
		if (addr >= vm->virtio[i].base && addr < vm->virtio[i].base + VMM_MMIO_SIZE)
			return &vm->virtio[i];
	return NULL;
}

void vmm_pio(struct vmm *vm, uint16_t port, int out, uint8_t *data, unsigned size)
{
	for (int i = 0; vmm_pio_devs[i]; i++) {
		const struct vmm_pio_ops *d = vmm_pio_devs[i];
		int irq;

		if (port < d->port || port >= d->port + d->nports)
			continue;
		if (d->byte_wide && size != 1)
			break;
		pthread_mutex_lock(&vm->lock);
		irq = d->io(vm, port - d->port, out, data, size);
		pthread_mutex_unlock(&vm->lock);
		if (irq > 0 && d->irq)
			vmm_irq_pulse(vm, d->irq);
		return;
	}
	/* Nothing else is there: an open bus reads all ones (so probes find no device). */
	if (!out)
		memset(data, 0xff, size);
}

#define HALT_CHECK_NS 1000000000ULL

/* 2: halted for good (interrupts masked, nothing pending), 1: waiting for a start-up IPI, 0: alive. */
static int vcpu_stuck(struct vmm_vcpu *c)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_vcpu_events ev;

	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		return 0;
	if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
		return 1;
	if (mp.mp_state != KVM_MP_STATE_HALTED)
		return 0;
	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0 || (regs.rflags & 0x200))   /* IF */
		return 0;
	memset(&ev, 0, sizeof(ev));
	if (ioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ev.nmi.pending || ev.nmi.injected ||
	    ev.exception.injected || ev.interrupt.injected || ev.smi.pending)
		return 0;
	return 2;
}

/* Parks every vCPU, looks, lets them go on: 1 when none of them can ever run again. */
static int guest_dead(struct vmm *vm)
{
	int i, halted = 0, dead = 1, busy;

	pthread_mutex_lock(&vm->lock);
	busy = vm->pause_req || vm->event != VMM_EV_NONE || vm->running < vm->nvcpus;
	pthread_mutex_unlock(&vm->lock);
	if (busy)
		return 0;
	vmm_pause_all(vm);
	for (i = 0; i < vm->nvcpus && dead; i++) {
		int st = vcpu_stuck(&vm->vcpu[i]);

		dead = st != 0;
		halted |= st == 2;
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->event != VMM_EV_SNAPSHOT)   /* the marker may have come meanwhile: it keeps them parked */
		vm->pause_req = 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return dead && halted;
}

void vmm_mmio(struct vmm *vm, uint64_t addr, int is_write, uint8_t *data, unsigned len)
{
	struct vmm_virtio *d = find_virtio(vm, addr);
	int irq = 0;

	if (!d || len > 8) {
		if (!is_write)
			memset(data, 0xff, len > 8 ? 8 : len);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	if (is_write)
		irq = vmm_virtio_mmio_write(vm, d, addr - d->base, data, len);
	else
		vmm_virtio_mmio_read(vm, d, addr - d->base, data, len);
	pthread_mutex_unlock(&vm->lock);
	if (irq > 0)
		vmm_irq_pulse(vm, d->irq);
}

static int handle_exit(struct vmm_vcpu *c)
{
	struct vmm *vm = c->vm;
	struct kvm_run *run = c->run;

	__atomic_add_fetch(&vm->exits, 1, __ATOMIC_RELAXED);
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		uint8_t *p = (uint8_t *)run + run->io.data_offset;
		uint32_t i;

		if (run->io.data_offset + (uint64_t)run->io.count * run->io.size > vm->run_size)
			return -EINVAL;
		for (i = 0; i < run->io.count; i++, p += run->io.size)
			vmm_pio(vm, run->io.port, run->io.direction == KVM_EXIT_IO_OUT, p, run->io.size);
		return 0;
	}
	case KVM_EXIT_MMIO:
		vmm_mmio(vm, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data, run->mmio.len);
		return 0;
	case KVM_EXIT_SHUTDOWN:
		vmm_raise_event(vm, VMM_EV_RESET, "guest reset (triple fault)");
		return 1;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vmm_raise_event(vm, VMM_EV_POWEROFF, "guest powered off");
		else
			vmm_raise_event(vm, VMM_EV_RESET, "guest reset (system event %u)", run->system_event.type);
		return 1;
	case KVM_EXIT_HLT:
		vmm_raise_event(vm, VMM_EV_ERROR, "vCPU %d halted with no interrupt controller", c->index);
		return 1;
	case KVM_EXIT_FAIL_ENTRY:
		vmm_raise_event(vm, VMM_EV_ERROR, "vCPU %d entry failed (hardware reason 0x%llx)", c->index,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return 1;
	case KVM_EXIT_INTERNAL_ERROR:
		vmm_raise_event(vm, VMM_EV_ERROR, "vCPU %d: KVM internal error %u (guest crashed?)", c->index,
				run->internal.suberror);
		return 1;
	default:
		vmm_raise_event(vm, VMM_EV_ERROR, "vCPU %d: unexpected KVM exit %u", c->index, run->exit_reason);
		return 1;
	}
}

static void park(struct vmm_vcpu *c)
{
	struct vmm *vm = c->vm;

	c->run->immediate_exit = 1;
	if (ioctl(c->fd, KVM_RUN, 0) == 0)
		handle_exit(c);   /* not expected with immediate_exit; serve it rather than drop it */
	c->run->immediate_exit = 0;
	pthread_mutex_lock(&vm->lock);
	vm->paused++;
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_req && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->paused--;
	pthread_mutex_unlock(&vm->lock);
}

void vmm_vcpu_thread(struct vmm_vcpu *c)
{
	struct vmm *vm = c->vm;
	unsigned long spins = 0;
	int confined = 0;
	sigset_t s;

	tls_vcpu = c;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	if (c->load_blob) {
		/* restore: each vCPU loads its own state while the main thread loads the VM's */
		uint64_t t0 = vmm_now_ns();

		c->load_rc = vmm_load_vcpu(vm, c->index, c->load_blob, c->load_len, c->load_err,
					   sizeof(c->load_err));
		if (c->index == 0)
			vm->timing.vcpu_state = vmm_now_ns() - t0;
		/* narrowed now, while the main thread still loads devices: not on the resume path */
		if (!c->load_rc && vm->confine) {
			if (vm->confine(VMM_THREAD_VCPU) == 0) {
				confined = 1;
			} else {
				c->load_rc = -EPERM;
				snprintf(c->load_err, sizeof(c->load_err), "vCPU %d: confining the thread failed",
					 c->index);
			}
		}
		pthread_mutex_lock(&vm->lock);
		vm->loaded++;
		pthread_cond_broadcast(&vm->cond);
		while (!vm->gate_open && !vm->stop_req)
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_unlock(&vm->lock);
	}
	if (vm->confine && !confined) {   /* a thread that could not narrow its filter runs no guest */
		vmm_vcpu_thread_exit(vm);
		return;
	}
	for (;;) {
		if (vm->stop_req)
			break;
		if (vm->pause_req) {
			park(c);
			continue;
		}
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			/* kicks explain a few; an endless stream without a single exit is a KVM fault */
			if ((errno == EINTR || errno == EAGAIN) && ++spins < 10000) {
				c->run->immediate_exit = 0;
				continue;
			}
			vmm_raise_event(vm, VMM_EV_ERROR, "vCPU %d: KVM_RUN: %s", c->index, strerror(errno));
			break;
		}
		spins = 0;
		if (c->index == 0 && !vm->t_first_exit_ns)
			vm->t_first_exit_ns = vmm_now_ns();
		if (handle_exit(c))
			break;
	}
	vmm_vcpu_thread_exit(vm);
}

void vmm_vcpu_thread_exit(struct vmm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void *vcpu_main(void *arg)
{
	vmm_vcpu_thread(arg);
	return NULL;
}

static void kick_all(struct vmm *vm)
{
	int i;

	for (i = 0; i < vm->nvcpus; i++)
		if (vm->vcpu[i].started)
			pthread_kill(vm->vcpu[i].thread, SIGUSR1);
}

int vmm_pause_all(struct vmm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = 1;
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	while (vm->paused < vm->running)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vmm_resume_all(struct vmm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = 0;
	vm->event = VMM_EV_NONE;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void stop_all(struct vmm *vm)
{
	int i;

	pthread_mutex_lock(&vm->lock);
	vm->stop_req = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	for (i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpu[i].started) {
			pthread_join(vm->vcpu[i].thread, NULL);
			vm->vcpu[i].started = 0;
		}
	}
}

int vmm_spawn_vcpu_thread(struct vmm *vm, int i, void *(*fn)(void *), void *arg)
{
	static int handler_installed;
	sigset_t s, old;
	int r;

	if (!handler_installed) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = kick_handler;   /* no SA_RESTART: KVM_RUN must return */
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGUSR1, &sa, NULL) < 0)
			return -errno;
		handler_installed = 1;
	}
	/* Threads start with SIGUSR1 blocked and unblock it once tls_vcpu is set. */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s, &old);
	pthread_mutex_lock(&vm->lock);
	vm->running++;
	pthread_mutex_unlock(&vm->lock);
	r = pthread_create(&vm->vcpu[i].thread, NULL, fn, arg);
	if (r) {
		pthread_mutex_lock(&vm->lock);
		vm->running--;
		pthread_mutex_unlock(&vm->lock);
	} else {
		vm->vcpu[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

/* Threads of vCPUs first..nvcpus-1; on failure the caller stops the ones that started. */
static int start_threads(struct vmm *vm, int first)
{
	int i, r;

	for (i = first; i < vm->nvcpus; i++) {
		r = vmm_spawn_vcpu_thread(vm, i, vcpu_main, &vm->vcpu[i]);
		if (r)
			return r;
	}
	return 0;
}

void vmm_stop(struct vmm *vm)
{
	stop_all(vm);
}

int vmm_start_gated(struct vmm *vm, int first)
{
	return start_threads(vm, first);   /* vm->gated was set before vCPU 0's thread started */
}

int vmm_wait_loaded(struct vmm *vm, char *err, size_t errlen)
{
	int i;

	pthread_mutex_lock(&vm->lock);
	while (vm->loaded < vm->nvcpus && !vm->setup_rc)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	if (vm->setup_rc) {
		snprintf(err, errlen, "%s", vm->setup_err);
		return vm->setup_rc;
	}
	for (i = 0; i < vm->nvcpus; i++) {
		vm->vcpu[i].load_blob = NULL;
		if (vm->vcpu[i].load_rc) {
			snprintf(err, errlen, "%s", vm->vcpu[i].load_err);
			return vm->vcpu[i].load_rc;
		}
	}
	return 0;
}

/*
 * The devices' backends the I/O thread watches (ops->poll): one pollfd per device, fd -1 when
 * idle. Interrupts a device left pending (a config change found at restore) are raised here.
 */
static int backends_poll(struct vmm *vm, struct pollfd *p)
{
	uint32_t raise[VMM_MAX_VIRTIO];
	int n = 0, nraise = 0;

	pthread_mutex_lock(&vm->lock);
	for (int i = 0; i < vm->nvirtio; i++) {
		struct vmm_virtio *d = &vm->virtio[i];

		p[n].fd = -1;
		p[n].events = 0;
		p[n].revents = 0;
		if (d->ops->poll)
			p[n].fd = d->ops->poll(vm, d, &p[n].events);
		if (d->irq_pending) {
			d->irq_pending = 0;
			raise[nraise++] = d->irq;
		}
		n++;
	}
	pthread_mutex_unlock(&vm->lock);
	for (int i = 0; i < nraise; i++)
		vmm_irq_pulse(vm, raise[i]);
	return n;
}

static void backends_ready(struct vmm *vm, const struct pollfd *p, int n)
{
	for (int i = 0; i < n && i < vm->nvirtio; i++) {
		struct vmm_virtio *d = &vm->virtio[i];
		int irq;

		if (p[i].fd < 0 || !p[i].revents)
			continue;
		pthread_mutex_lock(&vm->lock);
		irq = d->ops->ready(vm, d, p[i].revents);
		pthread_mutex_unlock(&vm->lock);
		if (irq > 0)
			vmm_irq_pulse(vm, d->irq);
	}
}

int vmm_run_loop(struct vmm *vm)
{
	uint8_t pending[64];
	size_t npending = 0, poff = 0;
	uint64_t next_check;
	unsigned long seen_exits = 0;
	int in_open = vm->in_fd >= 0;
	int r;

	if (vm->gated) {
		vm->t_resume_ns = vmm_now_ns();
		pthread_mutex_lock(&vm->lock);
		vm->gate_open = 1;
		vm->gated = 0;
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		if (vm->announce_restored && vm->ready_fd >= 0)
			write_all(vm->ready_fd, "restored\n", 9);
	} else if (!vm->vcpu[0].started) {
		vm->t_resume_ns = vmm_now_ns();
		r = start_threads(vm, 0);
		if (r) {
			stop_all(vm);
			return r;
		}
		if (vm->announce_restored && vm->ready_fd >= 0)
			write_all(vm->ready_fd, "restored\n", 9);
	} else {
		vmm_resume_all(vm);
	}
	if (vm->confine && vm->confine(VMM_THREAD_IO) != 0) {
		stop_all(vm);
		return -EPERM;
	}
	next_check = vmm_now_ns() + HALT_CHECK_NS;
	for (;;) {
		struct pollfd p[2 + VMM_MAX_VIRTIO] = { { .fd = vm->event_fd, .events = POLLIN },
							{ .fd = in_open && !npending ? vm->in_fd : -1, .events = POLLIN } };
		int np = 2 + backends_poll(vm, p + 2);
		uint64_t now;
		int ev;

		r = poll(p, (nfds_t)np, npending ? 10 : (int)(HALT_CHECK_NS / 1000000));
		if (r < 0 && errno != EINTR)
			return -errno;
		now = vmm_now_ns();
		if (now >= next_check) {
			unsigned long exits = __atomic_load_n(&vm->exits, __ATOMIC_RELAXED);
			int quiet = exits == seen_exits;

			/* A guest doing I/O is alive: only a quiet one is worth parking (each look kicks
			 * every vCPU out of KVM_RUN, which is not free, least of all nested). */
			seen_exits = exits;
			next_check = now + HALT_CHECK_NS;
			if (quiet && guest_dead(vm)) {
				if (vm->warn)
					vm->warn(vm->warn_ctx, "every vCPU halted with interrupts off: the guest stopped");
				vmm_raise_event(vm, VMM_EV_POWEROFF, "every vCPU halted with interrupts off");
			}
		}
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(vm->event_fd, &v, sizeof(v)) < 0) {
				/* drained elsewhere; the event field is what counts */
			}
		}
		pthread_mutex_lock(&vm->lock);
		ev = vm->event;
		pthread_mutex_unlock(&vm->lock);
		if (ev == VMM_EV_SNAPSHOT) {
			vmm_pause_all(vm);
			return VMM_EXIT_SNAPSHOT;
		}
		if (ev != VMM_EV_NONE) {
			stop_all(vm);
			if (ev == VMM_EV_POWEROFF)
				return VMM_EXIT_POWEROFF;
			if (ev == VMM_EV_RESET)
				return VMM_EXIT_RESET;
			return -EIO;
		}
		if (r > 0)
			backends_ready(vm, p + 2, np - 2);
		if (p[1].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(vm->in_fd, pending, sizeof(pending));
			if (n <= 0) {
				in_open = 0;
			} else {
				npending = (size_t)n;
				poff = 0;
			}
		}
		if (npending) {
			int irq;
			size_t took;

			pthread_mutex_lock(&vm->lock);
			took = vmm_uart_rx(&vm->uart, pending + poff, npending, &irq);
			pthread_mutex_unlock(&vm->lock);
			poff += took;
			npending -= took;
			if (irq)
				vmm_irq_pulse(vm, VMM_UART_IRQ);
		}
	}
}
