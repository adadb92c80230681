/* Where the guest assets live (no manifest reading here: the launcher needs only this). */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/assets.h"

static int put(char *buf, size_t n, const char *a, const char *b)
{
	int len = snprintf(buf, n, "%s%s", a, b);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int user_dir(char *buf, size_t n)
{
	const char *env = getenv(FCVM_ENV_ASSETS);
	if (env && *env)
		return put(buf, n, env, "");
	if (geteuid() == 0)
		return put(buf, n, FCVM_SYSTEM_ASSETS_DIR, "");
	const char *xdg = getenv("XDG_CACHE_HOME");
	if (xdg && xdg[0] == '/')
		return put(buf, n, xdg, "/fcvm/assets");
	const char *home = getenv("HOME");
	if (!home || home[0] != '/') {
		const struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || home[0] != '/')
		return -ENOENT;
	return put(buf, n, home, "/.cache/fcvm/assets");
}

int assets_dir_default(char *buf, size_t n)
{
	char mine[PATH_MAX];
	int rc = user_dir(buf, n);
	if (rc < 0 || geteuid() == 0 || getenv(FCVM_ENV_ASSETS))
		return rc;
	if (put(mine, sizeof(mine), buf, "/" FCVM_ASSETS_MANIFEST) == 0 && access(mine, F_OK) < 0 &&
	    access(FCVM_SYSTEM_ASSETS_DIR "/" FCVM_ASSETS_MANIFEST, R_OK) == 0)
		return put(buf, n, FCVM_SYSTEM_ASSETS_DIR, "");
	return 0;
}
