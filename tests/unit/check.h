/* Minimal unit-test support. A test file defines TEST(name) { ... } blocks and includes this
 * header once; main() runs them all, each in a forked child (so a crash or a seccomp kill
 * fails that test only), and prints one line per test:
 *   PASS: file:name     FAIL: file:name (reason)     SKIP: file:name (reason)
 * tests/run counts these lines. */
#ifndef FCVM_CHECK_H
#define FCVM_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*check_fn)(void);
struct check_case {
	const char *name;
	check_fn fn;
};
static struct check_case check_cases[256];
static int check_ncases;

#define TEST(n)                                                                                                        \
	static void test_##n(void);                                                                                    \
	__attribute__((constructor)) static void reg_##n(void)                                                         \
	{                                                                                                              \
		check_cases[check_ncases].name = #n;                                                                   \
		check_cases[check_ncases++].fn = test_##n;                                                             \
	}                                                                                                              \
	static void test_##n(void)

#define CHECK_EXIT_SKIP 77

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d %s)\n", __FILE__, __LINE__, #c, errno,      \
				strerror(errno));                                                                      \
			fflush(NULL);                                                                                  \
			_exit(1);                                                                                      \
		}                                                                                                      \
	} while (0)
#define CHECK_EQ(a, b)                                                                                                 \
	do {                                                                                                           \
		long long _a = (long long)(a), _b = (long long)(b);                                                    \
		if (_a != _b) {                                                                                        \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a,    \
				_a, #b, _b);                                                                           \
			fflush(NULL);                                                                                  \
			_exit(1);                                                                                      \
		}                                                                                                      \
	} while (0)
#define CHECK_STR(a, b)                                                                                                \
	do {                                                                                                           \
		const char *_a = (a), *_b = (b);                                                                       \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                                               \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" vs \"%s\"\n", __FILE__, __LINE__,             \
				_a ? _a : "(null)", _b ? _b : "(null)");                                               \
			fflush(NULL);                                                                                  \
			_exit(1);                                                                                      \
		}                                                                                                      \
	} while (0)
#define SKIP(why)                                                                                                      \
	do {                                                                                                           \
		fprintf(stderr, "skip: %s\n", why);                                                                    \
		fflush(NULL);                                                                                          \
		_exit(CHECK_EXIT_SKIP);                                                                                \
	} while (0)

int main(int argc, char **argv)
{
	const char *file = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int failed = 0;
	for (int i = 0; i < check_ncases; i++) {
		if (argc > 1 && strcmp(argv[1], check_cases[i].name) != 0)
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			check_cases[i].fn();
			fflush(NULL);
			exit(0);
		}
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			printf("PASS: %s:%s\n", file, check_cases[i].name);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == CHECK_EXIT_SKIP)
			printf("SKIP: %s:%s\n", file, check_cases[i].name);
		else {
			failed++;
			if (WIFSIGNALED(st))
				printf("FAIL: %s:%s (signal %d)\n", file, check_cases[i].name, WTERMSIG(st));
			else
				printf("FAIL: %s:%s (exit %d)\n", file, check_cases[i].name, WEXITSTATUS(st));
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}

/* A shell command's exit status (-1 if it did not exit): for tests that set up or inspect
 * the system with its own tools (mkfs, ip, nft). */
static inline int check_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int check_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A command's standard output, at most len - 1 bytes, NUL-terminated; returns buf. */
static inline char *check_sh_out(char *buf, size_t len, const char *cmd)
{
	size_t n = 0, got;
	fflush(NULL);
	FILE *f = popen(cmd, "r");
	if (!f) {
		fprintf(stderr, "popen %s: %s\n", cmd, strerror(errno));
		exit(1);
	}
	while (n < len - 1 && (got = fread(buf + n, 1, len - 1 - n, f)) > 0)
		n += got;
	buf[n] = '\0';
	pclose(f);
	return buf;
}

#endif
