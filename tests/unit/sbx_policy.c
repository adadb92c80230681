/* Every compiled policy's real seccomp filter, loaded in a throwaway process: what it
 * forbids kills, what it allows runs (and fails normally on bad arguments), probed calls get
 * ENOSYS, foreign ABIs are killed. */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "policy/sandbox.h"
#include "tests/unit/check.h"

static const char *const names[] = {"supervisor", "launcher", "netd", "stored", "uffdd"};

/* Run fn under policy p's filter in a new process; return its wait status. */
static int under_filter(const struct sandbox_policy *p, int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (sandbox_no_new_privs() < 0 || sandbox_seccomp(p) < 0)
			_exit(100);
		_exit(fn());
	}
	int st;
	waitpid(pid, &st, 0);
	return st;
}

static bool killed_by_sigsys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static int do_ptrace(void)
{
	syscall(SYS_ptrace, 0, 0, 0, 0);
	return 0;
}

static int do_personality(void)
{
	syscall(SYS_personality, 0xffffffff);
	return 0;
}

/* close(-1): allowed everywhere, fails EBADF. capget(NULL): allowed, fails EFAULT. */
static int do_bad_args(void)
{
	if (syscall(SYS_close, -1) != -1 || errno != EBADF)
		return 1;
	if (syscall(SYS_capget, NULL, NULL) != -1 || errno != EFAULT)
		return 2;
	return 0;
}

static int do_clone3(void)
{
	return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : 1;
}

/* An i386 syscall (getpid = 20) through int 0x80 from a 64-bit process. */
static int do_int80(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
	return 0;
}

/* An x32 syscall: the x86_64 number with __X32_SYSCALL_BIT. */
static int do_x32(void)
{
	syscall(0x40000000 | SYS_getpid);
	return 0;
}

static int do_get_seccomp(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? 0 : 1;
}

static int do_set_name(void)
{
	prctl(PR_SET_NAME, "x", 0, 0, 0);
	return 0;
}

TEST(forbidden_syscall_kills)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct sandbox_policy *p = sandbox_policy_by_name(names[i]);
		CHECK(p != NULL);
		CHECK(killed_by_sigsys(under_filter(p, do_ptrace)));
		CHECK(killed_by_sigsys(under_filter(p, do_personality)));
	}
}

TEST(allowed_call_with_bad_args_fails_normally)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int st = under_filter(sandbox_policy_by_name(names[i]), do_bad_args);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "%s: status %#x\n", names[i], st);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

TEST(probed_calls_get_enosys)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int st = under_filter(sandbox_policy_by_name(names[i]), do_clone3);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

TEST(foreign_abi_killed)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct sandbox_policy *p = sandbox_policy_by_name(names[i]);
		CHECK(killed_by_sigsys(under_filter(p, do_int80)));
		CHECK(killed_by_sigsys(under_filter(p, do_x32)));
	}
}

TEST(argument_filters)
{
	/* the helpers and the supervisor may ask their seccomp mode but not rename themselves */
	const char *strict[] = {"supervisor", "netd", "stored", "uffdd"};
	for (size_t i = 0; i < 4; i++) {
		const struct sandbox_policy *p = sandbox_policy_by_name(strict[i]);
		int st = under_filter(p, do_get_seccomp);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK(killed_by_sigsys(under_filter(p, do_set_name)));
	}
}

static int do_write_stdout(void)
{
	(void)!write(1, "", 0);
	return 0;
}

static int do_write_stderr(void)
{
	return write(2, "", 0) == 0 ? 0 : 1;
}

TEST(helpers_write_only_to_stderr)
{
	const char *helpers[] = {"netd", "stored", "uffdd"};
	for (size_t i = 0; i < 3; i++) {
		const struct sandbox_policy *p = sandbox_policy_by_name(helpers[i]);
		int st = under_filter(p, do_write_stderr);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK(killed_by_sigsys(under_filter(p, do_write_stdout)));
	}
}

TEST(every_rule_compiles_into_a_filter)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct sandbox_policy *p = sandbox_policy_by_name(names[i]);
		scmp_filter_ctx ctx = sandbox_build_filter(p);
		CHECK(ctx != NULL);
		seccomp_release(ctx);
		CHECK(p->nrules > 10);
	}
}
