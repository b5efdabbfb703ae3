/* `keel vm run|restore`: the tool front end of the VMM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init/cli.h"
#include "init/cgroup.h"
#include "init/jail.h"
#include "vmm/vmm_int.h"
#include "snap/snap.h"

static const char help_text[] =
	"usage: keel vm run --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--mem MiB] [--vcpus N]\n"
	"                   [--disk FILE[,ro]]... [--rng] [--nic tap:NAME|fd:N|none] [--timing]\n"
	"                   [--snapshot-on MARKER --store DIR --name NAME [--health MARKER]\n"
	"                    [--cpu-quota PERCENT]]\n"
	"       keel vm restore (--store DIR | --image IMG) NAME|ID [--ready-fd N] [--health MARKER]\n"
	"                   [--disk FILE[,ro]]... [--timing] [--jail-uid UID] [--netns PATH | --no-jail]\n"
	"                   [--cgroup DIR] [--nic tap:NAME|fd:N|none]\n"
	"\n"
	"run boots a kernel in a KVM microVM: a bzImage (boot protocol >= 2.12, 64-bit entry) or an\n"
	"ELF image (vmlinux, tiny test guests) entered in 64-bit mode, with a 16550 UART on 0x3f8\n"
	"(IRQ 4) as the console on stdin/stdout, and virtio-mmio devices: --disk adds a virtio-blk\n"
	"on an image file or a block device (',ro' read-only), --rng a virtio-rng fed by the host's\n"
	"getrandom(), --nic a virtio-net whose frames go to a TAP device (made if missing) or to an open\n"
	"descriptor that carries one frame per read and write (a SOCK_SEQPACKET socket; PID 1 gives each\n"
	"sandbox one to keel's network process) or to nothing (none: no link, e.g. for a snapshot PID 1\n"
	"links up); its MAC is derived from /etc/machine-id and --name. The machine is described\n"
	"by hardware-reduced ACPI tables (MADT for the vCPUs, a DSDT with the UART, each virtio-mmio\n"
	"device and a VM generation ID) and an MP table; a guest given acpi=off gets its devices as\n"
	"virtio_mmio.device=4K@ADDR:IRQ on the command line instead. Default command line:\n"
	"\"console=ttyS0 reboot=t panic=-1\"; default 256 MiB, 1 vCPU.\n"
	"Exit status: 0 when the guest powers off (ACPI S5; without ACPI the kernel's \"reboot: Power\n"
	"down\" or \"reboot: System halted\" line), 1 on a reset (ACPI reset register, reboot, triple\n"
	"fault, crash) or error.\n"
	"\n"
	"--snapshot-on MARKER: when MARKER appears on the console, pause every vCPU, write the guest\n"
	"(memory chunks, vCPU/VM/device state, kernel, initrd) and a manifest into the store DIR, point\n"
	"ref NAME at it, print the manifest id and exit 0. --health sets the manifest's health marker,\n"
	"--cpu-quota its policy-cpu-quota (percent of one CPU, default 100 per vCPU).\n"
	"\n"
	"restore rebuilds the VM from a manifest (ref NAME or manifest id) and resumes it: memory is\n"
	"mapped copy-on-write from the store or the partition image, the wall clock is moved to now and\n"
	"the guest gets a new VM generation ID (its kernel reseeds its RNG). --ready-fd N receives\n"
	"\"restored\\n\" once the vCPUs run and \"healthy\\n\" once the health marker (--health, else\n"
	"the manifest's) appears. Exit status as for run; a bad snapshot is one line on stderr, exit 1.\n"
	"--timing prints the setup steps' durations on stderr. A snapshot taken with a NIC restores\n"
	"with one: on --nic's backend, or with its link down when none is given.\n"
	"restore runs jailed (as PID 1 runs every sandbox): new namespaces, an empty read-only root\n"
	"(a --store is bound read-only into it), uid --jail-uid (default 64900) with no capabilities,\n"
	"no_new_privs and seccomp allow-lists per thread; anything else the VMM calls kills it with\n"
	"SIGSYS. --netns puts it in that network namespace (e.g. /run/netns/NAME) instead of an empty\n"
	"one of its own. It needs root; --no-jail runs unconfined, for debugging.\n"
	"--cgroup DIR limits it as PID 1 limits a sandbox: cgroup v2 DIR is made (its parent's cpu,\n"
	"memory and pids controllers enabled), given the manifest's cpu quota, memory + the VMM's\n"
	"allowance, vCPUs + 8 tasks and memory.oom.group, and joined before the guest runs.\n";

static void print_timing(const struct vmm_timing *t)
{
	fprintf(stderr,
		"timing: vm_create %.1f us, mem_slots %.1f us, irqchip %.1f us, vcpus %.1f us, vcpu_state %.1f us, "
		"vm_state %.1f us, devices %.1f us, manifest %.1f us, map %.1f us, total %.1f us, first_exit %.1f us\n",
		t->vm_create / 1e3, t->mem_slots / 1e3, t->irqchip / 1e3, t->vcpus / 1e3, t->vcpu_state / 1e3,
		t->vm_state / 1e3, t->devices / 1e3, t->manifest / 1e3, t->map / 1e3, t->total / 1e3,
		t->first_exit / 1e3);
}

/* What the guest did wrong, one line each, on stderr (PID 1 collects it with the console). */
static void warn_stderr(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "keel: vm: %s\n", line);
}

static double us_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

/* --cgroup DIR: what PID 1 does for a sandbox, by hand: DIR made, the manifest's limits written, joined. */
static int enter_cgroup(const struct snap_source *src, const char *name, const char *dir, int timing)
{
	struct snap_manifest m;
	struct init_limits l;
	struct init_cg cg;
	struct timespec t0, t1, t2;
	uint8_t id[SNAP_HASH_LEN], *buf;
	char parent[256], why[400];
	const char *leaf;
	size_t len;
	int r;

	if ((r = snap_source_resolve(src, name, id)) < 0)
		return cli_error("vm restore", "%s: %s", name, strerror(-r));
	if ((r = snap_source_read(src, SNAP_KIND_MANIFEST, id, &buf, &len)) < 0)
		return cli_error("vm restore", "manifest of %s: %s", name, strerror(-r));
	r = snap_manifest_parse(buf, len, &m, why, sizeof(why));
	free(buf);
	if (r < 0)
		return cli_error("vm restore", "manifest of %s: %s", name, why);
	init_limits_manifest(m.vcpus, m.cpu_quota, m.memory_bytes, &l);
	snap_manifest_free(&m);
	leaf = strrchr(dir, '/');
	if (!leaf || leaf == dir || !leaf[1] || (size_t)(leaf - dir) >= sizeof(parent))
		return cli_usage("vm restore", "--cgroup %s: expected /PATH/TO/PARENT/NAME", dir);
	memcpy(parent, dir, (size_t)(leaf - dir));
	parent[leaf - dir] = 0;
	leaf++;
	/* setup is what PID 1 does once at boot; enter what each sandbox child does */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (init_cg_setup(&cg, parent, why, sizeof(why)) < 0)
		return cli_error("vm restore", "%s", why);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (init_cg_enter(&cg, leaf, &l, why, sizeof(why)) < 0)
		return cli_error("vm restore", "%s", why);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (timing)
		fprintf(stderr, "timing: cgroup setup %.1f us, cgroup %.1f us\n", us_between(&t0, &t1),
			us_between(&t1, &t2));
	return 0;
}

static int parse_disk(struct vmm_config *cfg, char *arg)
{
	char *comma = strrchr(arg, ',');

	if (cfg->ndisks >= VMM_MAX_DISKS)
		return -E2BIG;
	cfg->disks[cfg->ndisks].ro = 0;
	if (comma && !strcmp(comma, ",ro")) {
		*comma = 0;
		cfg->disks[cfg->ndisks].ro = 1;
	} else if (comma && !strcmp(comma, ",rw")) {
		*comma = 0;
	}
	if (!*arg)
		return -EINVAL;
	cfg->disks[cfg->ndisks++].path = arg;
	return 0;
}

/* --nic SPEC: the backend opened, the MAC of this machine and name. */
static int nic_setup(struct vmm_config *cfg, const char *spec, const char *name, const char *cmd)
{
	char err[200], box[64] = "";
	FILE *f = fopen("/etc/machine-id", "re");

	if (vmm_nic_open(spec, &cfg->net_fd, err, sizeof(err)) < 0)
		return cli_error(cmd, "%s", err);
	if (f) {
		if (!fgets(box, sizeof(box), f))
			box[0] = 0;
		fclose(f);
	}
	if (!box[0])
		gethostname(box, sizeof(box) - 1);
	vmm_nic_mac(box, name, cfg->net_mac);
	cfg->nic = 1;
	return 0;
}

static int parse_mem(const char *s, uint64_t *out)
{
	unsigned long long v;
	size_t n = strlen(s);

	if (cli_parse_size(s, &v))
		return -EINVAL;
	if (n && s[n - 1] >= '0' && s[n - 1] <= '9')
		v <<= 20;   /* a bare number is MiB */
	*out = v;
	return 0;
}

/* Finishes a run: 0 power off, 1 reset or error (one line on stderr). */
static int finish(const char *cmd, struct vmm *vm, int r, int timing)
{
	if (timing)
		print_timing(vmm_timings(vm));
	if (r == VMM_EXIT_POWEROFF)
		return 0;
	if (r == VMM_EXIT_RESET)
		return cli_error(cmd, "%s", vmm_error(vm));
	return cli_error(cmd, "%s", vmm_error(vm));
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'n' }, { "disk", required_argument, NULL, 'd' },
		{ "rng", no_argument, NULL, 'r' }, { "snapshot-on", required_argument, NULL, 's' },
		{ "store", required_argument, NULL, 'S' }, { "name", required_argument, NULL, 'N' },
		{ "health", required_argument, NULL, 'H' }, { "timing", no_argument, NULL, 't' },
		{ "irqchip-first", no_argument, NULL, 'I' }, { "cpu-quota", required_argument, NULL, 'q' },
		{ "nic", required_argument, NULL, 'A' }, { NULL, 0, NULL, 0 },
	};
	unsigned long cpu_quota = 0;
	struct vmm_config cfg = { .mem_bytes = 256ULL << 20, .vcpus = 1, .out_fd = 1, .in_fd = 0, .ready_fd = -1,
				  .cmdline = "console=ttyS0 reboot=t panic=-1", .warn = warn_stderr };
	const char *store = NULL, *name = NULL, *nic = NULL;
	char err[256];
	struct vmm *vm;
	int c, r, timing = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'm':
			if (parse_mem(optarg, &cfg.mem_bytes))
				return cli_usage("vm run", "bad --mem %s (MiB)", optarg);
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > CONFIG_VMM_MAX_VCPUS)
				return cli_usage("vm run", "--vcpus must be 1..%d", CONFIG_VMM_MAX_VCPUS);
			cfg.vcpus = (int)v;
			break;
		}
		case 'd':
			if (parse_disk(&cfg, optarg))
				return cli_usage("vm run", "bad --disk %s (FILE[,ro], at most %d)", optarg, VMM_MAX_DISKS);
			break;
		case 'r': cfg.rng = 1; break;
		case 's': cfg.snapshot_marker = optarg; break;
		case 'S': store = optarg; break;
		case 'N': name = optarg; break;
		case 'H': cfg.health_marker = optarg; break;
		case 't': timing = 1; break;
		case 'I': cfg.irqchip_first = 1; break;
		case 'A': nic = optarg; break;
		case 'q': {
			char *end;
			cpu_quota = strtoul(optarg, &end, 10);
			if (*end || cpu_quota < 1 || cpu_quota > 100UL * CONFIG_VMM_MAX_VCPUS)
				return cli_usage("vm run", "--cpu-quota must be 1..%d", 100 * CONFIG_VMM_MAX_VCPUS);
			break;
		}
		default:
			return cli_usage("vm run", "unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_usage("vm run", "unexpected argument %s", argv[optind]);
	if (!cfg.kernel)
		return cli_usage("vm run", "--kernel is required");
	if (cfg.snapshot_marker && (!store || !name))
		return cli_usage("vm run", "--snapshot-on needs --store DIR and --name NAME");
	if (cpu_quota > 100UL * (unsigned long)cfg.vcpus)
		return cli_usage("vm run", "--cpu-quota %lu is more than 100 per vCPU", cpu_quota);
	if (!cfg.snapshot_marker && (store || name))
		return cli_usage("vm run", "--store/--name only go with --snapshot-on");
	if (name && !snap_name_valid(name, strlen(name)))
		return cli_usage("vm run", "bad --name %s ([A-Za-z0-9._-]{1,64})", name);
	if (!*cfg.kernel || (cfg.snapshot_marker && !*cfg.snapshot_marker))
		return cli_usage("vm run", "empty --kernel or --snapshot-on");

	if (nic && (r = nic_setup(&cfg, nic, name ? name : "vm", "vm run")) != 0)
		return r;
	signal(SIGPIPE, SIG_IGN);
	r = vmm_create(&cfg, &vm, err, sizeof(err));
	if (r)
		return cli_error("vm run", "%s", err);
	r = vmm_run(vm);
	if (r == VMM_EXIT_SNAPSHOT) {
		struct vmm_snapshot_info info = { .kernel = cfg.kernel, .initrd = cfg.initrd, .cmdline = cfg.cmdline,
						  .name = name, .health_marker = cfg.health_marker,
						  .cpu_quota = (unsigned)cpu_quota };
		char id[65];

		int vm_mid_line = vm->line_len != 0;

		r = vmm_snapshot_write(vm, store, &info, id, err, sizeof(err));
		if (timing)
			print_timing(vmm_timings(vm));
		vmm_destroy(vm);
		if (r)
			return cli_error("vm run", "snapshot: %s", err);
		/* the id on a line of its own, even if the console stopped mid-line */
		printf("%s%s\n", vm_mid_line ? "\n" : "", id);
		return 0;
	}
	r = finish("vm run", vm, r, timing);
	vmm_destroy(vm);
	return r;
}

/* Opens the source by path; for a store inside the jail, at its bind. */
static int open_source(const char *store, const char *image, struct snap_store **s, struct snap_image **img,
		       struct snap_source *src)
{
	char ierr[200];
	int r;

	if (image) {
		r = snap_image_open(image, img, ierr, sizeof(ierr));
		if (r)   /* ierr names the path where the file itself is the problem */
			return cli_error("vm restore", "%s%s%s", r == -ENOENT || r == -EACCES ? "" : image,
					 r == -ENOENT || r == -EACCES ? "" : ": ", ierr);
		snap_image_source(*img, src);
		return 0;
	}
	r = snap_store_open(store, s);
	if (r)
		return cli_error("vm restore", "store %s: %s", store, strerror(-r));
	snap_store_source(*s, src);
	return 0;
}

/*
 * The jail of a VMM started by hand: /dev/kvm, the image's descriptors and --ready-fd stay
 * open; a store is bound read-only at JAIL_BIND and opened there (the caller re-opens it).
 */
static int enter_jail(struct vmm_config *cfg, const char *store, struct snap_image *img, unsigned uid)
{
	struct jail j = { .what = "vm restore", .uid = uid, .gid = uid, .filter = JAIL_FILTER_VMM, .bind = store };
	int keep[3 + 8], nkeep = 0, r;
	char err[256];

	r = vmm_kvm_preopen();
	if (r < 0)
		return cli_error("vm restore", "/dev/kvm: %s", strerror(-r));
	keep[nkeep++] = r;
	if (cfg->ready_fd >= 0)
		keep[nkeep++] = cfg->ready_fd;
	if (cfg->nic && cfg->net_fd >= 0)
		keep[nkeep++] = cfg->net_fd;
	nkeep += snap_image_fds(img, keep + nkeep, 8);
	j.keep = keep;
	j.nkeep = nkeep;
	if (jail_enter(&j, err, sizeof(err)) < 0)
		return cli_error("vm restore", "%s%s", err,
				 geteuid() ? " (the jail needs root; --no-jail runs unconfined)" : "");
	cfg->confine = jail_vmm_thread;
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 'S' }, { "image", required_argument, NULL, 'G' },
		{ "ready-fd", required_argument, NULL, 'R' }, { "health", required_argument, NULL, 'H' },
		{ "disk", required_argument, NULL, 'd' }, { "timing", no_argument, NULL, 't' },
		{ "no-jail", no_argument, NULL, 'N' }, { "jail-uid", required_argument, NULL, 'U' },
		{ "netns", required_argument, NULL, 'n' }, { "cgroup", required_argument, NULL, 'C' },
		{ "nic", required_argument, NULL, 'A' }, { NULL, 0, NULL, 0 },
	};
	struct vmm_config cfg = { .out_fd = 1, .in_fd = 0, .ready_fd = -1, .warn = warn_stderr };
	const char *store = NULL, *image = NULL, *netns = NULL, *cgroup = NULL, *nic = NULL;
	struct snap_store *s = NULL;
	struct snap_image *img = NULL;
	struct snap_source src;
	unsigned uid = JAIL_UID_BY_HAND;
	char err[256];
	struct vmm_timing t;
	int c, r, timing = 0, no_jail = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'S': store = optarg; break;
		case 'G': image = optarg; break;
		case 'R': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 65535)
				return cli_usage("vm restore", "bad --ready-fd %s", optarg);
			cfg.ready_fd = (int)v;
			break;
		}
		case 'H': cfg.health_marker = optarg; break;
		case 'd':
			if (parse_disk(&cfg, optarg))
				return cli_usage("vm restore", "bad --disk %s", optarg);
			break;
		case 't': timing = 1; break;
		case 'N': no_jail = 1; break;
		case 'n': netns = optarg; break;
		case 'C': cgroup = optarg; break;
		case 'A': nic = optarg; break;
		case 'U': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || *optarg == '-' || v == 0 || v >= 65535)
				return cli_usage("vm restore", "bad --jail-uid %s (1..65534)", optarg);
			uid = (unsigned)v;
			break;
		}
		default:
			return cli_usage("vm restore", "unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cli_usage("vm restore", "expected one NAME or manifest ID");
	if (!store == !image)
		return cli_usage("vm restore", "give exactly one of --store DIR or --image IMG");
	if (cfg.ndisks && !no_jail)
		return cli_usage("vm restore", "--disk needs --no-jail (the jail binds no disk yet)");

	if (nic && (r = nic_setup(&cfg, nic, argv[optind], "vm restore")) != 0)
		return r;
	signal(SIGPIPE, SIG_IGN);
	/* a store is opened once outside to report a bad path as such, then again inside the jail */
	if ((r = open_source(store, image, &s, &img, &src)) != 0)
		return r;
	if (cgroup && (r = enter_cgroup(&src, argv[optind], cgroup, timing)) != 0) {
		snap_image_close(img);
		snap_store_close(s);
		return r;
	}
	if (no_jail) {
		fprintf(stderr, "keel vm restore: --no-jail: the VMM runs unconfined (for debugging only)\n");
	} else {
		struct timespec t0, t1;

		/* what PID 1 prepares once at boot, made here before the jail is timed */
		if ((netns && jail_use_netns(netns, err, sizeof(err)) < 0) || jail_prepare(err, sizeof(err)) < 0) {
			snap_image_close(img);
			snap_store_close(s);
			return cli_error("vm restore", "%s", err);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		snap_store_close(s);
		s = NULL;
		r = enter_jail(&cfg, store, img, uid);
		if (!r && store)
			r = open_source(JAIL_BIND, NULL, &s, &img, &src);
		if (r) {
			snap_image_close(img);
			return r;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (timing)
			fprintf(stderr, "timing: jail %.1f us\n", us_between(&t0, &t1));
	}
	memset(&t, 0, sizeof(t));
	r = vmm_restore_run(&src, argv[optind], &cfg, &t, err, sizeof(err));
	snap_store_close(s);
	snap_image_close(img);
	if (timing && t.total)
		print_timing(&t);
	return r < 0 ? cli_error("vm restore", "%s", err) : 0;
}

int vmm_cmd_vm(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return argc < 2 ? cli_usage("vm", "expected run or restore (keel vm --help)") : cli_help(help_text);
	if (cli_wants_help(argc, argv))
		return cli_help(help_text);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	return cli_usage("vm", "unknown subcommand %s (run or restore)", argv[1]);
}
