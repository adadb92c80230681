#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/argv.h"
#include "common/instance.h"
#include "common/util.h"

static const char *const helper_names[HELPER__COUNT] = {
    [HELPER_NETD] = "netd",
    [HELPER_STORED] = "stored",
    [HELPER_UFFDD] = "uffdd",
};

const char *helper_name(enum helper_id id)
{
	return (unsigned)id < HELPER__COUNT ? helper_names[id] : "?";
}

int helper_by_name(const char *name)
{
	for (int i = 0; i < HELPER__COUNT; i++)
		if (name && strcmp(name, helper_names[i]) == 0)
			return i;
	return -1;
}

int instance_args(const struct instance *in, char **argv, size_t max, char *buf, size_t len)
{
	/* room for the NULL after the last */
	struct argv_builder a = {.argv = (const char **)argv, .max = max ? max - 1 : 0, .buf = buf, .cap = len};
	argv_add(&a, "--mode=%s", in->system_mode ? "system" : "rootless");
	argv_add(&a, "--state-dir=%s", in->state_dir);
	argv_add(&a, "--socket=%s", in->socket_path);
	argv_add(&a, "--assets=%s", in->assets_dir);
	argv_add(&a, "--owner=%u", (unsigned)in->owner_uid);
	argv_add(&a, "--instance=%s", in->tag);
	if (in->multi_user)
		argv_add(&a, "--multi-user");
	if (in->cache_max_set)
		argv_add(&a, "--cache-max-mb=%llu", (unsigned long long)in->cache_max_mb);
	if (in->quotas_path[0])
		argv_add(&a, "--quotas=%s", in->quotas_path);
	if (a.overflow)
		return -1;
	argv[a.n] = NULL;
	return (int)a.n;
}

static bool copy(char *dst, size_t len, const char *src)
{
	return src[0] == '/' && snprintf(dst, len, "%s", src) < (int)len;
}

int instance_parse(struct instance *in, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"mode", required_argument, NULL, 'm'},   {"state-dir", required_argument, NULL, 's'},
	    {"socket", required_argument, NULL, 'S'}, {"assets", required_argument, NULL, 'a'},
	    {"owner", required_argument, NULL, 'o'},  {"instance", required_argument, NULL, 'i'},
	    {"multi-user", no_argument, NULL, 'M'},   {"cache-max-mb", required_argument, NULL, 'c'},
	    {"quotas", required_argument, NULL, 'q'}, {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;
	bool have_mode = false;
	memset(in, 0, sizeof(*in));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'm':
			have_mode = ok = strcmp(optarg, "system") == 0 || strcmp(optarg, "rootless") == 0;
			in->system_mode = strcmp(optarg, "system") == 0;
			break;
		case 's':
			ok = copy(in->state_dir, sizeof(in->state_dir), optarg);
			break;
		case 'S':
			ok = copy(in->socket_path, sizeof(in->socket_path), optarg);
			break;
		case 'a':
			ok = copy(in->assets_dir, sizeof(in->assets_dir), optarg);
			break;
		case 'o':
			ok = parse_uint(optarg, UINT32_MAX - 1, &v);
			in->owner_uid = (uid_t)v;
			break;
		case 'i':
			ok = strlen(optarg) == 8 && snprintf(in->tag, sizeof(in->tag), "%s", optarg) == 8;
			break;
		case 'M':
			in->multi_user = true;
			break;
		case 'c':
			ok = parse_uint(optarg, UINT64_MAX >> 21, &in->cache_max_mb);
			in->cache_max_set = true;
			break;
		case 'q':
			ok = copy(in->quotas_path, sizeof(in->quotas_path), optarg);
			break;
		default:
			ok = false;
		}
		if (!ok)
			return -1;
	}
	if (!have_mode || optind != argc || !in->state_dir[0] || !in->socket_path[0] || !in->tag[0])
		return -1;
	in->mode_name = in->system_mode ? "system" : "rootless";
	in->sup_uid = getuid();
	in->sup_gid = getgid();
	for (int i = 0; i < HELPER__COUNT && !in->system_mode; i++) {
		in->helper_uid[i] = in->sup_uid; /* rootless: every process is the user on the host */
		in->helper_gid[i] = in->sup_gid;
	}
	return 0;
}
