/* The jail step, attacked: a jailed child is read from /proc and made to try what an attacker
 * who owns it would (open /etc/shadow, exec, sockets, ptrace, mount, kill PID 1, fork, W^X). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init/jail.h"
#include "tests/harness.h"

#define TEST_UID 64999

/* Jailed children leave through the raw call: ASan's _exit runs its leak checker, which uses
 * calls no jail allows. */
static void leave(int code)
{
	syscall(SYS_exit_group, code);
}

static void need_root(void)
{
	if (geteuid() != 0)
		t_skip("the jail needs root (namespaces, uids)");
}

/* Forks a child that jails itself with filter f and runs fn; its wait status. */
static int jailed(enum jail_filter f, const char *bind, void (*fn)(int fd), int fd)
{
	struct jail j = { .what = "test", .uid = TEST_UID, .gid = TEST_UID, .filter = f, .bind = bind,
			  .keep = &fd, .nkeep = fd >= 0 };
	char err[200];
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (jail_enter(&j, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(99);
		}
		fn(fd);
		leave(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

#define EXITED(st, code) (WIFEXITED(st) && WEXITSTATUS(st) == (code))
#define SIGSYSED(st) (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)

static void say_and_wait(int fd)
{
	char c = 'j';

	/* tells the parent it is jailed, then waits for the pipe to close */
	if (write(fd, &c, 1) != 1)
		leave(2);
	while (read(fd, &c, 1) > 0)
		;
}

static long status_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtol(p + strlen(key), NULL, 16) : -1;
}

TEST(jailed_child_has_no_privileges_and_its_own_namespaces)
{
	int sv[2], st;
	char path[64], buf[4096], c, a[64], b[64];
	ssize_t n;
	pid_t pid;
	FILE *f;

	need_root();
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(jailed(JAIL_FILTER_NONE, NULL, say_and_wait, sv[1]) == 0 ? 0 : 1);
	}
	close(sv[1]);
	REQUIRE(read(sv[0], &c, 1) == 1);
	/* the jailed process is the grandchild: find it through the child's children */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "r");
	REQUIRE(f);
	REQUIRE(fscanf(f, "%d", &st) == 1);
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", st);
	f = fopen(path, "r");
	REQUIRE(f);
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	CHECK(strstr(buf, "\nSeccomp:\t2\n"));
	CHECK(strstr(buf, "\nNoNewPrivs:\t1\n"));
	CHECK_EQ(status_field(buf, "\nCapEff:\t"), 0);
	CHECK_EQ(status_field(buf, "\nCapPrm:\t"), 0);
	CHECK_EQ(status_field(buf, "\nCapBnd:\t"), 0);
	CHECK_EQ(status_field(buf, "\nCapAmb:\t"), 0);
	CHECK(strstr(buf, "\nUid:\t64999\t64999\t64999\t64999\n"));
	CHECK(strstr(buf, "\nGid:\t64999\t64999\t64999\t64999\n"));
	CHECK(strstr(buf, "\nGroups:\t \n") || strstr(buf, "\nGroups:\t\n"));
	for (const char *const *ns = (const char *const[]){ "mnt", "net", "ipc", "uts", NULL }; *ns; ns++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", st, *ns);
		n = readlink(path, a, sizeof(a) - 1);
		REQUIRE(n > 0);
		a[n] = 0;
		snprintf(path, sizeof(path), "/proc/self/ns/%s", *ns);
		n = readlink(path, b, sizeof(b) - 1);
		REQUIRE(n > 0);
		b[n] = 0;
		if (!strcmp(a, b))
			t_fail(__FILE__, __LINE__, "namespace %s is the parent's (%s)", *ns, a);
	}
	/* its root is the empty tmpfs: nothing of the host by name */
	snprintf(path, sizeof(path), "/proc/%d/root/etc", st);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "/proc/%d/root", st);
	{
		DIR *d = opendir(path);
		struct dirent *e;
		int entries = 0;

		REQUIRE(d);
		while ((e = readdir(d)))   /* only the (here unused, empty) mount point of a bind */
			entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "src");
		closedir(d);
		CHECK_EQ(entries, 0);
	}
	close(sv[0]);
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(EXITED(st, 0));
}

static void attack_open_shadow(int fd)
{
	(void)fd;
	leave(open("/etc/shadow", O_RDONLY) < 0 && errno == ENOENT ? 7 : 8);
}

static void attack_open_write(int fd)
{
	(void)fd;
	open("/x", O_WRONLY | O_CREAT, 0644);
	leave(8);
}

static void attack_exec(int fd)
{
	char *argv[] = { (char *)"sh", NULL };

	(void)fd;
	execve("/bin/sh", argv, argv + 1);
	leave(8);
}

static void attack_socket(int fd)
{
	(void)fd;
	socket(AF_INET, SOCK_STREAM, 0);
	leave(8);
}

static void attack_ptrace(int fd)
{
	(void)fd;
	ptrace(PTRACE_ATTACH, 1, NULL, NULL);
	leave(8);
}

static void attack_mount(int fd)
{
	(void)fd;
	mount("x", "/", "tmpfs", 0, NULL);
	leave(8);
}

static void attack_kill_pid1(int fd)
{
	(void)fd;
	kill(1, SIGTERM);
	leave(8);
}

static void attack_fork(int fd)
{
	(void)fd;
	/* fork() is clone without CLONE_THREAD: only threads may be made */
	syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	leave(8);
}

static void attack_exec_mapping(int fd)
{
	(void)fd;
	mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	leave(8);
}

TEST(vmm_filter_kills_what_an_attacker_tries)
{
	need_root();
	/* allowed call, empty root: the file is simply not there */
	CHECK(EXITED(jailed(JAIL_FILTER_VMM, NULL, attack_open_shadow, -1), 7));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_open_write, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_exec, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_socket, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_ptrace, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_mount, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_kill_pid1, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_fork, -1)));
	CHECK(SIGSYSED(jailed(JAIL_FILTER_VMM, NULL, attack_exec_mapping, -1)));
}

static void read_bound(int fd)
{
	char buf[16];
	int f = open(JAIL_BIND "/hello", O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf));

	(void)fd;
	leave(n == 5 && !memcmp(buf, "hello", 5) ? 7 : 8);
}

static void escape_bound(int fd)
{
	(void)fd;
	/* ".." from the bind stops at the jail's root */
	leave(open(JAIL_BIND "/../../../etc/passwd", O_RDONLY) < 0 && errno == ENOENT ? 7 : 8);
}

TEST(bound_directory_is_the_only_host_path_and_read_only)
{
	char path[512];

	need_root();
	snprintf(path, sizeof(path), "%s/hello", t_tmpdir());
	REQUIRE(t_write_file(path, "hello", 5) == 0);
	chmod(t_tmpdir(), 0755);
	CHECK(EXITED(jailed(JAIL_FILTER_VMM, t_tmpdir(), read_bound, -1), 7));
	CHECK(EXITED(jailed(JAIL_FILTER_VMM, t_tmpdir(), escape_bound, -1), 7));
}

TEST(thread_filter_narrows_the_process_filter)
{
	struct sock_filter p[512];
	int vmm = jail_filter_build(JAIL_FILTER_VMM, p, 512);
	int vcpu = jail_filter_build(JAIL_FILTER_VMM_VCPU, p, 512);
	int io = jail_filter_build(JAIL_FILTER_VMM_IO, p, 512);

	CHECK(vmm > vcpu && vcpu > 0 && io > 0);
	CHECK_EQ(jail_filter_build(JAIL_FILTER_VMM, p, 8), -E2BIG);
}

TEST(jail_refuses_uid_zero)
{
	struct jail j = { .what = "test", .uid = 0, .gid = 0, .filter = JAIL_FILTER_NONE };
	char err[200];

	CHECK_EQ(jail_enter(&j, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "must not be 0"));
}
