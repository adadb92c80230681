/* `fcvm supervise`: the launcher is a program of its own (fcvm-launcher, beside this one or in
 * FCVM_LIBEXECDIR); the CLI only execs it, so no daemon carries the CLI's libraries. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_supervise(int argc, char **argv, const char *state_dir)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	char *args[256];
	int n = 0;
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0 || argc > (int)(sizeof(args) / sizeof(args[0])) - 4) {
		fprintf(stderr, "fcvm supervise: %s\n", len < 0 ? strerror(errno) : "too many arguments");
		return 1;
	}
	self[len] = '\0';
	args[n++] = "fcvm-launcher";
	if (state_dir) {
		args[n++] = "--state-dir";
		args[n++] = (char *)state_dir;
	}
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	snprintf(path, sizeof(path), "%s/fcvm-launcher", dirname(self));
	execv(path, args);
	snprintf(path, sizeof(path), "%s/fcvm-launcher", FCVM_LIBEXECDIR);
	execv(path, args);
	fprintf(stderr, "fcvm supervise: cannot run fcvm-launcher (beside this program or in %s): %s\n",
		FCVM_LIBEXECDIR, strerror(errno));
	return 1;
}
