/* Minimal unit-test support. A test file defines TEST(name) { ... } blocks and includes this
 * header once; main() runs them all, each in a forked child (so a crash or a seccomp kill
 * fails that test only), and prints one line per test:
 *   PASS: file:name     FAIL: file:name (reason)     SKIP: file:name (reason)
 * tests/run counts these lines. Each child gets CHECK_TIMEOUT_S seconds (default 120, 0: no
 * limit): an alarm() armed in the child ends it, and should the test block or replace
 * SIGALRM, the parent kills it a few seconds later; either way the line is
 *   FAIL: file:name (timed out after N s) */
#ifndef FCVM_CHECK_H
#define FCVM_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
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

#define CHECK_TIMEOUT_DEFAULT_S 120
#define CHECK_TIMEOUT_GRACE_S	5 /* the parent's own deadline, past the child's alarm */

static unsigned check_timeout_s(void)
{
	const char *env = getenv("CHECK_TIMEOUT_S");
	char *end;
	if (!env || !*env)
		return CHECK_TIMEOUT_DEFAULT_S;
	unsigned long v = strtoul(env, &end, 10);
	if (*end || v > 86400) {
		fprintf(stderr, "CHECK_TIMEOUT_S=%s: not a number of seconds (0-86400), using %d\n", env,
			CHECK_TIMEOUT_DEFAULT_S);
		return CHECK_TIMEOUT_DEFAULT_S;
	}
	return (unsigned)v;
}

static volatile sig_atomic_t check_deadline_passed;
static void check_on_deadline(int sig)
{
	(void)sig;
	check_deadline_passed = 1;
}

static double check_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *file = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	unsigned limit = check_timeout_s();
	int failed = 0;
	/* the parent's deadline interrupts its waitpid (no SA_RESTART) */
	struct sigaction sa = {.sa_handler = check_on_deadline};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	for (int i = 0; i < check_ncases; i++) {
		if (argc > 1 && strcmp(argv[1], check_cases[i].name) != 0)
			continue;
		fflush(NULL);
		double start = check_now();
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGALRM, SIG_DFL);
			alarm(limit);
			check_cases[i].fn();
			fflush(NULL);
			exit(0);
		}
		int st = 0, timed_out = 0;
		pid_t w = pid;
		check_deadline_passed = 0;
		alarm(pid > 0 && limit ? limit + CHECK_TIMEOUT_GRACE_S : 0);
		while (pid > 0 && (w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
			if (check_deadline_passed && !timed_out) {
				timed_out = 1;
				kill(pid, SIGKILL);
			}
		}
		alarm(0);
		if (w < 0) {
			failed++;
			printf("FAIL: %s:%s (%s: %s)\n", file, check_cases[i].name, pid < 0 ? "fork" : "waitpid",
			       strerror(errno));
			fflush(stdout);
			continue;
		}
		/* SIGALRM is a timeout only when it came after the limit (the child's own alarm) */
		if (limit && WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM && check_now() - start >= limit - 0.5)
			timed_out = 1;
		if (timed_out) {
			failed++;
			printf("FAIL: %s:%s (timed out after %u s)\n", file, check_cases[i].name, limit);
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
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
