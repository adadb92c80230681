/* policyc: compiles policy/NAME.policy into C (`const struct sandbox_policy policy_NAME`).
 * Runs at build time only. Syscall, capability, rlimit and constant names are emitted as C
 * tokens, so the compiler rejects any name that does not exist. Every directive must carry
 * a `# why` comment: a rule nobody can explain is refused. See docs/policy.md. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES   512
#define MAX_CAPS    64
#define MAX_TOK	    16
#define MAX_DEPTH   16
#define MAX_FILES   64
#define MAX_HEADERS 32
#define MAX_RLIMITS 16

enum action { A_ALLOW, A_ENOSYS, A_EPERM };
static const char *const action_word[] = {"allow", "enosys", "eperm"};
static const char *const action_c[] = {"SB_ALLOW", "SB_ENOSYS", "SB_EPERM"};

struct rule {
	char sys[48];
	enum action act;
	unsigned nargs;
	char args[3][200]; /* emitted struct scmp_arg_cmp initializers */
	char file[64];	   /* the file it comes from */
	char origin[96];   /* file:line */
	char why[160];
	bool dead; /* subsumed by another rule for the same syscall */
};

struct named {
	char name[48];
	char origin[96];
	char why[160];
};

static struct rule rules[MAX_RULES];
static size_t nrules;
static struct named caps[MAX_CAPS];
static size_t ncaps;
static struct named rlimits[MAX_RLIMITS];
static char rlimit_vals[MAX_RLIMITS][2][64];
static size_t nrlimits;
static bool unfiltered; /* `unfiltered`: a policy of caps and rlimits, no seccomp filter */
static bool empty_root; /* `root empty`: stage 3 makes an empty tmpfs the root */
#define MAX_BINDS 8
static char binds[MAX_BINDS][128]; /* `bind PATH ro|rw`: what the empty root shows */
static bool bind_rw[MAX_BINDS];
static size_t nbinds;
static char landlock_fd[64]; /* `landlock FD`: every path access confined beneath fd FD */
static char headers[MAX_HEADERS][128];
static size_t nheaders;
static unsigned ns_flags; /* bit i: namespace i of ns_names */
static bool allow_ambient;
static const char *incdir;   /* -I DIR, else the policy's own directory */
static const char *top_path; /* the policy being compiled */

/* the include stack (cycle detection) and the files already merged (diamonds) */
static char stack[MAX_DEPTH][64];
static int depth;
static char seen[MAX_FILES][64];
static size_t nseen;

static const char *const ns_names[] = {"net", "ipc", "uts", "mount", "pid", "cgroup", "user"};
static const char *const ns_flag[] = {"CLONE_NEWNET", "CLONE_NEWIPC",	 "CLONE_NEWUTS", "CLONE_NEWNS",
				      "CLONE_NEWPID", "CLONE_NEWCGROUP", "CLONE_NEWUSER"};
#define NNS (sizeof(ns_names) / sizeof(ns_names[0]))

static void die(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "policyc: %s: ", where);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static bool is_ident(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* A C constant expression without spaces: names, numbers, | ~ ( ) << + -. */
static bool is_const(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_|~()<+-", *s))
			return false;
	return true;
}

/* NAME of `include NAME`: a file name without extension, no path. */
static bool is_file_name(const char *s)
{
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

static void add_cap(const char *where, const char *why, const char *cap)
{
	if (strncmp(cap, "CAP_", 4) != 0 || !is_ident(cap))
		die(where, "not a capability name: '%s'", cap);
	for (size_t i = 0; i < ncaps; i++)
		if (strcmp(caps[i].name, cap) == 0)
			return;
	if (ncaps == MAX_CAPS)
		die(where, "too many capabilities");
	copy(caps[ncaps].name, sizeof(caps[0].name), cap);
	copy(caps[ncaps].origin, sizeof(caps[0].origin), where);
	copy(caps[ncaps].why, sizeof(caps[0].why), why);
	ncaps++;
}

static void add_header(const char *where, const char *h)
{
	size_t n = strlen(h);
	/* <dir/x.h> or "dir/x.h" (project headers, relative to the top directory) */
	bool angle = n > 2 && h[0] == '<' && h[n - 1] == '>';
	bool quote = n > 2 && h[0] == '"' && h[n - 1] == '"';
	if ((!angle && !quote) || n >= sizeof(headers[0]) || strstr(h, "..") ||
	    strspn(h + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.-") != n - 2)
		die(where, "header <path.h> or \"path.h\", got '%s'", h);
	for (size_t i = 0; i < nheaders; i++)
		if (strcmp(headers[i], h) == 0)
			return;
	if (nheaders == MAX_HEADERS)
		die(where, "too many headers");
	copy(headers[nheaders++], sizeof(headers[0]), h);
}

/* `set NAME VALUE`: a setting of the process that is policy, not request (netd's address
 * pool and port range), compiled in beside its filter. */
#define MAX_SETTINGS 16
static struct named settings[MAX_SETTINGS];
static char setting_vals[MAX_SETTINGS][64];
static size_t nsettings;

static void add_setting(const char *where, const char *why, char **tok, int ntok)
{
	if (ntok != 3 || !is_ident(tok[1]))
		die(where, "expected: set NAME VALUE (NAME a C identifier, VALUE one word)");
	for (size_t i = 0; i < nsettings; i++)
		if (strcmp(settings[i].name, tok[1]) == 0)
			die(where, "setting %s set twice (first at %s)", tok[1], settings[i].origin);
	if (nsettings == MAX_SETTINGS)
		die(where, "too many settings");
	for (const char *c = tok[2]; *c; c++)
		if (*c == '"' || *c == '\\')
			die(where, "setting value may not contain quotes or backslashes");
	copy(setting_vals[nsettings], sizeof(setting_vals[0]), tok[2]);
	copy(settings[nsettings].name, sizeof(settings[0].name), tok[1]);
	copy(settings[nsettings].origin, sizeof(settings[0].origin), where);
	copy(settings[nsettings].why, sizeof(settings[0].why), why);
	nsettings++;
}

static void add_bind(const char *where, char **tok, int ntok)
{
	if (ntok != 3 || tok[1][0] != '/' || (strcmp(tok[2], "ro") != 0 && strcmp(tok[2], "rw") != 0))
		die(where, "expected: bind /PATH ro|rw");
	for (const char *c = tok[1]; *c; c++)
		if (*c == '"' || *c == '\\')
			die(where, "a bind path may not contain quotes or backslashes");
	if (nbinds == MAX_BINDS)
		die(where, "too many binds");
	copy(binds[nbinds], sizeof(binds[0]), tok[1]);
	bind_rw[nbinds++] = strcmp(tok[2], "rw") == 0;
}

static void add_rlimit(const char *where, const char *why, char **tok, int ntok)
{
	if (ntok != 4 || !is_ident(tok[1]) || strncmp(tok[1], "RLIMIT_", 7) == 0)
		die(where, "expected: rlimit NAME SOFT HARD (NAME without RLIMIT_, e.g. NOFILE)");
	for (size_t i = 0; i < nrlimits; i++)
		if (strcmp(rlimits[i].name, tok[1]) == 0)
			die(where, "rlimit %s set twice (first at %s)", tok[1], rlimits[i].origin);
	if (nrlimits == MAX_RLIMITS)
		die(where, "too many rlimits");
	for (int k = 0; k < 2; k++) {
		const char *v = strcmp(tok[2 + k], "unlimited") == 0 ? "RLIM_INFINITY" : tok[2 + k];
		if (!is_const(v))
			die(where, "rlimit value '%s' is not a number, constant or 'unlimited'", v);
		copy(rlimit_vals[nrlimits][k], sizeof(rlimit_vals[0][0]), v);
	}
	copy(rlimits[nrlimits].name, sizeof(rlimits[0].name), tok[1]);
	copy(rlimits[nrlimits].origin, sizeof(rlimits[0].origin), where);
	copy(rlimits[nrlimits].why, sizeof(rlimits[0].why), why);
	nrlimits++;
}

/* aN == V | aN != V | aN & MASK == V, one after another; returns how many. */
static unsigned parse_args(const char *where, char **tok, int ntok, char out[3][200])
{
	unsigned n = 0;
	for (int i = 0; i < ntok;) {
		const char *a = tok[i];
		if (n == 3)
			die(where, "at most 3 argument comparisons per rule (write several rules: they are OR'ed)");
		if (a[0] != 'a' || a[1] < '0' || a[1] > '5' || a[2])
			die(where, "expected an argument a0..a5, got '%s'", a);
		int arg = a[1] - '0';
		if (i + 1 < ntok && strcmp(tok[i + 1], "&") == 0) {
			if (i + 4 >= ntok || strcmp(tok[i + 3], "==") != 0 || !is_const(tok[i + 2]) ||
			    !is_const(tok[i + 4]))
				die(where, "expected: a%d & MASK == VALUE", arg);
			snprintf(out[n], sizeof(out[0]),
				 "{ %d, SCMP_CMP_MASKED_EQ, (scmp_datum_t)(%s), (scmp_datum_t)(%s) }", arg, tok[i + 2],
				 tok[i + 4]);
			i += 5;
		} else {
			const char *op = NULL;
			if (i + 2 < ntok && strcmp(tok[i + 1], "==") == 0)
				op = "SCMP_CMP_EQ";
			else if (i + 2 < ntok && strcmp(tok[i + 1], "!=") == 0)
				op = "SCMP_CMP_NE";
			if (!op || !is_const(tok[i + 2]))
				die(where, "expected: a%d == VALUE, a%d != VALUE or a%d & MASK == VALUE", arg, arg,
				    arg);
			snprintf(out[n], sizeof(out[0]), "{ %d, %s, (scmp_datum_t)(%s), 0 }", arg, op, tok[i + 2]);
			i += 3;
		}
		n++;
	}
	return n;
}

static bool same_args(const struct rule *a, const struct rule *b)
{
	if (a->nargs != b->nargs)
		return false;
	for (unsigned i = 0; i < a->nargs; i++)
		if (strcmp(a->args[i], b->args[i]) != 0)
			return false;
	return true;
}

static void add_rule(const char *file, const char *where, const char *why, enum action act, char **tok, int ntok)
{
	struct rule r = {.act = act};
	if (ntok < 2 || !is_ident(tok[1]))
		die(where, "expected: %s SYSCALL [CONDITIONS]", action_word[act]);
	copy(r.sys, sizeof(r.sys), tok[1]);
	copy(r.file, sizeof(r.file), file);
	copy(r.origin, sizeof(r.origin), where);
	copy(r.why, sizeof(r.why), why);
	r.nargs = parse_args(where, tok + 2, ntok - 2, r.args);
	for (size_t i = 0; i < nrules; i++) {
		const struct rule *o = &rules[i];
		if (strcmp(o->sys, r.sys) != 0 || !same_args(o, &r) || (o->act != r.act && r.nargs == 0))
			continue; /* (unconditional rules of different actions: see resolve()) */
		if (o->act != r.act)
			die(where, "%s: '%s' here, '%s' with the same conditions at %s", r.sys, action_word[r.act],
			    action_word[o->act], o->origin);
		return; /* the same rule again (e.g. two includes): once is enough */
	}
	if (nrules == MAX_RULES)
		die(where, "too many rules");
	rules[nrules++] = r;
}

/* libseccomp lets an unconditional rule swallow every other rule of its syscall, whatever
 * their actions, so settle each syscall here, where it can be explained:
 * - an unconditional allow wins over everything (the launcher's superset of its helpers);
 * - an allow overrides an unconditional enosys/eperm from another file (probes.inc's
 *   defaults); in the same file the two contradict each other;
 * - an unconditional enosys/eperm next to rules with another action is a conflict. */
static void resolve(void)
{
	for (size_t i = 0; i < nrules; i++) {
		const char *sys = rules[i].sys;
		const struct rule *uncond = NULL, *uncond_errno = NULL, *an_allow = NULL;
		bool settled = rules[i].dead;
		for (size_t k = 0; k < i && !settled; k++)
			settled = strcmp(rules[k].sys, sys) == 0;
		if (settled)
			continue; /* this syscall's rules were settled with an earlier one */
		for (size_t j = i; j < nrules; j++) {
			const struct rule *r = &rules[j];
			if (strcmp(r->sys, sys) != 0)
				continue;
			if (r->act == A_ALLOW && (!an_allow || r->nargs == 0))
				an_allow = r;
			if (r->nargs == 0 && r->act == A_ALLOW)
				uncond = r;
			if (r->nargs == 0 && r->act != A_ALLOW)
				uncond_errno = r;
		}
		if (!uncond && !an_allow)
			uncond = uncond_errno;
		for (size_t j = i; j < nrules; j++) {
			struct rule *r = &rules[j];
			if (strcmp(r->sys, sys) != 0 || r == uncond)
				continue;
			if (an_allow && r->act != A_ALLOW && r->nargs == 0 && strcmp(r->file, an_allow->file) == 0)
				die(r->origin, "%s: '%s' here contradicts '%s' at %s", sys, action_word[r->act],
				    action_word[an_allow->act], an_allow->origin);
			if (uncond && uncond->act == A_ALLOW)
				r->dead = true;
			else if (an_allow && r->nargs == 0)
				r->dead = true; /* an enosys/eperm default the policy overrides */
			else if (uncond && r->act != uncond->act)
				die(r->origin, "%s: '%s' here conflicts with the unconditional '%s' at %s", sys,
				    action_word[r->act], action_word[uncond->act], uncond->origin);
			else if (uncond)
				r->dead = true; /* the unconditional rule covers it */
		}
	}
}

static void parse_file(const char *name, bool top);

/* One line. Directives: see docs/policy.md. `top` is the policy being compiled; `inc` says
 * the file is a fragment (NAME.inc) rather than another process's policy. */
static void parse_line(const char *file, int lineno, char *text, bool top, bool inc)
{
	char where[96], why[160] = "";
	char *tok[MAX_TOK];
	int ntok = 0;
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	snprintf(where, sizeof(where), "%.80s:%d", base, lineno);

	char *hash = strchr(text, '#');
	if (hash) {
		*hash = '\0';
		char *w = hash + 1;
		while (isspace((unsigned char)*w))
			w++;
		w[strcspn(w, "\r\n")] = '\0';
		copy(why, sizeof(why), w);
	}
	for (char *s = strtok(text, " \t\r\n"); s; s = strtok(NULL, " \t\r\n")) {
		if (ntok == MAX_TOK)
			die(where, "too many words");
		tok[ntok++] = s;
	}
	if (ntok == 0)
		return; /* blank or comment-only line */
	if (!why[0])
		die(where, "'%s' has no '# why' comment: say why this is needed", tok[0]);

	const char *d = tok[0];
	if (strcmp(d, "allow") == 0)
		add_rule(base, where, why, A_ALLOW, tok, ntok);
	else if (strcmp(d, "enosys") == 0)
		add_rule(base, where, why, A_ENOSYS, tok, ntok);
	else if (strcmp(d, "eperm") == 0)
		add_rule(base, where, why, A_EPERM, tok, ntok);
	else if (strcmp(d, "include") == 0) {
		if (ntok != 2 || !is_file_name(tok[1]))
			die(where, "expected: include NAME (NAME.policy or NAME.inc in %s)", incdir);
		parse_file(tok[1], false);
	} else if (strcmp(d, "header") == 0) {
		if (ntok != 2)
			die(where, "expected: header <path.h>");
		add_header(where, tok[1]);
	} else if (strcmp(d, "caps") == 0 || strcmp(d, "namespaces") == 0 || strcmp(d, "rlimit") == 0 ||
		   strcmp(d, "allow-ambient") == 0 || strcmp(d, "set") == 0 || strcmp(d, "unfiltered") == 0 ||
		   strcmp(d, "root") == 0 || strcmp(d, "bind") == 0 || strcmp(d, "landlock") == 0) {
		/* These describe a process: fragments may not carry them. From an included
		 * policy only the caps are merged (the launcher keeps its helpers' caps to
		 * hand them over); its namespaces and rlimits stay its own. */
		if (inc)
			die(where, "'%s' belongs in a .policy file, not in a fragment", d);
		if (strcmp(d, "caps") == 0) {
			for (int i = 1; i < ntok; i++)
				add_cap(where, why, tok[i]);
		} else if (!top) {
			return;
		} else if (strcmp(d, "namespaces") == 0) {
			for (int i = 1; i < ntok; i++) {
				size_t k = 0;
				while (k < NNS && strcmp(tok[i], ns_names[k]) != 0)
					k++;
				if (k == NNS)
					die(where, "unknown namespace '%s' (net ipc uts mount pid cgroup user)",
					    tok[i]);
				ns_flags |= 1u << k;
			}
		} else if (strcmp(d, "rlimit") == 0) {
			add_rlimit(where, why, tok, ntok);
		} else if (strcmp(d, "set") == 0) {
			add_setting(where, why, tok, ntok);
		} else if (strcmp(d, "root") == 0) {
			if (ntok != 2 || strcmp(tok[1], "empty") != 0)
				die(where, "expected: root empty");
			empty_root = true;
		} else if (strcmp(d, "bind") == 0) {
			add_bind(where, tok, ntok);
		} else if (strcmp(d, "landlock") == 0) {
			if (ntok != 2 || !is_ident(tok[1]))
				die(where, "expected: landlock FD (a constant naming the directory's fd)");
			copy(landlock_fd, sizeof(landlock_fd), tok[1]);
		} else if (strcmp(d, "unfiltered") == 0) {
			if (ntok != 1)
				die(where, "unfiltered takes no arguments");
			unfiltered = true;
		} else {
			if (ntok != 1)
				die(where, "allow-ambient takes no arguments");
			allow_ambient = true;
		}
	} else {
		die(where, "unknown directive '%s'", d);
	}
}

static void parse_file(const char *name, bool top)
{
	char path[512], line[1024], chain[(MAX_DEPTH + 1) * 72] = "";
	for (int i = 0; i < depth; i++) {
		if (strcmp(stack[i], name) != 0)
			continue;
		for (int j = i; j < depth; j++) {
			strcat(chain, stack[j]);
			strcat(chain, " -> ");
		}
		strcat(chain, name);
		die(stack[depth - 1], "include cycle: %s", chain);
	}
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i], name) == 0)
			return; /* merged already (two includes lead here): nothing new */
	if (depth == MAX_DEPTH || nseen == MAX_FILES)
		die(name, "includes nested too deep or too many files");
	copy(stack[depth++], sizeof(stack[0]), name);
	copy(seen[nseen++], sizeof(seen[0]), name);

	/* NAME.policy (a process's policy) or NAME.inc (a fragment), not both */
	snprintf(path, sizeof(path), "%s/%s.inc", incdir, name);
	FILE *f = top ? NULL : fopen(path, "r");
	bool inc = f != NULL;
	if (top)
		snprintf(path, sizeof(path), "%s", top_path);
	else
		snprintf(path, sizeof(path), "%s/%s.policy", incdir, name);
	FILE *g = fopen(path, "r");
	if (f && g)
		die(name, "both %s/%s.policy and %s.inc exist: which one is meant?", incdir, name, name);
	if (f)
		snprintf(path, sizeof(path), "%s/%s.inc", incdir, name);
	else
		f = g;
	if (!f && top)
		die(top_path, "cannot open it: %s", strerror(errno));
	if (!f)
		die(name, "cannot open %s/%s.policy or %s.inc: %s", incdir, name, name, strerror(errno));
	for (int n = 1; fgets(line, sizeof(line), f); n++) {
		if (!strchr(line, '\n') && !feof(f))
			die(path, "line %d is too long", n);
		parse_line(path, n, line, top, inc);
	}
	fclose(f);
	depth--;
}

/* The why, safe inside a C comment. */
static const char *comment(const char *why)
{
	static char buf[200];
	size_t n = 0;
	for (const char *s = why; *s && n < sizeof(buf) - 2; s++) {
		buf[n++] = *s;
		if (s[0] == '*' && s[1] == '/')
			buf[n++] = ' ';
	}
	buf[n] = '\0';
	return buf;
}

static void emit(const char *file, const char *name)
{
	printf("/* Generated by policyc from %s: do not edit. */\n", file);
	printf("#include <errno.h>\n#include <fcntl.h>\n#include <sched.h>\n#include <signal.h>\n"
	       "#include <sys/ioctl.h>\n#include <sys/mman.h>\n#include <sys/prctl.h>\n#include <sys/resource.h>\n"
	       "#include <sys/socket.h>\n#include <unistd.h>\n");
	for (size_t i = 0; i < nheaders; i++)
		printf("#include %s\n", headers[i]);
	printf("\n#include \"policy/sandbox.h\"\n\n");

	if (ncaps) {
		printf("static const cap_value_t caps[] = {\n");
		for (size_t i = 0; i < ncaps; i++)
			printf("\t%s, /* %s: %s */\n", caps[i].name, caps[i].origin, comment(caps[i].why));
		printf("};\n\n");
	}
	if (nrlimits) {
		printf("static const struct sandbox_rlimit rlimits[] = {\n");
		for (size_t i = 0; i < nrlimits; i++)
			printf("\t{ RLIMIT_%s, %s, %s }, /* %s: %s */\n", rlimits[i].name, rlimit_vals[i][0],
			       rlimit_vals[i][1], rlimits[i].origin, comment(rlimits[i].why));
		printf("};\n\n");
	}
	if (nsettings) {
		printf("static const struct sandbox_setting settings[] = {\n");
		for (size_t i = 0; i < nsettings; i++)
			printf("\t{ \"%s\", \"%s\" }, /* %s: %s */\n", settings[i].name, setting_vals[i],
			       settings[i].origin, comment(settings[i].why));
		printf("};\n\n");
	}
	if (nbinds && !empty_root)
		die(top_path, "bind without root empty: there is no empty root to bind into");
	if (nbinds) {
		printf("static const struct sandbox_bind binds[] = {\n");
		for (size_t i = 0; i < nbinds; i++)
			printf("\t{ \"%s\", %s },\n", binds[i], bind_rw[i] ? "true" : "false");
		printf("};\n\n");
	}
	size_t n = 0;
	if (nrules)
		printf("static const struct sandbox_rule rules[] = {\n");
	for (size_t i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];
		if (r->dead)
			continue;
		printf("\t/* %s: %s */\n", r->origin, comment(r->why));
		printf("\t{ SCMP_SYS(%s), \"%s\", %s, %u, {", r->sys, r->sys, action_c[r->act], r->nargs);
		for (unsigned k = 0; k < r->nargs; k++)
			printf(" %s,", r->args[k]);
		printf(" } },\n");
		n++;
	}
	if (nrules)
		printf("};\n\n");
	/* a name libseccomp knows but this architecture lacks resolves to a negative number */
	for (size_t i = 0; i < nrules; i++) {
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = strcmp(rules[j].sys, rules[i].sys) != 0;
		if (first)
			printf("_Static_assert(SCMP_SYS(%s) >= 0, \"%s: no such syscall on this architecture\");\n",
			       rules[i].sys, rules[i].sys);
	}

	printf("\nconst struct sandbox_policy policy_%s = {\n", name);
	printf("\t.name = \"%s\",\n", name);
	printf("\t.caps = %s,\n\t.ncaps = %zu,\n", ncaps ? "caps" : "NULL", ncaps);
	printf("\t.unshare_flags = ");
	if (!ns_flags)
		printf("0");
	for (size_t k = 0, any = 0; k < NNS; k++)
		if (ns_flags & (1u << k))
			printf("%s%s", any++ ? " | " : "", ns_flag[k]);
	printf(",\n");
	printf("\t.rlimits = %s,\n\t.nrlimits = %zu,\n", nrlimits ? "rlimits" : "NULL", nrlimits);
	printf("\t.settings = %s,\n\t.nsettings = %zu,\n", nsettings ? "settings" : "NULL", nsettings);
	printf("\t.rules = %s,\n\t.nrules = %zu,\n", n ? "rules" : "NULL", n);
	printf("\t.unfiltered = %s,\n", unfiltered ? "true" : "false");
	printf("\t.empty_root = %s,\n", empty_root ? "true" : "false");
	printf("\t.binds = %s,\n\t.nbinds = %zu,\n", nbinds ? "binds" : "NULL", nbinds);
	printf("\t.landlock = %s,\n\t.landlock_fd = %s,\n", landlock_fd[0] ? "true" : "false",
	       landlock_fd[0] ? landlock_fd : "-1");
	printf("\t.allow_ambient = %s,\n};\n", allow_ambient ? "true" : "false");
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	bool usage = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-I") == 0 && i + 1 < argc)
			incdir = argv[++i];
		else if (!file && argv[i][0] != '-')
			file = argv[i];
		else
			usage = true;
	}
	if (!file || usage) {
		fprintf(stderr, "usage: policyc [-I DIR] DIR/NAME.policy > policy_NAME.c\n");
		return 2;
	}
	/* the process name is the file's base name; its includes come from -I DIR */
	static char name[64];
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	size_t len = strlen(base);
	if (len < 8 || len - 7 >= sizeof(name) || strcmp(base + len - 7, ".policy") != 0)
		die(file, "expected a NAME.policy file");
	snprintf(name, sizeof(name), "%.*s", (int)(len - 7), base);
	if (!is_ident(name))
		die(file, "'%s' cannot name a C variable (policy_%s)", name, name);
	static char dir[512];
	snprintf(dir, sizeof(dir), "%.*s", base == file ? 1 : (int)(base - file - 1), base == file ? "." : file);
	if (!incdir)
		incdir = dir;
	top_path = file;
	parse_file(name, true);
	if (nrules == 0 && !unfiltered)
		die(file, "no syscall rules: the process could not even exit");
	if (nrules && unfiltered)
		die(file, "an unfiltered policy has no syscall rules");
	resolve();
	emit(file, name);
	return ferror(stdout) || fflush(stdout) ? 1 : 0;
}
