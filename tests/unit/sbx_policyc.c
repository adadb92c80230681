/* policyc refuses policies nobody can read: rules without a reason, unknown directives,
 * include cycles. */
#include "tests/unit/check.h"

static char dir[] = "/tmp/fcvm-policyc.XXXXXX";

static void put(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* exit status of policyc on dir/t.policy; its stderr in err */
static int compile(char *err, size_t cap)
{
	char cmd[512];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(cmd, sizeof(cmd), "%s/policyc -I %s %s/t.policy 2>&1 >/dev/null", build, dir, dir);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	size_t n = fread(err, 1, cap - 1, p);
	err[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char path[256];
	snprintf(path, sizeof(path), "%s/policyc", build);
	if (access(path, X_OK) != 0)
		SKIP("build/policyc not built");
	CHECK(mkdtemp(dir) != NULL);
}

TEST(accepts_a_justified_policy)
{
	char err[1024];
	setup();
	put("t.policy", "caps CAP_NET_ADMIN  # why\nallow read  # frames\nallow write a0 == 2  # logs\n");
	CHECK_EQ(compile(err, sizeof(err)), 0);
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
	CHECK(strstr(err, "include cycle"));
}

TEST(refuses_conflicting_actions)
{
	char err[1024];
	setup();
	put("t.policy", "allow clone3  # x\nenosys clone3  # y\n");
	CHECK_EQ(compile(err, sizeof(err)), 1);
}
