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

#define MAX_RULES 512
#define MAX_CAPS  64
#define MAX_TOK	  16
#define MAX_DEPTH 8

struct rule {
	char name[48];
	char action[8];	 /* allow | enosys | eperm */
	char args[1536]; /* emitted argument comparisons ("" = unconditional) */
	unsigned nargs;
	char origin[128];
};

static struct rule rules[MAX_RULES];
static size_t nrules;
static char caps[MAX_CAPS][48];
static size_t ncaps;
static char namespaces[256];
static char rlimits[1024];
static unsigned nrlimits;
static bool allow_ambient;
static const char *incdir = "policy";
static const char *stack[MAX_DEPTH];
static int depth;

static void die(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void die(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "policyc: %s:%d: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static bool is_ident(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* A C constant: identifiers, numbers and | & ~ ( ) << between them, no spaces. */
static bool is_const(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_|&~()<x", *s))
			return false;
	return true;
}

static void add_cap(const char *file, int line, const char *cap)
{
	if (strncmp(cap, "CAP_", 4) != 0 || !is_ident(cap))
		die(file, line, "not a capability name: %s", cap);
	for (size_t i = 0; i < ncaps; i++)
		if (strcmp(caps[i], cap) == 0)
			return;
	if (ncaps == MAX_CAPS)
		die(file, line, "too many capabilities");
	snprintf(caps[ncaps++], sizeof(caps[0]), "%s", cap);
}

static void add_rule(const char *file, int line, char **tok, int ntok)
{
	struct rule r = {0};
	if (ntok < 2 || !is_ident(tok[1]))
		die(file, line, "%s needs a syscall name", tok[0]);
	snprintf(r.action, sizeof(r.action), "%s", tok[0]);
	snprintf(r.name, sizeof(r.name), "%s", tok[1]);
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	snprintf(r.origin, sizeof(r.origin), "%.100s:%d", base, line);
	/* argument comparisons: aN == V | aN != V | aN & MASK == V */
	for (int i = 2; i < ntok;) {
		char buf[512];
		if (r.nargs == 3)
			die(file, line, "at most 3 argument comparisons");
		if (tok[i][0] != 'a' || tok[i][1] < '0' || tok[i][1] > '5' || tok[i][2])
			die(file, line, "expected aN (N in 0..5), got '%s'", tok[i]);
		int arg = tok[i][1] - '0';
		if (i + 1 < ntok && strcmp(tok[i + 1], "&") == 0) {
			if (i + 4 >= ntok || strcmp(tok[i + 3], "==") != 0 || !is_const(tok[i + 2]) ||
			    !is_const(tok[i + 4]))
				die(file, line, "expected aN & MASK == VALUE");
			snprintf(buf, sizeof(buf),
				 "{ %d, SCMP_CMP_MASKED_EQ, (scmp_datum_t)(%s), (scmp_datum_t)(%s) }, ", arg,
				 tok[i + 2], tok[i + 4]);
			i += 5;
		} else {
			if (i + 2 >= ntok || !is_const(tok[i + 2]))
				die(file, line, "expected aN == VALUE or aN != VALUE");
			const char *op = strcmp(tok[i + 1], "==") == 0	 ? "SCMP_CMP_EQ"
					 : strcmp(tok[i + 1], "!=") == 0 ? "SCMP_CMP_NE"
									 : NULL;
			if (!op)
				die(file, line, "unknown comparison '%s'", tok[i + 1]);
			snprintf(buf, sizeof(buf), "{ %d, %s, (scmp_datum_t)(%s), 0 }, ", arg, op, tok[i + 2]);
			i += 3;
		}
		strncat(r.args, buf, sizeof(r.args) - strlen(r.args) - 1);
		r.nargs++;
	}
	for (size_t i = 0; i < nrules; i++) {
		struct rule *o = &rules[i];
		if (strcmp(o->name, r.name) != 0)
			continue;
		if (strcmp(o->action, r.action) != 0)
			die(file, line, "%s: '%s' here, '%s' at %s", r.name, r.action, o->action, o->origin);
		if (strcmp(o->args, r.args) == 0 || o->nargs == 0)
			return; /* same rule, or already allowed unconditionally */
		if (r.nargs == 0) {
			*o = r; /* unconditional replaces the conditional ones */
			for (size_t j = i + 1; j < nrules; j++)
				if (strcmp(rules[j].name, r.name) == 0)
					rules[j].name[0] = '\0';
			return;
		}
	}
	if (nrules == MAX_RULES)
		die(file, line, "too many rules");
	rules[nrules++] = r;
}

static void parse_file(const char *name, bool top);

static void parse_line(const char *file, int line, char *text, bool top)
{
	char *hash = strchr(text, '#');
	char *tok[MAX_TOK];
	int ntok = 0;
	if (hash) {
		*hash = '\0';
		const char *why = hash + 1;
		while (isspace((unsigned char)*why))
			why++;
		hash = *why ? hash : NULL; /* an empty comment explains nothing */
	}
	for (char *s = strtok(text, " \t\r\n"); s; s = strtok(NULL, " \t\r\n")) {
		if (ntok == MAX_TOK)
			die(file, line, "too many words");
		tok[ntok++] = s;
	}
	if (ntok == 0)
		return;
	if (!hash)
		die(file, line, "'%s' has no '# why' comment: say why this is needed", tok[0]);
	if (strcmp(tok[0], "allow") == 0 || strcmp(tok[0], "enosys") == 0 || strcmp(tok[0], "eperm") == 0) {
		add_rule(file, line, tok, ntok);
	} else if (strcmp(tok[0], "caps") == 0) {
		for (int i = 1; i < ntok; i++)
			add_cap(file, line, tok[i]);
	} else if (strcmp(tok[0], "include") == 0) {
		if (ntok != 2 || (!is_ident(tok[1]) && strspn(tok[1], "abcdefghijklmnopqrstuvwxyz-") != strlen(tok[1])))
			die(file, line, "include NAME");
		parse_file(tok[1], false);
	} else if (!top) {
		/* namespaces, rlimits and the ambient switch belong to the process, not to what
		 * includes it: a launcher including netd keeps its own. */
		if (strcmp(tok[0], "namespaces") != 0 && strcmp(tok[0], "rlimit") != 0 &&
		    strcmp(tok[0], "allow-ambient") != 0)
			die(file, line, "unknown directive '%s'", tok[0]);
	} else if (strcmp(tok[0], "namespaces") == 0) {
		for (int i = 1; i < ntok; i++) {
			static const char *const ok[] = {"net", "ipc", "uts", "mount", "pid", "cgroup", "user"};
			static const char *const flag[] = {"CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUTS",
							   "CLONE_NEWNS",  "CLONE_NEWPID", "CLONE_NEWCGROUP",
							   "CLONE_NEWUSER"};
			size_t k;
			for (k = 0; k < 7 && strcmp(tok[i], ok[k]) != 0; k++)
				;
			if (k == 7)
				die(file, line, "unknown namespace '%s'", tok[i]);
			strncat(namespaces, namespaces[0] ? " | " : "", sizeof(namespaces) - strlen(namespaces) - 1);
			strncat(namespaces, flag[k], sizeof(namespaces) - strlen(namespaces) - 1);
		}
	} else if (strcmp(tok[0], "rlimit") == 0) {
		char buf[128];
		if (ntok != 4 || !is_ident(tok[1]) || !is_const(tok[2]) || !is_const(tok[3]))
			die(file, line, "rlimit NAME SOFT HARD");
		snprintf(buf, sizeof(buf), "\t{ RLIMIT_%s, %s, %s },\n", tok[1], tok[2], tok[3]);
		strncat(rlimits, buf, sizeof(rlimits) - strlen(rlimits) - 1);
		nrlimits++;
	} else if (strcmp(tok[0], "allow-ambient") == 0) {
		allow_ambient = true;
	} else {
		die(file, line, "unknown directive '%s'", tok[0]);
	}
}

static void parse_file(const char *name, bool top)
{
	char path[512], line[1024];
	for (int i = 0; i < depth; i++)
		if (strcmp(stack[i], name) == 0)
			die(name, 0, "include cycle through '%s'", name);
	if (depth == MAX_DEPTH)
		die(name, 0, "includes nested too deep");
	stack[depth++] = name;
	/* NAME.policy (a process's policy) or NAME.inc (a shared fragment) */
	snprintf(path, sizeof(path), "%s/%s.policy", incdir, name);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(path, sizeof(path), "%s/%s.inc", incdir, name);
		f = fopen(path, "r");
	}
	if (!f)
		die(name, 0, "cannot open %s/%s.policy or .inc: %s", incdir, name, strerror(errno));
	for (int n = 1; fgets(line, sizeof(line), f); n++)
		parse_line(path, n, line, top);
	fclose(f);
	depth--;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-I") == 0 && i + 1 < argc)
			incdir = argv[++i];
		else
			file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "usage: policyc [-I DIR] DIR/NAME.policy\n");
		return 2;
	}
	/* the process name is the file's base name */
	static char name[64]; /* static: parse_file keeps a pointer to it on its include stack */
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	snprintf(name, sizeof(name), "%s", base);
	char *dot = strstr(name, ".policy");
	if (!dot || dot[7] || !is_ident((*dot = '\0', name)))
		die(file, 0, "expected NAME.policy");
	static char incbuf[512];
	if (!strrchr(file, '/'))
		snprintf(incbuf, sizeof(incbuf), ".");
	else
		snprintf(incbuf, sizeof(incbuf), "%.*s", (int)(strrchr(file, '/') - file), file);
	if (strcmp(incdir, "policy") == 0)
		incdir = incbuf;
	parse_file(name, true);

	printf("/* Generated by policyc from %s: do not edit. */\n", file);
	printf("#include <errno.h>\n#include <fcntl.h>\n#include <linux/sched.h>\n#include <sched.h>\n"
	       "#include <signal.h>\n#include <sys/ioctl.h>\n#include <sys/mman.h>\n#include <sys/prctl.h>\n"
	       "#include <sys/resource.h>\n#include <sys/socket.h>\n#include <sys/wait.h>\n"
	       "#include <linux/securebits.h>\n#include <linux/nsfs.h>\n#include <linux/userfaultfd.h>\n"
	       "#include \"policy/sandbox.h\"\n\n");
	printf("static const cap_value_t caps[] = {");
	for (size_t i = 0; i < ncaps; i++)
		printf(" %s,", caps[i]);
	printf(" 0 /* padding only: ncaps bounds the list */ };\n");
	printf("static const struct sandbox_rlimit rlimits[] = {\n%s\t{ 0, 0, 0 }\n};\n", rlimits);
	printf("static const struct sandbox_rule rules[] = {\n");
	size_t n = 0;
	for (size_t i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];
		if (!r->name[0])
			continue;
		const char *act = strcmp(r->action, "allow") == 0    ? "SB_ALLOW"
				  : strcmp(r->action, "enosys") == 0 ? "SB_ENOSYS"
								     : "SB_EPERM";
		printf("\t{ SCMP_SYS(%s), \"%s\", %s, %u, { %s} }, /* %s */\n", r->name, r->name, act, r->nargs,
		       r->args, r->origin);
		n++;
	}
	printf("};\n\n");
	printf("const struct sandbox_policy policy_%s = {\n", name);
	printf("\t.name = \"%s\",\n\t.caps = caps,\n\t.ncaps = %zu,\n\t.unshare_flags = %s,\n", name, ncaps,
	       namespaces[0] ? namespaces : "0");
	printf("\t.rlimits = rlimits,\n\t.nrlimits = %u,\n\t.rules = rules,\n\t.nrules = %zu,\n", nrlimits, n);
	printf("\t.allow_ambient = %s,\n};\n", allow_ambient ? "true" : "false");
	return 0;
}
