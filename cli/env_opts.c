/* -e/--env and --env-file as Podman reads them: KEY=VALUE as given; a bare KEY takes this
 * process's value, and is left out when it has none; in a file, blank lines and lines
 * starting with # are skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_add_env(struct pmsg *req, const char *arg)
{
	if (!arg[0] || arg[0] == '=') {
		fprintf(stderr, "fcvm: --env wants KEY=VALUE or KEY, not '%s'\n", arg);
		return -1;
	}
	if (strchr(arg, '=')) {
		prec_add_str(req, &req->body, "env", arg);
		return 0;
	}
	const char *v = getenv(arg);
	if (!v)
		return 0;
	size_t n = strlen(arg) + strlen(v) + 2;
	char *kv = malloc(n);
	if (!kv)
		return -1;
	snprintf(kv, n, "%s=%s", arg, v);
	prec_add_str(req, &req->body, "env", kv);
	free(kv);
	return 0;
}

int cli_add_env_file(struct pmsg *req, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "fcvm: --env-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		const char *p = line + strspn(line, " \t");
		if (*p && *p != '#')
			rc = cli_add_env(req, p);
	}
	free(line);
	fclose(f);
	return rc;
}
