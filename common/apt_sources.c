/* apt's sources and proxy setting, read for `fcvm setup` (see apt_sources.h). */
#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/apt_sources.h"

#define WS " \t\r\n"

/* How well an entry's suite fits; the lowest wins, the first of equals. */
enum rank { RANK_SUITE, RANK_HOST, RANK_VARIANT, RANK_NONE };

struct search {
	const char *suite;
	char host[64]; /* the host's Debian codename when not suite, else "" */
	struct apt_mirror *m;
	enum rank best; /* of what m holds */
	const char *file;
};

/* ROOT + path ("" or "/" as root: the path itself). 0, or -ENAMETOOLONG. */
static int rooted(char *out, size_t n, const char *root, const char *path)
{
	size_t rl = root ? strlen(root) : 0;
	while (rl && root[rl - 1] == '/')
		rl--;
	int l = snprintf(out, n, "%.*s%s", (int)rl, rl ? root : "", path);
	return l < 0 || (size_t)l >= n ? -ENAMETOOLONG : 0;
}

/* A file name of the kind apt reads: letters, digits, '_', '-' and '.' only. */
static bool name_ok(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return *b && strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") == strlen(b);
}

static bool ends_with(const char *s, const char *tail)
{
	size_t l = strlen(s), t = strlen(tail);
	return l > t && strcmp(s + l - t, tail) == 0;
}

/* A value of os-release ("x", 'x' or x) into out. */
static void os_value(const char *v, char *out, size_t n)
{
	size_t l = strcspn(v, "\r\n");
	if (l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0]) {
		v++;
		l -= 2;
	}
	snprintf(out, n, "%.*s", (int)l, v);
}

/* VERSION_CODENAME of a Debian host (not a derivative: its archive serves other suites). */
static void host_release(const char *root, const char *suite, char *out, size_t n)
{
	char path[PATH_MAX], id[64] = "", code[64] = "";
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	out[0] = 0;
	if (rooted(path, sizeof(path), root, "/etc/os-release") < 0 || !(f = fopen(path, "re")))
		return;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "ID=", 3) == 0)
			os_value(line + 3, id, sizeof(id));
		else if (strncmp(line, "VERSION_CODENAME=", 17) == 0)
			os_value(line + 17, code, sizeof(code));
	}
	free(line);
	fclose(f);
	if (strcmp(id, "debian") == 0 && strcmp(code, suite) != 0)
		snprintf(out, n, "%s", code);
}

static enum rank suite_rank(const struct search *s, const char *suite)
{
	const char *base[] = {s->suite, s->host};
	if (strcmp(suite, s->suite) == 0)
		return RANK_SUITE;
	if (s->host[0] && strcmp(suite, s->host) == 0)
		return RANK_HOST;
	for (size_t i = 0; i < 2; i++) {
		size_t l = strlen(base[i]);
		if (l && strncmp(suite, base[i], l) == 0 && suite[l] == '-' && suite[l + 1] &&
		    strcmp(suite + l + 1, "security") != 0)
			return RANK_VARIANT; /* bookworm-updates, bookworm-backports, ... */
	}
	return RANK_NONE;
}

/* What debootstrap can fetch from (apt's cdrom:, mirror+, tor+ ... it cannot). */
static bool uri_ok(const char *u)
{
	static const char *const schemes[] = {"http://", "https://", "ftp://", "file:/"};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncasecmp(u, schemes[i], strlen(schemes[i])) == 0 && u[strlen(schemes[i])])
			return true;
	return false;
}

/* An entry of `deb URI SUITE main`: kept if it fits better than what is kept. */
static void offer(struct search *s, const char *uri, const char *suite)
{
	enum rank r = suite_rank(s, suite);
	size_t l = strlen(uri);
	while (l && uri[l - 1] == '/')
		l--;
	if (r >= s->best || !uri_ok(uri) || l >= sizeof(s->m->uri) || strlen(suite) >= sizeof(s->m->suite) ||
	    strlen(s->file) >= sizeof(s->m->from))
		return;
	memcpy(s->m->uri, uri, l);
	s->m->uri[l] = 0;
	strcpy(s->m->suite, suite);
	strcpy(s->m->from, s->file);
	s->best = r;
}

/* The next whitespace-separated word of *p into out ("" if it does not fit); false at the end. */
static bool word(const char **p, char *out, size_t n)
{
	const char *w = *p + strspn(*p, WS);
	size_t l = strcspn(w, WS);
	*p = w + l;
	if (!l)
		return false;
	if (l >= n)
		l = 0;
	memcpy(out, w, l);
	out[l] = 0;
	return true;
}

static bool has_word(const char *list, const char *want)
{
	char w[256];
	while (word(&list, w, sizeof(w)))
		if (strcmp(w, want) == 0)
			return true;
	return false;
}

/* One-line format: "deb [options] URI SUITE COMPONENT...", '#' to the end of a line a comment. */
static void oneline(struct search *s, char *line)
{
	char uri[1024], suite[256], comps[1024];
	const char *p;
	line[strcspn(line, "#")] = 0;
	p = line + strspn(line, WS);
	if (strncmp(p, "deb", 3) != 0 || !p[3] || !strchr(WS, p[3])) /* deb-src, rpm, ... */
		return;
	p += 3 + strspn(p + 3, WS);
	if (*p == '[') { /* [arch=amd64 signed-by=...] */
		if (!(p = strchr(p, ']')))
			return; /* apt refuses the line too */
		p++;
	}
	if (!word(&p, uri, sizeof(uri)) || !word(&p, suite, sizeof(suite)))
		return;
	snprintf(comps, sizeof(comps), "%s", p);
	if (has_word(comps, "main"))
		offer(s, uri, suite);
}

/* deb822 (*.sources): stanzas of "Field: value" lines (a line starting with a space or a tab
 * continues the field), separated by blank lines; '#' lines are comments. */
struct stanza {
	char types[256], uris[2048], suites[1024], comps[1024], enabled[16];
	char *cur; /* the field continuation lines go to (NULL: one not read) */
	size_t curlen;
	bool bad; /* a value did not fit */
};

static void stanza_end(struct search *s, struct stanza *st)
{
	char uri[1024], suite[256];
	const char *u = st->uris;
	if (!st->bad && has_word(st->types, "deb") && strcasecmp(st->enabled, "no") != 0 && has_word(st->comps, "main"))
		while (word(&u, uri, sizeof(uri))) {
			const char *q = st->suites;
			while (word(&q, suite, sizeof(suite)))
				offer(s, uri, suite);
		}
	memset(st, 0, sizeof(*st));
}

/* Append text (one line's, trimmed) to the current field, a space between. */
static void stanza_add(struct stanza *st, const char *text)
{
	size_t have = strlen(st->cur), l;
	text += strspn(text, WS);
	l = strlen(text);
	while (l && strchr(WS, text[l - 1]))
		l--;
	if (!l)
		return;
	if (have + 1 + l >= st->curlen) {
		st->bad = true;
		return;
	}
	if (have)
		st->cur[have++] = ' ';
	memcpy(st->cur + have, text, l);
	st->cur[have + l] = 0;
}

static void deb822_line(struct search *s, struct stanza *st, const char *line)
{
	static const struct {
		const char *name;
		size_t off, len;
	} fields[] = {
	    {"Types", offsetof(struct stanza, types), sizeof(((struct stanza *)0)->types)},
	    {"URIs", offsetof(struct stanza, uris), sizeof(((struct stanza *)0)->uris)},
	    {"Suites", offsetof(struct stanza, suites), sizeof(((struct stanza *)0)->suites)},
	    {"Components", offsetof(struct stanza, comps), sizeof(((struct stanza *)0)->comps)},
	    {"Enabled", offsetof(struct stanza, enabled), sizeof(((struct stanza *)0)->enabled)},
	};
	if (line[strspn(line, WS)] == 0) {
		stanza_end(s, st);
		return;
	}
	if (line[0] == '#')
		return;
	if (line[0] == ' ' || line[0] == '\t') {
		if (st->cur)
			stanza_add(st, line);
		return;
	}
	const char *colon = strchr(line, ':');
	st->cur = NULL;
	if (!colon)
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((size_t)(colon - line) == strlen(fields[i].name) &&
		    strncasecmp(line, fields[i].name, strlen(fields[i].name)) == 0) {
			st->cur = (char *)st + fields[i].off;
			st->curlen = fields[i].len;
			st->cur[0] = 0;
			stanza_add(st, colon + 1);
		}
}

static void note_file(struct apt_mirror *m, const char *path)
{
	size_t l = strlen(m->files);
	if (l + 2 + strlen(path) + 4 < sizeof(m->files))
		snprintf(m->files + l, sizeof(m->files) - l, "%s%s", l ? ", " : "", path);
	else if (l + 5 < sizeof(m->files) && !ends_with(m->files, "..."))
		snprintf(m->files + l, sizeof(m->files) - l, ", ...");
}

static void read_sources(struct search *s, const char *path, bool deb822)
{
	struct stanza st;
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	note_file(s->m, path);
	s->file = path;
	memset(&st, 0, sizeof(st));
	while (getline(&line, &cap, f) > 0) {
		if (deb822)
			deb822_line(s, &st, line);
		else
			oneline(s, line);
	}
	if (deb822)
		stanza_end(s, &st);
	free(line);
	fclose(f);
}

int apt_find_mirror(const char *root, const char *suite, struct apt_mirror *m)
{
	struct search s = {.suite = suite, .m = m, .best = RANK_NONE};
	char path[PATH_MAX];
	glob_t g;
	memset(m, 0, sizeof(*m));
	host_release(root, suite, s.host, sizeof(s.host));
	if (rooted(path, sizeof(path), root, "/etc/apt/sources.list") == 0)
		read_sources(&s, path, false);
	if (rooted(path, sizeof(path), root, "/etc/apt/sources.list.d/*") == 0 && glob(path, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && s.best != RANK_SUITE; i++) {
			const char *p = g.gl_pathv[i];
			bool list = ends_with(p, ".list"), sources = ends_with(p, ".sources");
			if (name_ok(p) && (list || sources))
				read_sources(&s, p, sources);
		}
		globfree(&g);
	}
	return s.best == RANK_NONE ? -ENOENT : 0;
}

/* The last `Acquire::http::Proxy "VALUE";` of a file replaces *val (malloc'd). */
static void proxy_in(const char *path, char **val)
{
	static const char key[] = "Acquire::http::Proxy";
	char *line = NULL, *v;
	size_t cap = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *p = line + strspn(line, WS), *end;
		if (strncasecmp(p, key, sizeof(key) - 1) != 0)
			continue;
		p += sizeof(key) - 1;
		if (*p != '"' && *p != ' ' && *p != '\t')
			continue; /* Acquire::http::Proxy::HOST: one host's */
		p += strspn(p, " \t");
		if (*p != '"' || !(end = strchr(p + 1, '"')))
			continue;
		*end = 0;
		if ((v = strdup(p + 1))) {
			free(*val);
			*val = v;
		}
	}
	free(line);
	fclose(f);
}

int apt_find_proxy(const char *root, char *out, size_t n)
{
	char path[PATH_MAX], *val = NULL;
	const char *use;
	glob_t g;
	int rc = 0;
	out[0] = 0;
	if (rooted(path, sizeof(path), root, "/etc/apt/apt.conf.d/*") == 0 && glob(path, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *p = g.gl_pathv[i], *b = strrchr(p, '/') + 1;
			if (name_ok(p) && (!strchr(b, '.') || ends_with(b, ".conf")))
				proxy_in(p, &val);
		}
		globfree(&g);
	}
	if (rooted(path, sizeof(path), root, "/etc/apt/apt.conf") == 0)
		proxy_in(path, &val);
	/* "DIRECT": none; an empty setting is no setting: apt then looks at the environment */
	use = val && *val ? val : getenv("http_proxy");
	if (use && *use && strcasecmp(use, "DIRECT") != 0) {
		rc = strlen(use) < n ? 1 : -ENAMETOOLONG;
		if (rc == 1)
			strcpy(out, use);
	}
	free(val);
	return rc;
}
