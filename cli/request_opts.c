/* Command-line options that only become fields of a request (cli_field_opt's table), among
 * them -e/--env and --env-file as Podman reads them: KEY=VALUE as given; a bare KEY takes this
 * process's value, and is left out when it has none; in a file, blank lines and lines
 * starting with # are skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

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

static const struct field_def *req_field(const struct pmsg *req, const char *name)
{
	for (size_t i = 0; req->op && i < req->op->req.nfields; i++)
		if (strcmp(req->op->req.fields[i].name, name) == 0)
			return &req->op->req.fields[i];
	return NULL;
}

int cli_field_opt(struct pmsg *req, const struct field_opt *t, size_t n, int c, const char *arg)
{
	size_t i = 0;
	while (i < n && t[i].val != c)
		i++;
	if (i == n)
		return 0;
	char num[32];
	uint64_t v;
	switch (t[i].kind) {
	case FO_STR:
		prec_set_str(req, &req->body, t[i].field, arg);
		return 1;
	case FO_LIST:
		prec_add_str(req, &req->body, t[i].field, arg);
		return 1;
	case FO_FLAG:
		prec_set_bool(req, &req->body, t[i].field, true);
		return 1;
	case FO_ENV:
		return cli_add_env(req, arg) < 0 ? -1 : 1;
	case FO_ENV_FILE:
		return cli_add_env_file(req, arg) < 0 ? -1 : 1;
	case FO_UINT:
	case FO_SECONDS: /* podman's 30s spelling too */
		snprintf(num, sizeof(num), "%s", arg);
		size_t len = strlen(num);
		if (t[i].kind == FO_SECONDS && len > 1 && num[len - 1] == 's')
			num[len - 1] = 0;
		/* the request's own bounds (proto/ops.c): a number beyond them is named as such */
		uint64_t lo = 1, hi = 65536 * 2;
		const struct field_def *fd = req_field(req, t[i].field);
		if (fd && fd->type == FT_UINT) {
			lo = fd->min > 1 ? fd->min : 1;
			hi = fd->max;
		}
		if (!parse_uint(num, UINT64_MAX, &v) || v < lo || v > hi) {
			char opt[64]; /* the field's option: health_interval is --health-interval */
			snprintf(opt, sizeof(opt), "%s", t[i].field);
			for (char *p = opt; *p; p++)
				*p = *p == '_' ? '-' : *p;
			if (num[0] && strspn(num, "0123456789") == strlen(num))
				fprintf(stderr, "fcvm: --%s %s is out of range: from %llu to %llu\n", opt, arg,
					(unsigned long long)lo, (unsigned long long)hi);
			else
				fprintf(stderr, "fcvm: --%s wants a number, not '%s'\n", opt, arg);
			return -1;
		}
		prec_set_uint(req, &req->body, t[i].field, v);
		return 1;
	}
	return 0;
}
