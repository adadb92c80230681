/* policyc refuses policies nobody can read (rules without a reason, unknown directives,
 * include cycles, contradictions) and settles what libseccomp would otherwise settle
 * silently (duplicates, unconditional vs conditional rules, includes). */
#include "tests/unit/check.h"

static char dir[] = "/tmp/fcvm-policyc.XXXXXX";
static char out[16384]; /* the generated C of the last compile() */

static const char *build_dir(void)
{
	return getenv("BUILD") ? getenv("BUILD") : "build";
}

static void put(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

/* exit status of policyc on dir/t.policy; its stderr in err, its output in out */
static int compile(char *err, size_t cap)
{
	char cmd[768], path[256];
	snprintf(cmd, sizeof(cmd), "%s/policyc -I %s %s/t.policy >%s/out.c 2>%s/err", build_dir(), dir, dir, dir, dir);
	int st = system(cmd);
	snprintf(path, sizeof(path), "%s/err", dir);
	slurp(path, err, cap);
	snprintf(path, sizeof(path), "%s/out.c", dir);
	slurp(path, out, sizeof(out));
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* a fresh directory per test (each runs in its own process), removed when it passes */
static void setup(void)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/policyc", build_dir());
	if (access(path, X_OK) != 0)
		SKIP("build/policyc not built");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
}

/* how often s occurs in the generated C */
static int count(const char *s)
{
	int n = 0;
	for (const char *p = out; (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

TEST(accepts_a_justified_policy)
{
	char err[1024];
	setup();
	put("t.policy", "# a comment line\n\ncaps CAP_NET_ADMIN  # why\nallow read  # frames\n"
			"allow write a0 == 2  # logs\nrlimit NOFILE 64 unlimited  # few fds\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK(strstr(out, "const struct sandbox_policy policy_t = {"));
	CHECK(strstr(out, "{ RLIMIT_NOFILE, 64, RLIM_INFINITY }"));
	CHECK(strstr(out, "{ 0, SCMP_CMP_EQ, (scmp_datum_t)(2), 0 }"));
	CHECK(strstr(out, "/* t.policy:5: logs */"));
}

TEST(refuses_a_rule_without_why)
{
	char err[1024];
	setup();
	put("t.policy", "allow read  # frames\nallow ptrace\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "t.policy:2") && strstr(err, "no '# why' comment"));
	put("t.policy", "allow ptrace   #   \n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read  # x\ncaps CAP_KILL\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "t.policy:2: 'caps' has no '# why' comment"));
}

TEST(refuses_unknown_directive)
{
	char err[1024];
	setup();
	put("t.policy", "permit read  # frames\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "unknown directive 'permit'"));
}

TEST(refuses_include_cycle)
{
	char err[1024];
	setup();
	put("a.inc", "include b  # loop\n");
	put("b.inc", "include a  # loop\n");
	put("t.policy", "include a  # start\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "include cycle: a -> b -> a"));
	/* through the policy itself */
	put("a.inc", "include t  # back\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "include cycle: t -> a -> t"));
}

TEST(a_diamond_is_no_cycle)
{
	char err[1024];
	setup();
	put("base.inc", "allow read  # shared\n");
	put("a.inc", "include base  # x\nallow write  # a\n");
	put("b.inc", "include base  # x\nallow close  # b\n");
	put("t.policy", "include a  # x\ninclude b  # y\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK_EQ(count("SCMP_SYS(read),"), 1);
}

TEST(refuses_bad_rules)
{
	char err[1024];
	setup();
	put("t.policy", "allow read a0 == 1 a1 == 2 a2 == 3 a3 == 4  # too many\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "at most 3"));
	put("t.policy", "allow read a0 < 1  # no such comparison\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read a6 == 1  # no such argument\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read a0 ==  # no value\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read a0 & 3  # no value\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read a0 == \"x\"  # not a C constant\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow  # no syscall\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read  # x\nheader ../x.h  # not a header\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read  # x\nnamespaces net moon  # no such namespace\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "allow read  # x\nrlimit NOFILE 1 1  # x\nrlimit NOFILE 2 2  # twice\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	put("t.policy", "caps CAP_KILL  # nothing else\n");
	CHECK_EQ(compile(err, sizeof(err)), 1); /* no rules: it could not even exit */
	put("t.policy", "allow read  # x\ninclude nope  # missing\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
}

TEST(refuses_conflicting_actions)
{
	char err[1024];
	setup();
	/* one file saying both */
	put("t.policy", "allow clone3  # x\nenosys clone3  # y\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "contradicts"));
	/* the same conditions, two actions */
	put("t.policy", "allow prctl a0 == 1  # x\neperm prctl a0 == 1  # y\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	/* an unconditional errno would swallow a conditional errno of another kind */
	put("t.policy", "enosys prctl  # x\neperm prctl a0 == 1  # y\nallow read  # z\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
}

TEST(an_allow_overrides_an_included_enosys)
{
	char err[1024];
	setup();
	put("probes.inc", "enosys openat2  # probed\nenosys clone3  # probed\n");
	put("t.policy", "include probes  # defaults\nallow openat2  # this one needs it\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK_EQ(count("SCMP_SYS(openat2), \"openat2\", SB_ALLOW"), 1);
	CHECK_EQ(count("SCMP_SYS(openat2), \"openat2\", SB_ENOSYS"), 0);
	CHECK_EQ(count("SCMP_SYS(clone3), \"clone3\", SB_ENOSYS"), 1);
}

TEST(unconditional_allow_subsumes_and_duplicates_merge)
{
	char err[1024];
	setup();
	put("h.inc", "allow write a0 == 2  # logs\nallow recvmsg a0 == 3  # channel\nallow read  # x\n");
	put("t.policy", "include h  # helper\nallow write  # anything\nallow read  # again\n"
			"allow recvmsg a0 == 3  # the same again\nallow recvmsg a0 == 4  # another\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK_EQ(count("SCMP_SYS(write),"), 1);
	CHECK(strstr(out, "SCMP_SYS(write), \"write\", SB_ALLOW, 0,"));
	CHECK_EQ(count("SCMP_SYS(read),"), 1);
	CHECK_EQ(count("SCMP_SYS(recvmsg),"), 2); /* a0 == 3 or a0 == 4 */
}

TEST(an_included_policy_brings_rules_and_caps_only)
{
	char err[1024];
	setup();
	put("helper.policy", "caps CAP_NET_ADMIN  # its own\nnamespaces net  # its own\nrlimit NPROC 0 0  # its own\n"
			     "allow-ambient  # its own\nallow recvmsg  # its work\n");
	put("t.policy", "caps CAP_SETUID  # mine\nrlimit CORE 0 0  # mine\ninclude helper  # superset\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK(strstr(out, "CAP_SETUID,") && strstr(out, "CAP_NET_ADMIN,"));
	CHECK(strstr(out, "SCMP_SYS(recvmsg)"));
	CHECK(!strstr(out, "RLIMIT_NPROC") && strstr(out, "RLIMIT_CORE"));
	CHECK(strstr(out, ".unshare_flags = 0,"));
	CHECK(strstr(out, ".allow_ambient = false,"));
	/* compiled on its own, the same file keeps them */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp %s/helper.policy %s/t.policy", dir, dir);
	CHECK(system(cmd) == 0);
	CHECK_EQ(compile(err, sizeof(err)), 0);
	CHECK(strstr(out, ".unshare_flags = CLONE_NEWNET,") && strstr(out, "RLIMIT_NPROC"));
	CHECK(strstr(out, ".allow_ambient = true,"));
}

TEST(fragments_describe_no_process)
{
	char err[1024];
	setup();
	put("f.inc", "allow read  # x\nrlimit NOFILE 1 1  # a process's\n");
	put("t.policy", "include f  # fragment\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
	CHECK(strstr(err, "belongs in a .policy file"));
	put("f.inc", "allow read  # x\n");
	put("f.policy", "allow read  # x\n");
	CHECK_EQ(compile(err, sizeof(err)), 1); /* which one? */
}

/* Names become C tokens: the C compiler is the spell checker. */
TEST(unknown_names_fail_the_c_build)
{
	char err[1024], cmd[768];
	setup();
	if (system("cc --version >/dev/null 2>&1") != 0)
		SKIP("no C compiler");
	put("t.policy", "caps CAP_NET_ADMIN  # x\nallow read a0 == AF_NETLINK  # x\nheader <linux/nsfs.h>  # x\n"
			"allow ioctl a1 == NS_GET_NSTYPE  # x\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
	snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -D_GNU_SOURCE -fsyntax-only -I. %s/out.c 2>/dev/null", dir);
	CHECK_EQ(system(cmd), 0);
	static const char *const bad[] = {"allow no_such_call  # x\n", "allow read a0 == AF_NO_SUCH  # x\n",
					  "caps CAP_NO_SUCH  # x\nallow read  # x\n",
					  "rlimit NO_SUCH 1 1  # x\nallow read  # x\n",
					  "allow socketcall  # not on x86_64\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put("t.policy", bad[i]);
		CHECK_EQ(compile(err, sizeof(err)), 0);
		CHECK(system(cmd) != 0);
	}
}
