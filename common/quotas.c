/* The quotas file (common/quotas.h): parsed by line, each line a whole setting. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/quotas.h"
#include "common/util.h"

#define QUOTAS_FILE_MAX (64 * 1024)

static const struct {
	const char *name, *unit;
	uint64_t def;
} keys[Q__COUNT] = {
    [Q_VMS] = {"vms", "VMs", 64},
    [Q_VMS_RUNNING] = {"vms_running", "VMs not stopped", 16},
    [Q_VCPUS] = {"vcpus", "vCPUs", 32},
    [Q_MEM_MIB] = {"mem_mib", "MiB of guest memory", 32768},
    [Q_DISK_GIB] = {"disk_gib", "GiB of VM disks", 128},
    [Q_SNAPSHOTS] = {"snapshots", "snapshots", 32},
    [Q_PORTS] = {"ports", "published ports", 64},
};

const char *quota_key_name(enum quota_key k)
{
	return k < Q__COUNT ? keys[k].name : "?";
}

const char *quota_key_unit(enum quota_key k)
{
	return k < Q__COUNT ? keys[k].unit : "?";
}

void quotas_default(struct quotas *q)
{
	memset(q, 0, sizeof(*q));
	for (int k = 0; k < Q__COUNT; k++)
		q->def.v[k] = keys[k].def;
}

static int key_by_name(const char *s)
{
	for (int k = 0; k < Q__COUNT; k++)
		if (strcmp(keys[k].name, s) == 0)
			return k;
	return -1;
}

static struct quota_user *user_slot(struct quotas *q, uid_t uid)
{
	for (size_t i = 0; i < q->nusers; i++)
		if (q->users[i].uid == uid)
			return &q->users[i];
	if (q->nusers == QUOTA_USERS_MAX)
		return NULL;
	struct quota_user *u = &q->users[q->nusers++];
	memset(u, 0, sizeof(*u));
	u->uid = uid;
	return u;
}

/* One line's words, comments cut: up to 5 (one too many is an error). */
static int split(char *line, char **w, int max)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = 0;
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

static int parse_line(struct quotas *q, char *line, char *err, size_t n)
{
	char *w[4];
	int nw = split(line, w, 4);
	if (nw == 0)
		return 0;
	bool user = strcmp(w[0], "user") == 0;
	if (!user && strcmp(w[0], "default") != 0) {
		snprintf(err, n, "'%s': a line is 'default KEY N' or 'user NAME KEY N'", w[0]);
		return -1;
	}
	if (nw != (user ? 4 : 3)) {
		snprintf(err, n, "%s wants %s", w[0], user ? "NAME|UID KEY N" : "KEY N");
		return -1;
	}
	const char *key = w[user ? 2 : 1], *val = w[user ? 3 : 2];
	int k = key_by_name(key);
	if (k < 0) {
		snprintf(err, n,
			 "no limit '%s' (there are vms, vms_running, vcpus, mem_mib, disk_gib, snapshots, ports)", key);
		return -1;
	}
	uint64_t v;
	if (strcmp(val, "unlimited") == 0)
		v = QUOTA_UNLIMITED;
	else if (!parse_uint(val, UINT32_MAX, &v)) {
		snprintf(err, n, "%s: '%s' is not a number (or unlimited)", key, val);
		return -1;
	}
	if (!user) {
		q->def.v[k] = v;
		return 0;
	}
	uint64_t id;
	uid_t uid;
	gid_t gid;
	if (parse_uint(w[1], UINT32_MAX - 1, &id))
		uid = (uid_t)id;
	else if (lookup_user(w[1], &uid, &gid) < 0) {
		snprintf(err, n, "no user '%s'", w[1]);
		return -1;
	}
	struct quota_user *u = user_slot(q, uid);
	if (!u) {
		snprintf(err, n, "more than %d users", QUOTA_USERS_MAX);
		return -1;
	}
	u->l.v[k] = v;
	u->set_mask |= 1ull << k;
	return 0;
}

int quotas_parse(struct quotas *q, const char *text, char *err, size_t n)
{
	char *copy = strdup(text);
	if (!copy) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	int rc = 0, lineno = 0;
	char why[200];
	for (char *line = copy, *nl; line && rc == 0; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		lineno++;
		rc = parse_line(q, line, why, sizeof(why));
	}
	if (rc < 0)
		snprintf(err, n, "line %d: %s", lineno, why);
	free(copy);
	return rc;
}

int quotas_load(struct quotas *q, const char *path, char *err, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(QUOTAS_FILE_MAX + 1);
	size_t len = 0;
	ssize_t r = 0;
	while (buf && len < QUOTAS_FILE_MAX && (r = read(fd, buf + len, QUOTAS_FILE_MAX - len)) > 0)
		len += (size_t)r;
	close(fd);
	if (!buf || r < 0 || len == QUOTAS_FILE_MAX) {
		snprintf(err, n, "%s: %s", path, !buf ? "out of memory" : r < 0 ? strerror(errno) : "too big");
		free(buf);
		return -1;
	}
	buf[len] = 0;
	char why[256];
	int rc = quotas_parse(q, buf, why, sizeof(why));
	if (rc < 0)
		snprintf(err, n, "%s: %s", path, why);
	free(buf);
	return rc;
}

void quotas_for(const struct quotas *q, uid_t uid, struct quota_limits *out)
{
	*out = q->def;
	for (size_t i = 0; i < q->nusers; i++)
		if (q->users[i].uid == uid)
			for (int k = 0; k < Q__COUNT; k++)
				if (q->users[i].set_mask & (1ull << k))
					out->v[k] = q->users[i].l.v[k];
}
