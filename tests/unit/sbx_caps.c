/* The capability stage for real (root only): each process keeps exactly its policy's caps,
 * in every set, across a uid switch; the launcher can hand caps to a program it execs. */
#include <linux/securebits.h>
#include <sys/prctl.h>

#include "policy/sandbox.h"
#include "tests/unit/check.h"

#define NOBODY 65534

/* Hex value of a "Field:\tvalue" line of /proc/self/status (the first number for Uid). */
static unsigned long long status_field(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	unsigned long long v = ~0ull;
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL,
				     strcmp(field, "Uid") == 0 || strcmp(field, "NoNewPrivs") == 0 ||
					     strcmp(field, "Seccomp") == 0
					 ? 10
					 : 16);
	fclose(f);
	return v;
}

static void need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root");
}

TEST(netd_keeps_only_net_admin_across_uid_switch)
{
	need_root();
	const unsigned long long net_admin = 1ull << CAP_NET_ADMIN;
	CHECK_EQ(sandbox_drop_caps(&policy_netd, true, NOBODY, NOBODY), 0);
	CHECK_EQ(sandbox_no_new_privs(), 0);
	CHECK_EQ(sandbox_nondumpable(), 0);
	CHECK_EQ(status_field("CapEff"), net_admin);
	CHECK_EQ(status_field("CapPrm"), net_admin);
	CHECK_EQ(status_field("CapInh"), 0);
	CHECK_EQ(status_field("CapAmb"), 0);
	CHECK_EQ(status_field("CapBnd"), net_admin);
	CHECK_EQ(status_field("Uid"), NOBODY);
	CHECK_EQ(status_field("NoNewPrivs"), 1);
	struct sandbox_report r;
	CHECK_EQ(sandbox_report_self(&r), 0);
	CHECK_EQ(r.capeff, net_admin);
	CHECK(!r.dumpable && r.no_new_privs);
	/* the securebits are locked: the process cannot regain root semantics */
	CHECK(prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) < 0);
	CHECK_EQ(sandbox_seccomp(&policy_netd), 0);
	CHECK_EQ(sandbox_report_self(&r), 0);
	CHECK_EQ(r.seccomp, 2);
}

TEST(uffdd_and_supervisor_keep_nothing)
{
	need_root();
	pid_t pid = fork();
	if (pid == 0) {
		CHECK_EQ(sandbox_drop_caps(&policy_uffdd, true, NOBODY, NOBODY), 0);
		CHECK_EQ(status_field("CapEff"), 0);
		CHECK_EQ(status_field("CapPrm"), 0);
		CHECK_EQ(status_field("CapBnd"), 0);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(sandbox_drop_caps(&policy_supervisor, true, NOBODY, NOBODY), 0);
	CHECK_EQ(status_field("CapEff"), 0);
	CHECK_EQ(status_field("CapBnd"), 0);
	/* and cannot get uid 0 back */
	CHECK(setresuid(0, 0, 0) < 0);
}

TEST(launcher_hands_exact_caps_to_an_exec)
{
	need_root();
	CHECK_EQ(sandbox_drop_caps(&policy_launcher, false, 0, 0), 0);
	unsigned long long want = 0;
	for (size_t i = 0; i < policy_launcher.ncaps; i++)
		want |= 1ull << policy_launcher.caps[i];
	CHECK_EQ(status_field("CapEff"), want);
	int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	CHECK(bits & SECBIT_NOROOT);
	CHECK(!(bits & SECBIT_NO_CAP_AMBIENT_RAISE));
	/* a child passes CAP_NET_ADMIN only; the exec'd program, uid 0 under NOROOT, gets
	 * exactly that and not root's full set */
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		cap_value_t pass[] = {CAP_NET_ADMIN};
		dup2(pfd[1], 1);
		if (sandbox_pass_caps_on_exec(pass, 1) < 0)
			_exit(3);
		execl("/bin/grep", "grep", "^CapEff:", "/proc/self/status", (char *)NULL);
		_exit(4);
	}
	close(pfd[1]);
	char out[128] = {0};
	ssize_t n = read(pfd[0], out, sizeof(out) - 1);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(n > 0);
	CHECK_STR(out, "CapEff:\t0000000000001000\n");
}

TEST(unprivileged_process_keeps_nothing_it_lacks)
{
	need_root();
	/* drop everything, become nobody, then enter the netd policy as an unprivileged
	 * process would: no error, and no capability appears */
	CHECK_EQ(sandbox_drop_caps(&policy_uffdd, true, NOBODY, NOBODY), 0);
	CHECK_EQ(sandbox_drop_caps(&policy_netd, false, 0, 0), 0);
	CHECK_EQ(status_field("CapEff"), 0);
}
