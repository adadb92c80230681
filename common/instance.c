#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

struct args {
	char **argv;
	size_t n, max;
	char *buf;
	size_t used, len;
	bool overflow;
};

static void arg(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(struct args *a, const char *fmt, ...)
{
	va_list ap;
	if (a->overflow || a->n + 1 >= a->max) {
		a->overflow = true;
		return;
	}
	va_start(ap, fmt);
	int n = vsnprintf(a->buf + a->used, a->len - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= a->len - a->used) {
		a->overflow = true;
		return;
	}
	a->argv[a->n++] = a->buf + a->used;
	a->used += (size_t)n + 1;
}

int instance_args(const struct instance *in, char **argv, size_t max, char *buf, size_t len)
{
	struct args a = {.argv = argv, .max = max, .buf = buf, .len = len};
	arg(&a, "--mode=%s", in->system_mode ? "system" : "rootless");
	arg(&a, "--state-dir=%s", in->state_dir);
	arg(&a, "--socket=%s", in->socket_path);
	arg(&a, "--assets=%s", in->assets_dir);
	arg(&a, "--owner=%u", (unsigned)in->owner_uid);
	arg(&a, "--instance=%s", in->tag);
	if (in->multi_user)
		arg(&a, "--multi-user");
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
	    {"multi-user", no_argument, NULL, 'M'},   {NULL, 0, NULL, 0},
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
