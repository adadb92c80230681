/* The non-seccomp stages for real: fds, rlimits, and capabilities (as root: each process
 * keeps exactly its policy's caps in every set, across a uid switch, with the securebits
 * locked; the launcher hands exactly the caps it means to a program it execs, and that
 * program can then enter its own sandbox under the launcher's filter). What needs root
 * is skipped without it. /proc/self/status is read before the seccomp stage: most
 * filters do not allow opening files. */
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "launcher/launcher.h"
#include "policy/sandbox.h"
#include "tests/unit/check.h"

#define NOBODY 65534

static const unsigned long long net_admin = 1ull << CAP_NET_ADMIN;
static const unsigned locked_bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
				    SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;

/* A "Field:\tvalue" of /proc/self/status: hex for the Cap* masks, decimal (the first
 * number) otherwise. ~0 when missing. */
static unsigned long long status_field(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	unsigned long long v = ~0ull;
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL, strncmp(field, "Cap", 3) == 0 ? 16 : 10);
	fclose(f);
	return v;
}

static unsigned long long mask_of(const struct sandbox_policy *p)
{
	unsigned long long m = 0;
	for (size_t i = 0; i < p->ncaps; i++)
		m |= 1ull << p->caps[i];
	return m;
}

static void need_root(void)
{
	if (geteuid() != 0 || status_field("CapEff") != status_field("CapBnd"))
		SKIP("needs root with its full capability set");
}

/* Every set as expected, nothing inheritable or ambient. */
static void check_sets(unsigned long long eff, unsigned long long bnd)
{
	CHECK_EQ(status_field("CapEff"), eff);
	CHECK_EQ(status_field("CapPrm"), eff);
	CHECK_EQ(status_field("CapInh"), 0);
	CHECK_EQ(status_field("CapAmb"), 0);
	CHECK_EQ(status_field("CapBnd"), bnd);
}

/* sandbox_report_self says what /proc says */
static void check_report_matches_proc(void)
{
	struct sandbox_report r;
	CHECK_EQ(sandbox_report_self(&r), 0);
	CHECK_EQ(r.capeff, status_field("CapEff"));
	CHECK_EQ(r.seccomp, status_field("Seccomp"));
	CHECK_EQ(r.no_new_privs, status_field("NoNewPrivs"));
	CHECK_EQ(r.dumpable, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
}

/* ---- a program the launcher execs: this test binary, run with --sbx-exec ----
 * argv: --sbx-exec POLICY UID|- START AMBIENT IN_SANDBOX (masks in hex). It checks its
 * capability sets on arrival (permitted = effective = START, inheritable = ambient =
 * AMBIENT), enters POLICY's sandbox (switching to UID unless "-"), checks its caps there
 * (IN_SANDBOX) and exits 0, or 1 with a message. Runs before main(), from a constructor. */
static void exec_fail(const char *what, unsigned long long got, unsigned long long want)
{
	fprintf(stderr, "sbx-exec: %s: %#llx, wanted %#llx\n", what, got, want);
	_exit(1);
}

__attribute__((constructor)) static void exec_mode(int argc, char **argv)
{
	if (argc != 7 || strcmp(argv[1], "--sbx-exec") != 0)
		return;
	const struct sandbox_policy *p = sandbox_policy_by_name(argv[2]);
	unsigned long long start = strtoull(argv[4], NULL, 16), amb = strtoull(argv[5], NULL, 16),
			   in = strtoull(argv[6], NULL, 16);
	bool change = strcmp(argv[3], "-") != 0;
	uid_t uid = change ? (uid_t)strtoul(argv[3], NULL, 10) : 0;
	char err[256];
	struct sandbox_report r;

	if (!p)
		exec_fail("no such policy", 0, 0);
	static const char *const sets[] = {"CapEff", "CapPrm", "CapInh", "CapAmb"};
	for (size_t i = 0; i < 4; i++)
		if (status_field(sets[i]) != (i < 2 ? start : amb))
			exec_fail(sets[i], status_field(sets[i]), i < 2 ? start : amb);
	static const int data_fd = 4; /* stored's data directory, where the test gave it one */
	struct sandbox_opts so = {.keep_fds = &data_fd, .nkeep = 1, .change_ids = change, .uid = uid, .gid = uid};
	if (sandbox_enter(p, &so, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx-exec: %s\n", err);
		_exit(1);
	}
	/* only capget and prctl(PR_GET_*) from here on: the policy's filter is loaded */
	if (sandbox_report_self(&r) < 0 || r.seccomp != 2 || !r.no_new_privs || r.dumpable)
		exec_fail("not sandboxed", (unsigned long long)r.seccomp, 2);
	if (r.capeff != in)
		exec_fail("caps in the sandbox", r.capeff, in);
	if (change && (getuid() != uid || getgid() != uid))
		exec_fail("uid", getuid(), uid);
	_exit(0);
}

static int self_exe = -1;

/* The spawner's sandbox, all its stages (the stray-fd stage keeps our own program's fd). */
static void enter_spawner(void)
{
	char err[256];
	self_exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	CHECK(self_exe >= 0);
	struct sandbox_opts so = {.keep_fds = &self_exe, .nkeep = 1};
	if (sandbox_enter(&policy_spawner, &so, err, sizeof(err)) < 0)
		fprintf(stderr, "%s\n", err);
	CHECK(true);
}

/* As the spawner does for a helper: fork, optionally prepare the child (its uid, caps to
 * pass, a user namespace), execveat the program fd. Returns the child's wait status. */
static int spawn_exec(const cap_value_t *pass, size_t npass, int (*prepare)(void), const char *policy, const char *uid,
		      unsigned long long start, unsigned long long amb, unsigned long long in)
{
	char a4[32], a5[32], a6[32];
	snprintf(a4, sizeof(a4), "%llx", start);
	snprintf(a5, sizeof(a5), "%llx", amb);
	snprintf(a6, sizeof(a6), "%llx", in);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char *const argv[] = {"sbx_caps", "--sbx-exec", (char *)policy, (char *)uid, a4, a5, a6, NULL};
		char *const envp[] = {NULL};
		if (prepare && prepare() < 0)
			_exit(3);
		if (pass && sandbox_pass_caps_on_exec(pass, npass) < 0)
			_exit(4);
		syscall(SYS_execveat, self_exe, "", argv, envp, AT_EMPTY_PATH);
		_exit(5);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "exec'd %s: status %#x\n", policy, st);
	return st;
}

/* ---- fds and rlimits (no root needed) ---- */

TEST(close_fds_keeps_stdio_and_the_listed_fds)
{
	int keep[80], nkeep = 0;
	for (int fd = 3; fd < 40; fd++)
		CHECK(dup2(2, fd) == fd);
	keep[nkeep++] = 8;
	keep[nkeep++] = -1; /* an fd the caller does not have: ignored */
	keep[nkeep++] = 5;
	keep[nkeep++] = 8; /* twice */
	keep[nkeep++] = 39;
	while (nkeep < 80) /* more than any fixed buffer would hold */
		keep[nkeep++] = 1000;
	CHECK_EQ(sandbox_close_fds(keep, (size_t)nkeep), 0);
	for (int fd = 0; fd < 40; fd++) {
		bool open = fcntl(fd, F_GETFD) >= 0;
		CHECK_EQ(open, fd <= 2 || fd == 5 || fd == 8 || fd == 39);
	}
	CHECK_EQ(sandbox_close_fds(NULL, 0), 0);
	CHECK(fcntl(5, F_GETFD) < 0 && fcntl(2, F_GETFD) >= 0);
}

TEST(rlimits_from_the_policy)
{
	struct rlimit rl;
	CHECK_EQ(sandbox_set_rlimits(&policy_netd), 0);
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK(rl.rlim_cur == 256 && rl.rlim_max == 256);
	CHECK(getrlimit(RLIMIT_NPROC, &rl) == 0);
	CHECK(rl.rlim_cur == 4096 && rl.rlim_max == 4096); /* its namespace-making child */
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0);
	CHECK(rl.rlim_cur == 0 && rl.rlim_max == 0);
}

TEST(a_failed_stage_is_named)
{
	static const struct sandbox_rlimit bad[] = {{RLIMIT_NOFILE, 10, 5}}; /* soft above hard */
	struct sandbox_policy p = policy_netd;
	char err[256] = "";
	p.rlimits = bad;
	p.nrlimits = 1;
	CHECK_EQ(sandbox_enter(&p, NULL, err, sizeof(err)), -1);
	CHECK(strstr(err, "netd sandbox, stage 2 (rlimits): Invalid argument") != NULL);
	CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0); /* nothing after it ran */
}

static void append_name(const char *name, void *arg)
{
	char *buf = arg;
	strcat(buf, name);
	strcat(buf, " ");
}

TEST(cap_names_are_upper_case)
{
	char got[256] = "";
	sandbox_cap_names(1ull << CAP_KILL | net_admin | 1ull << 63, append_name, got);
	CHECK_STR(got, "CAP_KILL CAP_NET_ADMIN CAP_63 ");
	got[0] = '\0';
	sandbox_cap_names(0, append_name, got);
	CHECK_STR(got, "");
}

TEST(report_matches_proc)
{
	check_report_matches_proc();
	CHECK_EQ(sandbox_no_new_privs(), 0);
	CHECK_EQ(sandbox_nondumpable(), 0);
	check_report_matches_proc();
}

/* ---- capabilities (root) ---- */

TEST(netd_keeps_only_net_admin_across_a_uid_switch)
{
	need_root();
	CHECK_EQ(sandbox_close_fds(NULL, 0), 0);
	CHECK_EQ(sandbox_set_rlimits(&policy_netd), 0);
	CHECK_EQ(sandbox_unshare(&policy_netd), 0);
	CHECK_EQ(sandbox_drop_caps(&policy_netd, true, NOBODY, NOBODY), 0);
	CHECK_EQ(sandbox_no_new_privs(), 0);
	CHECK_EQ(sandbox_nondumpable(), 0);
	check_sets(net_admin, net_admin);
	CHECK_EQ(status_field("Uid"), NOBODY);
	CHECK_EQ(status_field("Gid"), NOBODY);
	CHECK_EQ(getgroups(0, NULL), 0);
	CHECK_EQ(status_field("NoNewPrivs"), 1);
	CHECK_EQ(status_field("Seccomp"), 0);
	check_report_matches_proc();
	/* locked: no way back to root semantics, to root, or to ambient caps */
	CHECK_EQ(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0),
		 locked_bits | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED);
	CHECK(prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) < 0);
	CHECK(setresuid(0, 0, 0) < 0);
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0);
	/* the filter last; then only what netd's policy allows: capget and prctl(PR_GET_*) */
	CHECK_EQ(sandbox_seccomp(&policy_netd), 0);
	struct sandbox_report r;
	CHECK_EQ(sandbox_report_self(&r), 0);
	CHECK_EQ(r.capeff, net_admin);
	CHECK_EQ(r.seccomp, 2);
	CHECK(r.no_new_privs && !r.dumpable);
}

TEST(sandbox_enter_runs_every_stage)
{
	need_root();
	char err[256] = "";
	int keep = 2;
	struct sandbox_opts so = {.keep_fds = &keep, .nkeep = 1, .change_ids = true, .uid = NOBODY, .gid = NOBODY};
	if (sandbox_enter(&policy_netd, &so, err, sizeof(err)) < 0)
		fprintf(stderr, "%s\n", err);
	CHECK_STR(err, "");
	struct sandbox_report r;
	CHECK_EQ(sandbox_report_self(&r), 0);
	CHECK_EQ(r.capeff, net_admin);
	CHECK_EQ(r.seccomp, 2);
	CHECK(r.no_new_privs && !r.dumpable);
	CHECK_EQ(getuid(), NOBODY);
}

TEST(uffdd_stored_and_supervisor_keep_nothing)
{
	need_root();
	const struct sandbox_policy *const none[] = {&policy_uffdd, &policy_stored, &policy_supervisor};
	for (size_t i = 0; i < 3; i++) {
		fflush(NULL);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			CHECK_EQ(sandbox_drop_caps(none[i], true, NOBODY, NOBODY), 0);
			check_sets(0, 0);
			CHECK_EQ(status_field("Uid"), NOBODY);
			CHECK(setresuid(0, 0, 0) < 0);
			_exit(0);
		}
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

TEST(spawner_keeps_its_caps_and_may_raise_ambient)
{
	need_root();
	unsigned long long want = mask_of(&policy_spawner);
	CHECK_EQ(want, 1ull << CAP_SETUID | 1ull << CAP_SETGID | 1ull << CAP_SETPCAP | 1ull << CAP_KILL | net_admin |
			   1ull << CAP_SYS_ADMIN);
	CHECK_EQ(sandbox_drop_caps(&policy_spawner, false, 0, 0), 0);
	check_sets(want, want);
	CHECK_EQ(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), locked_bits);
	check_report_matches_proc();
	/* ambient raising stays possible, for caps it holds and nothing else */
	CHECK_EQ(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_ADMIN, 0, 0), 0);
	const cap_value_t module = CAP_SYS_MODULE;
	CHECK_EQ(sandbox_pass_caps_on_exec(&module, 1), -EPERM);
}

/* the launcher proper keeps only CAP_KILL, and may hand nothing on */
TEST(launcher_keeps_only_kill)
{
	need_root();
	CHECK_EQ(mask_of(&policy_launcher), 1ull << CAP_KILL);
	CHECK(!policy_launcher.allow_ambient);
	CHECK_EQ(sandbox_drop_caps(&policy_spawner, false, 0, 0), 0);
	CHECK_EQ(sandbox_drop_caps(&policy_launcher, false, 0, 0), 0);
	check_sets(1ull << CAP_KILL, 1ull << CAP_KILL);
	const cap_value_t kill_cap = CAP_KILL;
	CHECK(sandbox_pass_caps_on_exec(&kill_cap, 1) < 0);
}

static int become_netd_as_nobody(void)
{
	return spawn_become(NOBODY, NOBODY, &policy_netd);
}

static int become_uffdd_as_nobody(void)
{
	return spawn_become(NOBODY, NOBODY, &policy_uffdd);
}

static int become_stored_as_nobody(void)
{
	int dir = open("/tmp", O_PATH | O_DIRECTORY); /* its data directory: fd 4, kept across exec */
	return dir < 0 || (dir != 4 && dup2(dir, 4) < 0) ? -1 : spawn_become(NOBODY, NOBODY, &policy_stored);
}

TEST(spawner_hands_exact_caps_to_a_helper_it_execs)
{
	need_root();
	unsigned long long bnd = mask_of(&policy_spawner);
	enter_spawner();
	check_sets(bnd, bnd);
	/* as spawner.c: the helper starts as its own uid with its caps, CAP_SETPCAP and (for its
	 * empty root) CAP_SYS_ADMIN; once sandboxed, only its own are left */
	unsigned long long extra = 1ull << CAP_SETPCAP | 1ull << CAP_SYS_ADMIN;
	int st =
	    spawn_exec(NULL, 0, become_netd_as_nobody, "netd", "-", net_admin | extra, net_admin | extra, net_admin);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = spawn_exec(NULL, 0, become_uffdd_as_nobody, "uffdd", "-", extra, extra, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = spawn_exec(NULL, 0, become_stored_as_nobody, "stored", "-", extra, extra, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a program without caps and without an empty root starts with none at all */
	static const struct sandbox_policy bare = {.name = "bare"};
	CHECK_EQ(spawn_become(NOBODY, NOBODY, &bare), 0);
	check_sets(0, 0);
}

/* ---- rootless: an unprivileged launcher, a user namespace per helper ---- */

static uid_t outer_uid;
static gid_t outer_gid;

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* as the spawner's sandbox_userns(0, 0, 0) */
static int user_ns(void)
{
	char map[64];
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0 ||
	    write_file("/proc/self/setgroups", "deny") < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)outer_uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)outer_gid);
	return write_file("/proc/self/gid_map", map);
}

TEST(rootless_spawner_execs_a_helper_in_its_own_user_namespace)
{
	if (geteuid() == 0) /* become an ordinary user first: no caps at all */
		CHECK(setgroups(0, NULL) == 0 && setresgid(NOBODY, NOBODY, NOBODY) == 0 &&
		      setresuid(NOBODY, NOBODY, NOBODY) == 0);
	CHECK_EQ(status_field("CapEff"), 0);
	outer_uid = getuid();
	outer_gid = getgid();
	/* can this machine give an unprivileged user a user namespace at all? */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		SKIP("no user namespaces for unprivileged users here");

	enter_spawner();
	check_sets(0, status_field("CapBnd")); /* nothing to keep, nothing it could lock */
	/* root in its namespace: every cap there on arrival; netd's alone once sandboxed */
	unsigned long long full = (1ull << cap_max_bits()) - 1;
	st = spawn_exec(NULL, 0, user_ns, "netd", "-", full, 0, net_admin);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = spawn_exec(NULL, 0, user_ns, "uffdd", "-", full, 0, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(unprivileged_process_gets_no_caps_and_no_error)
{
	if (geteuid() == 0)
		CHECK(setresgid(NOBODY, NOBODY, NOBODY) == 0 && setresuid(NOBODY, NOBODY, NOBODY) == 0);
	CHECK_EQ(status_field("CapEff"), 0);
	unsigned long long bnd = status_field("CapBnd");
	int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	CHECK_EQ(sandbox_drop_caps(&policy_netd, false, 0, 0), 0);
	CHECK_EQ(sandbox_drop_caps(&policy_spawner, false, 0, 0), 0);
	check_sets(0, bnd);
	CHECK_EQ(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), bits); /* untouched: no CAP_SETPCAP */
	/* but switching uid needs what it lacks */
	CHECK(sandbox_drop_caps(&policy_netd, true, 0, 0) < 0);
}
