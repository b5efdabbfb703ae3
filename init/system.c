/* PID 1's system setup: base mounts, console, kernel modules, data partition, watchdog, power button. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init/pid1_int.h"

static void mount_one(const char *src, const char *dir, const char *type, unsigned long flags, const char *data)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		init_log("mkdir %s: %s", dir, strerror(errno));
	if (mount(src, dir, type, flags, data) < 0 && errno != EBUSY)
		init_log("mount %s on %s: %s", type, dir, strerror(errno));
}

void init_sys_mount_base(void)
{
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m");
	/*
	 * Sandbox limits (cgroup.c). favordynmods: moving a process into a cgroup then costs no RCU
	 * grace period (7.3 -> 0.8 ms per sandbox start in the TCG test appliance); nsdelegate keeps a
	 * delegated subtree from escaping it. Kernels before 6.0 know neither of the first.
	 */
	if (mkdir("/sys/fs/cgroup", 0755) < 0 && errno != EEXIST)
		init_log("mkdir /sys/fs/cgroup: %s", strerror(errno));
	if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate,favordynmods") < 0 &&
	    errno != EBUSY)
		mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
}

int init_sys_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	return fd;
}

void init_sys_modules(const struct init_board *b)
{
	for (int i = 0; i < b->nmodules; i++) {
		int fd = open(b->modules[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			init_log("module %s: %s", b->modules[i], strerror(errno));
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			init_log("module %s: finit_module: %s", b->modules[i], strerror(errno));
		close(fd);
	}
}

int init_sys_mount_data(const struct init_board *b)
{
	if (!b->data_device[0])
		return 0;
	if (mkdir(b->data_dir, 0755) < 0 && errno != EEXIST)
		init_log("mkdir %s: %s", b->data_dir, strerror(errno));
	if (mount(b->data_device, b->data_dir, b->data_fstype, MS_NOATIME | MS_NODEV | MS_NOSUID, NULL) < 0 &&
	    errno != EBUSY) {
		int e = errno;
		init_log("data partition %s (%s) on %s: %s; updates and failure records are off", b->data_device,
			 b->data_fstype, b->data_dir, strerror(e));
		return -e;
	}
	return 1;
}

void init_sys_umount_data(const struct init_board *b)
{
	if (b->data_device[0] && umount2(b->data_dir, 0) < 0 && errno != EINVAL)
		init_log("umount %s: %s", b->data_dir, strerror(errno));
}

int init_sys_watchdog_open(const char *path, unsigned timeout_s, unsigned *interval_s)
{
	struct watchdog_info info;
	int fd, t = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		init_log("watchdog %s: %s", path, strerror(errno));
		return -1;
	}
	/* Opening armed it with the driver's timeout; the board's replaces it (the driver may round it). */
	if (timeout_s) {
		t = (int)timeout_s;
		if (ioctl(fd, WDIOC_SETTIMEOUT, &t) < 0)
			init_log("watchdog %s: setting the timeout to %u s: %s; keeping the driver's", path,
				 timeout_s, strerror(errno));
	}
	t = 0;
	if (ioctl(fd, WDIOC_GETTIMEOUT, &t) < 0 || t <= 0)
		t = 15;
	/* Pet at a third of the timeout so one slow iteration does not reset the box. */
	*interval_s = t >= 3 ? (unsigned)t / 3 : 1;
	init_sys_watchdog_pet(fd);
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, WDIOC_GETSUPPORT, &info) < 0)
		snprintf((char *)info.identity, sizeof(info.identity), "?");
	info.identity[sizeof(info.identity) - 1] = 0;
	init_log("watchdog %s (%s) armed: timeout %d s, petted every %u s", path, (const char *)info.identity, t,
		 *interval_s);
	return fd;
}

void init_sys_watchdog_pet(int fd)
{
	int dummy = 0;

	if (fd >= 0 && ioctl(fd, WDIOC_KEEPALIVE, &dummy) < 0 && write(fd, "k", 1) < 0)
		init_log("watchdog keepalive: %s", strerror(errno));
}

void init_sys_watchdog_close(int fd)
{
	if (fd < 0)
		return;
	/* Magic close: disarm, we are shutting down on purpose. */
	if (write(fd, "V", 1) < 0)
		init_log("watchdog disarm: %s", strerror(errno));
	else
		init_log("watchdog disarmed (magic close)");
	close(fd);
}

#define BITS_PER_LONG_ (8 * sizeof(unsigned long))

static int has_key(int fd, unsigned key)
{
	unsigned long bits[KEY_MAX / BITS_PER_LONG_ + 1];

	memset(bits, 0, sizeof(bits));
	if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(bits)), bits) < 0)
		return 0;
	return (bits[key / BITS_PER_LONG_] >> (key % BITS_PER_LONG_)) & 1;
}

int init_sys_power_keys_open(int *fds, int max)
{
	struct dirent *de;
	DIR *d = opendir("/dev/input");
	int n = 0;

	if (!d) {
		init_log("power button: /dev/input: %s (load evdev and the button driver)", strerror(errno));
		return 0;
	}
	while ((de = readdir(d)) && n < max) {
		char path[300], name[64] = "?";
		int fd;

		if (strncmp(de->d_name, "event", 5))
			continue;
		snprintf(path, sizeof(path), "/dev/input/%s", de->d_name);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Any device that can send KEY_POWER: the ACPI power button, a keyboard's power key. */
		if (!has_key(fd, KEY_POWER)) {
			close(fd);
			continue;
		}
		if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0)
			snprintf(name, sizeof(name), "?");
		name[sizeof(name) - 1] = 0;
		init_log("power button: %s (%s) powers off", path, name);
		fds[n++] = fd;
	}
	closedir(d);
	if (n == 0)
		init_log("power button: no input device sends KEY_POWER");
	return n;
}

int init_sys_power_key_pressed(int fd)
{
	struct input_event ev[16];
	int pressed = 0;

	for (;;) {
		ssize_t r = read(fd, ev, sizeof(ev));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < (ssize_t)sizeof(ev[0]))
			return pressed;
		for (size_t i = 0; i < (size_t)r / sizeof(ev[0]); i++)
			if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
				pressed = 1;
	}
}
