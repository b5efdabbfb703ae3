/* keel's unit test harness: TEST() cases register themselves; each runs in its own child. */
#ifndef KEEL_TEST_HARNESS_H
#define KEEL_TEST_HARNESS_H

#include <stddef.h>

struct t_case {
	const char *name;
	const char *file;
	void (*fn)(void);
	struct t_case *next;
};

void t_register(struct t_case *c);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A fresh empty directory for the running test, removed after it. */
const char *t_tmpdir(void);
/* Writes len bytes to path (created or truncated); 0 or -errno. */
int t_write_file(const char *path, const void *buf, size_t len);
/* Runs a shell command, returns its exit status (or -1). */
int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                          \
	static void name(void);                                             \
	static struct t_case name##_case = { #name, __FILE__, name, NULL }; \
	__attribute__((constructor)) static void name##_register(void)      \
	{                                                                   \
		t_register(&name##_case);                                   \
	}                                                                   \
	static void name(void)

/* CHECK records a failure and goes on; REQUIRE records it and leaves the test. */
#define CHECK(cond)                                                    \
	do {                                                           \
		if (!(cond))                                           \
			t_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
	} while (0)
#define REQUIRE(cond)                                                  \
	do {                                                           \
		if (!(cond)) {                                         \
			t_fail(__FILE__, __LINE__, "required: %s", #cond); \
			return;                                        \
		}                                                      \
	} while (0)
#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);        \
		if (t_a_ != t_b_)                                              \
			t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a_, t_b_); \
	} while (0)
#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                 \
			t_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
			       t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");  \
	} while (0)

#endif
