/* Where an instance's socket may live and whom to trust at its other end (common/paths.h). */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/paths.h"
#include "common/util.h"

#define SUN_PATH_MAX   sizeof(((struct sockaddr_un *)0)->sun_path)
#define HOME_STATE_DIR "/.local/state/fcvm/run" /* under HOME: an XDG_STATE_HOME-style place */
#define WHY_MAX	       512

static int say(char *why, size_t len, int err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

static int say_errno(char *why, size_t len, const char *path)
{
	int e = errno;
	return say(why, len, -e, "%s: %s", path, strerror(e));
}

/* "uid 65534 (nobody)", or "uid 1234" for a uid with no name. */
static const char *who(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char pwbuf[4096];
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		snprintf(buf, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/* Owner and write bits: only uid or root may own it; group/other write only when sticky_ok
 * and the sticky bit is set. */
static int check_owner_mode(const char *path, const struct stat *st, uid_t uid, bool sticky_ok, char *why, size_t len)
{
	unsigned mode = st->st_mode & 07777;
	char owner[300];
	if (st->st_uid != uid && st->st_uid != 0)
		return say(why, len, -EPERM, "%s is owned by %s, not you", path, who(st->st_uid, owner, sizeof(owner)));
	if ((mode & (S_IWGRP | S_IWOTH)) && !(sticky_ok && (mode & S_ISVTX)))
		return say(why, len, -EPERM, "%s is writable by others (mode %04o%s)", path, mode,
			   sticky_ok ? ", not sticky" : "");
	return 0;
}

int paths_check_private_dir(const char *dir, uid_t uid, char *why, size_t whylen)
{
	struct stat st;
	if (lstat(dir, &st) < 0)
		return say_errno(why, whylen, dir);
	if (S_ISLNK(st.st_mode))
		return say(why, whylen, -ELOOP, "%s is a symbolic link", dir);
	if (!S_ISDIR(st.st_mode))
		return say(why, whylen, -ENOTDIR, "%s is not a directory", dir);
	return check_owner_mode(dir, &st, uid, false, why, whylen);
}

/* The directory dir is in: "." for a bare name, "/" for "/x" and "/". */
static int parent_of(const char *dir, char *out, size_t len)
{
	size_t n = strlen(dir);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, dir, n + 1);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, len, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

static int check_ancestor(const char *path, const char *dir, uid_t uid, char *why, size_t len)
{
	struct stat st;
	char reason[WHY_MAX];
	int rc = lstat(path, &st) < 0 ? say_errno(reason, sizeof(reason), path)
				      : check_owner_mode(path, &st, uid, true, reason, sizeof(reason));
	return rc < 0 ? say(why, len, rc, "%s, above %s", reason, dir) : 0;
}

int paths_check_parents(const char *dir, uid_t uid, char *why, size_t whylen)
{
	char parent[PATH_MAX], real[PATH_MAX];
	if (parent_of(dir, parent, sizeof(parent)) < 0)
		return say(why, whylen, -ENAMETOOLONG, "%s: path too long", dir);
	if (!realpath(parent, real))
		return say_errno(why, whylen, parent);
	/* "/", then each longer prefix of the resolved path (no symbolic links left in it) */
	int rc = check_ancestor("/", dir, uid, why, whylen);
	for (char *p = real + 1; rc == 0 && *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		rc = check_ancestor(real, dir, uid, why, whylen);
		*p = '/';
	}
	if (rc == 0 && strcmp(real, "/") != 0)
		rc = check_ancestor(real, dir, uid, why, whylen);
	return rc;
}

int paths_trusted_socket(const char *dir, const char *name, uid_t uid, char *sock, size_t socklen, char *why,
			 size_t whylen)
{
	char real[PATH_MAX];
	int rc = paths_check_private_dir(dir, uid, why, whylen);
	if (rc == 0)
		rc = paths_check_parents(dir, uid, why, whylen);
	if (rc < 0)
		return rc;
	if (!realpath(dir, real))
		return say_errno(why, whylen, dir);
	int n = snprintf(sock, socklen, "%s/%s", real, name);
	if (n < 0 || (size_t)n >= socklen || (size_t)n >= SUN_PATH_MAX)
		return say(why, whylen, -ENAMETOOLONG, "%s/%s is too long for a unix socket (at most %zu bytes)", real,
			   name, SUN_PATH_MAX - 1);
	return 0;
}

uid_t paths_system_uid(void)
{
	uid_t uid;
	gid_t gid;
	return lookup_user(FCVM_SUPERVISOR_USER, &uid, &gid) == 0 ? uid : PATHS_NO_UID;
}

int paths_check_socket_peer(int fd, uid_t self, uid_t system_uid, char *why, size_t whylen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int e = errno;
		return say(why, whylen, -e, "cannot tell who serves it: %s", strerror(e));
	}
	if (cr.uid == self || cr.uid == 0 || (system_uid != PATHS_NO_UID && cr.uid == system_uid))
		return 0;
	char peer[300];
	return say(why, whylen, -EPERM, "it is served by %s (pid %d), neither you nor root nor %s",
		   who(cr.uid, peer, sizeof(peer)), (int)cr.pid, FCVM_SUPERVISOR_USER);
}

/* ---- the default state directory ---- */

static char default_dir[SUN_PATH_MAX];
static char default_why[3 * WHY_MAX];

static void passed_over(const char *what, const char *why)
{
	size_t n = strlen(default_why);
	snprintf(default_why + n, sizeof(default_why) - n, "%s%s %s", n ? "; " : "", what, why);
}

/* base (resolved into real) is the caller's own directory, private, and so are the
 * directories above it. */
static int check_own_dir(const char *base, uid_t uid, char *real, char *why, size_t len)
{
	struct stat st;
	if (base[0] != '/')
		return say(why, len, -EINVAL, "'%s' is not an absolute path", base);
	if (!realpath(base, real))
		return say_errno(why, len, base);
	int rc = paths_check_private_dir(real, uid, why, len);
	char owner[300];
	if (rc == 0 && lstat(real, &st) == 0 && st.st_uid != uid)
		rc = say(why, len, -EPERM, "%s is owned by %s, not you", real, who(st.st_uid, owner, sizeof(owner)));
	return rc < 0 ? rc : paths_check_parents(real, uid, why, len);
}

/* default_dir = base + suffix, if base passes check_own_dir and the socket's path fits. */
static int try_base(const char *base, const char *suffix, uid_t uid, char *why, size_t len)
{
	char real[PATH_MAX];
	int rc = check_own_dir(base, uid, real, why, len);
	if (rc < 0)
		return rc;
	int n = snprintf(default_dir, sizeof(default_dir), "%s%s", real, suffix);
	if (n < 0 || (size_t)n + 1 + strlen(FCVM_SOCKET_NAME) >= SUN_PATH_MAX)
		return say(why, len, -ENAMETOOLONG, "%s%s/%s would not fit in a unix socket path (%zu bytes)", real,
			   suffix, FCVM_SOCKET_NAME, SUN_PATH_MAX - 1);
	return 0;
}

static const char *home_state_dir(uid_t uid)
{
	char why[WHY_MAX], buf[4096];
	const char *home = getenv("HOME");
	struct passwd pw, *res = NULL;
	if (home && *home) {
		if (try_base(home, HOME_STATE_DIR, uid, why, sizeof(why)) == 0)
			return default_dir;
		passed_over("HOME:", why);
	}
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		snprintf(why, sizeof(why), "uid %u has no entry in the password database", (unsigned)uid);
		passed_over("home:", why);
		return NULL;
	}
	if (home && strcmp(home, res->pw_dir) == 0)
		return NULL;
	if (try_base(res->pw_dir, HOME_STATE_DIR, uid, why, sizeof(why)) == 0)
		return default_dir;
	passed_over("your home in the password database:", why);
	return NULL;
}

const char *paths_default_state_dir(void)
{
	char why[WHY_MAX];
	uid_t uid = geteuid();
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	default_why[0] = '\0';
	if (xdg && *xdg) {
		if (try_base(xdg, "/fcvm", uid, why, sizeof(why)) == 0)
			return default_dir;
		passed_over("XDG_RUNTIME_DIR:", why);
	}
	return home_state_dir(uid);
}

const char *paths_default_state_dir_why(void)
{
	return default_why;
}
