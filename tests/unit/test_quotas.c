/* common/quotas.c: the shipped file is the built-in defaults; lines are parsed whole, a bad
 * one names its line; a user's limits fall back to the defaults key by key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/quotas.h"
#include "tests/unit/check.h"

static struct quotas q;
static char err[512];

TEST(shipped_file_is_the_defaults)
{
	struct quotas d;
	quotas_default(&d);
	quotas_default(&q);
	CHECK_EQ(quotas_load(&q, "etc/quotas.conf", err, sizeof(err)), 0);
	CHECK(memcmp(&q.def, &d.def, sizeof(d.def)) == 0);
	CHECK_EQ(q.nusers, 0);
}

TEST(missing_file_leaves_the_defaults)
{
	quotas_default(&q);
	CHECK_EQ(quotas_load(&q, "/nonexistent/quotas.conf", err, sizeof(err)), 0);
	CHECK_EQ(q.def.v[Q_VMS], 64);
}

TEST(user_over_default_key_by_key)
{
	quotas_default(&q);
	CHECK_EQ(quotas_parse(&q,
			      "# comment\n\ndefault vms 10\nuser 1234 vms_running 2 # two\nuser 1234 mem_mib "
			      "unlimited\ndefault vcpus 3\n",
			      err, sizeof(err)),
		 0);
	struct quota_limits l;
	quotas_for(&q, 1234, &l);
	CHECK_EQ(l.v[Q_VMS], 10);
	CHECK_EQ(l.v[Q_VMS_RUNNING], 2);
	CHECK(l.v[Q_MEM_MIB] == QUOTA_UNLIMITED);
	CHECK_EQ(l.v[Q_VCPUS], 3); /* a default set after the user's line still applies */
	quotas_for(&q, 999, &l);
	CHECK_EQ(l.v[Q_VMS_RUNNING], 16);
	CHECK_EQ(l.v[Q_MEM_MIB], 32768);
}

TEST(user_by_name)
{
	quotas_default(&q);
	CHECK_EQ(quotas_parse(&q, "user root ports 1\n", err, sizeof(err)), 0);
	struct quota_limits l;
	quotas_for(&q, 0, &l);
	CHECK_EQ(l.v[Q_PORTS], 1);
}

static void refused(const char *text, const char *want)
{
	quotas_default(&q);
	CHECK_EQ(quotas_parse(&q, text, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fprintf(stderr, "'%s': error '%s' lacks '%s'\n", text, err, want);
	CHECK(strstr(err, want) != NULL);
}

TEST(bad_lines_name_their_line)
{
	refused("default vms 1\n\nlimit vms 2\n", "line 3:");
	refused("default disk 5\n", "no limit 'disk'");
	refused("default vms -1\n", "not a number");
	refused("default vms 99999999999\n", "not a number");
	refused("default vms\n", "wants KEY N");
	refused("default vms 1 2\n", "wants KEY N");
	refused("user vms 1\n", "wants NAME|UID KEY N");
	refused("user no-such-user-fcvm vms 1\n", "no user 'no-such-user-fcvm'");
}

TEST(too_many_users)
{
	quotas_default(&q);
	char *text = malloc(64 * (QUOTA_USERS_MAX + 2));
	CHECK(text != NULL);
	size_t off = 0;
	for (int i = 0; i <= QUOTA_USERS_MAX; i++)
		off += (size_t)sprintf(text + off, "user %d vms 1\n", 10000 + i);
	CHECK_EQ(quotas_parse(&q, text, err, sizeof(err)), -1);
	CHECK(strstr(err, "more than") != NULL);
	free(text);
}
