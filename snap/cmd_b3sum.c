/* `keel b3sum`: BLAKE3 sums of files, printed exactly as the b3sum tool prints them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init/cli.h"
#include "snap/snap.h"

static const char help[] =
	"usage: keel b3sum [--num-threads N] [FILE|-]...\n"
	"  Prints the BLAKE3-256 of each FILE as '<hex64>  <name>', the format of b3sum.\n"
	"  No FILE, or '-', reads standard input. A file that cannot be read gets one\n"
	"  line on stderr; the others are still hashed and the exit status is 1.\n"
	"  --num-threads N  threads for large files (default 0: one per online CPU)\n";

/* Regular files this large are mapped and hashed on several threads. */
#define MAP_MIN (16 * 1024)
#define READ_BUF (256 * 1024)

/*
 * Names are printed as b3sum prints them: invalid UTF-8 replaced by U+FFFD
 * (one per maximal invalid prefix), and a name holding '\' or newline gets a
 * leading '\' on the line with those two escaped.
 */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t want;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		want = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		want = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		want = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (size_t i = 1; i < want; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return 0x100 | i; /* invalid after i bytes */
		lo = 0x80;
		hi = 0xbf;
	}
	return want;
}

static void print_sum(const uint8_t h[SNAP_HASH_LEN], const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strlen(name);
	char hex[SNAP_HEX_LEN + 1];
	int esc = strchr(name, '\\') || strchr(name, '\n');

	snap_hex(h, hex);
	printf("%s%s  ", esc ? "\\" : "", hex);
	while (n > 0) {
		size_t v = utf8_valid_prefix(s, n);

		if (v == 0 || v & 0x100) {
			size_t skip = v ? v & 0xff : 1;

			fputs("\xef\xbf\xbd", stdout);
			s += skip;
			n -= skip;
			continue;
		}
		if (*s == '\\')
			fputs("\\\\", stdout);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			fwrite(s, 1, v, stdout);
		s += v;
		n -= v;
	}
	putchar('\n');
}

static int hash_stream(int fd, uint8_t out[SNAP_HASH_LEN])
{
	static uint8_t buf[READ_BUF];
	struct snap_b3 h;

	snap_b3_init(&h);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		snap_b3_update(&h, buf, (size_t)n);
	}
	snap_b3_final(&h, out, SNAP_HASH_LEN);
	return 0;
}

static int hash_fd(int fd, int nthreads, uint8_t out[SNAP_HASH_LEN])
{
	struct stat st;
	void *map;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) || st.st_size < MAP_MIN || (uint64_t)st.st_size > SIZE_MAX)
		return hash_stream(fd, out);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return hash_stream(fd, out);
	madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	snap_b3_hash(map, (size_t)st.st_size, nthreads, out);
	munmap(map, (size_t)st.st_size);
	return 0;
}

static int sum_one(const char *cmd, const char *name, int nthreads)
{
	uint8_t h[SNAP_HASH_LEN];
	int fd, err;

	if (!strcmp(name, "-")) {
		/* like b3sum: a regular file on stdin is mapped, a pipe streamed */
		err = hash_fd(0, nthreads, h);
	} else {
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
		} else {
			err = hash_fd(fd, nthreads, h);
			close(fd);
		}
	}
	if (err < 0) {
		fflush(stdout);
		return cli_error(cmd, "%s: %s (os error %d)", name, strerror(-err), -err);
	}
	print_sum(h, name);
	return 0;
}

int snap_cmd_b3sum(int argc, char **argv)
{
	int nthreads = 0, nfiles = 0, status = 0, opts = 1;
	const char **files = calloc((size_t)argc + 1, sizeof(*files));

	if (!files)
		return cli_error(argv[0], "%s", strerror(ENOMEM));
	if (cli_wants_help(argc, argv)) {
		free(files);
		return cli_help(help);
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;

		if (opts && !strcmp(a, "--")) {
			opts = 0;
		} else if (opts && !strncmp(a, "--num-threads", 13) && (a[13] == 0 || a[13] == '=')) {
			char *end;
			unsigned long n = 0;

			val = a[13] == '=' ? a + 14 : (i + 1 < argc ? argv[++i] : NULL);
			if (val && *val >= '0' && *val <= '9')
				n = strtoul(val, &end, 10);
			if (!val || *val < '0' || *val > '9' || *end || n > 1024) {
				free(files);
				return cli_usage(argv[0], "--num-threads wants a number 0..1024");
			}
			nthreads = (int)n;
		} else if (opts && a[0] == '-' && a[1] != 0) {
			free(files);
			return cli_usage(argv[0], "unknown option '%s'", a);
		} else {
			files[nfiles++] = argv[i];
		}
	}
	if (nfiles == 0)
		files[nfiles++] = "-";
	for (int i = 0; i < nfiles; i++)
		if (sum_one(argv[0], files[i], nthreads))
			status = 1;
	free(files);
	if (fflush(stdout) != 0)
		return cli_error(argv[0], "stdout: %s", strerror(errno));
	return status;
}
