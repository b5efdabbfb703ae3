/* Test runner: forks one child per case, prints PASS/FAIL/SKIP lines and a summary. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

#define T_SKIP_STATUS 77
#define T_TIMEOUT_S 300

static struct t_case *cases, **tail = &cases;
static int failed_here;
static char tmpdir[256];

void t_register(struct t_case *c)
{
	*tail = c;
	tail = &c->next;
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failed_here = 1;
}

void t_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fflush(stdout);
	_exit(T_SKIP_STATUS);
}

const char *t_tmpdir(void)
{
	return tmpdir;
}

int t_write_file(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd) < 0 ? -errno : 0;
}

int t_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static int run_case(struct t_case *c, const char *prog)
{
	char skipmsg[512] = "";
	int pfd[2], st;
	pid_t pid;
	ssize_t n;

	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/keel-t-%s-XXXXXX", base, c->name);
	if (!mkdtemp(tmpdir)) {
		printf("FAIL %s: cannot make a temp dir: %s\n", c->name, strerror(errno));
		return 1;
	}
	if (pipe(pfd) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDOUT_FILENO);
		alarm(T_TIMEOUT_S);
		c->fn();
		fflush(stdout);
		_exit(failed_here ? 1 : 0);
	}
	close(pfd[1]);
	n = 0;
	for (;;) {
		ssize_t r = read(pfd[0], skipmsg + n, sizeof(skipmsg) - 1 - (size_t)n);
		if (r <= 0)
			break;
		n += r;
		if ((size_t)n >= sizeof(skipmsg) - 1)
			n = 0; /* only the skip reason matters; drop chatter */
	}
	skipmsg[n] = 0;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	t_sh("rm -rf '%s'", tmpdir);
	(void)prog;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("PASS %s\n", c->name);
		return 0;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == T_SKIP_STATUS) {
		skipmsg[strcspn(skipmsg, "\n")] = 0;
		printf("SKIP %s: %s\n", c->name, skipmsg);
		return 2;
	}
	if (WIFSIGNALED(st))
		printf("FAIL %s: killed by signal %d%s\n", c->name, WTERMSIG(st),
		       WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
	else
		printf("FAIL %s\n", c->name);
	return 1;
}

int main(int argc, char **argv)
{
	int passed = 0, nfailed = 0, skipped = 0;
	struct t_case *c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (c = cases; c; c = c->next) {
		if (argc > 1 && !strstr(c->name, argv[1]) && !strstr(c->file, argv[1]))
			continue;
		switch (run_case(c, argv[0])) {
		case 0: passed++; break;
		case 2: skipped++; break;
		default: nfailed++; break;
		}
	}
	printf("%d passed, %d failed, %d skipped\n", passed, nfailed, skipped);
	return nfailed ? 1 : 0;
}
