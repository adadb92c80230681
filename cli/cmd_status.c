/* fcvm status | ping | version | shutdown */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"

static int parse_common(int argc, char **argv, struct cli_opts *o, const char *usage)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr, "usage: %s\n", usage);
			return c == 'h' ? -EXIT_OK - 1 : -EXIT_USAGE - 1;
		}
	}
	return optind;
}

/* Run one request with no fields; on success *rep holds the reply. */
static int simple_call(struct cli_opts *o, enum proto_op op, struct pmsg *rep)
{
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0) {
		pmsg_init(rep, PK_REPLY, op, 0);
		return code;
	}
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, op, 0);
	code = cli_call(fd, &req, rep);
	pmsg_free(&req);
	return code;
}

static void fmt_caps(const struct precord *r, char *buf, size_t len)
{
	const struct pval *v = prec_get(r, "caps");
	size_t off = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; v && i < v->list.n && off < len; i++) {
		const char *name = v->list.v[i];
		if (strncmp(name, "CAP_", 4) == 0)
			name += 4;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", name);
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

static void print_proc(const struct precord *r)
{
	static const char *const seccomp_names[] = {"off", "strict", "filter"};
	uint64_t pid = 0, uid = 0, secc = 0, up = 0, restarts = 0;
	bool nnp = false;
	char caps[256];
	prec_uint(r, "pid", &pid);
	prec_uint(r, "uid", &uid);
	prec_uint(r, "seccomp", &secc);
	prec_uint(r, "uptime_ms", &up);
	prec_uint(r, "restarts", &restarts);
	prec_bool(r, "no_new_privs", &nnp);
	fmt_caps(r, caps, sizeof(caps));
	const char *state = prec_str(r, "state");
	printf("%-11s %-8s %7llu %6llu  %-8s %-4s %8.1fs %8llu  %s\n", prec_str(r, "name"), state ? state : "-",
	       (unsigned long long)pid, (unsigned long long)uid, seccomp_names[secc > 2 ? 0 : secc], nnp ? "yes" : "no",
	       (double)up / 1000.0, (unsigned long long)restarts, caps);
}

/* "your quotas: vms 1/64, vcpus 1/32, ... (docs/quotas.md)" */
static void print_quota(const struct pval *q)
{
	if (!q || !q->recs.n)
		return;
	printf("your quotas:");
	for (uint32_t k = 0; k < q->recs.n; k++) {
		const struct precord *r = &q->recs.v[k];
		uint64_t used = 0, limit = 0;
		bool has_used = prec_uint(r, "used", &used), has_limit = prec_uint(r, "limit", &limit);
		char u[24] = "?", l[24] = "unlimited";
		if (has_used)
			snprintf(u, sizeof(u), "%llu", (unsigned long long)used);
		if (has_limit)
			snprintf(l, sizeof(l), "%llu", (unsigned long long)limit);
		printf("%s %s %s/%s", k ? "," : "", prec_str(r, "name"), u, l);
	}
	printf("\n");
}

int cmd_status(int argc, char **argv, struct cli_opts *o)
{
	int i = parse_common(argc, argv, o, "fcvm status [--json] [--state-dir DIR]");
	if (i < 0)
		return -i - 1;
	struct pmsg rep;
	int code = simple_call(o, OP_STATUS, &rep);
	if (code == EXIT_OK) {
		if (o->json) {
			cli_print_json(&rep.body);
		} else {
			uint64_t owner = 0;
			prec_uint(&rep.body, "owner_uid", &owner);
			printf("fcvm %s, %s mode, state dir %s, owner uid %llu\n", prec_str(&rep.body, "version"),
			       prec_str(&rep.body, "mode"), prec_str(&rep.body, "state_dir"),
			       (unsigned long long)owner);
			printf("%-11s %-8s %7s %6s  %-8s %-4s %9s %8s  %s\n", "PROCESS", "STATE", "PID", "UID",
			       "SECCOMP", "NNP", "UPTIME", "RESTARTS", "CAPABILITIES");
			const struct pval *procs = prec_get(&rep.body, "processes");
			for (uint32_t k = 0; procs && k < procs->recs.n; k++)
				print_proc(&procs->recs.v[k]);
			const struct pval *vmms = prec_get(&rep.body, "vmms");
			for (uint32_t k = 0; vmms && k < vmms->recs.n; k++) {
				uint64_t pid = 0, uid = 0;
				prec_uint(&vmms->recs.v[k], "pid", &pid);
				prec_uint(&vmms->recs.v[k], "uid", &uid);
				printf("%-11s %-8s %7llu %6llu  (the VMM of %s)\n", "qemu", "up",
				       (unsigned long long)pid, (unsigned long long)uid,
				       prec_str(&vmms->recs.v[k], "vm"));
			}
			print_quota(prec_get(&rep.body, "quota"));
			if (prec_str(&rep.body, "vm_limits"))
				printf("VM resource limits: %s\n", prec_str(&rep.body, "vm_limits"));
		}
	}
	pmsg_free(&rep);
	return code;
}

int cmd_ping(int argc, char **argv, struct cli_opts *o)
{
	int i = parse_common(argc, argv, o, "fcvm ping [--json] [--state-dir DIR] [HELPER]");
	if (i < 0)
		return -i - 1;
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0)
		return code;
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_PING, 0);
	if (i < argc)
		prec_set_str(&req, &req.body, "helper", argv[i]);
	uint64_t t0 = now_mono_ns();
	code = cli_call(fd, &req, &rep);
	uint64_t t1 = now_mono_ns();
	if (code == EXIT_OK) {
		if (o->json)
			cli_print_json(&rep.body);
		else {
			uint64_t pid = 0;
			prec_uint(&rep.body, "pid", &pid);
			printf("%s: pid %llu, %.3f ms\n", prec_str(&rep.body, "name"), (unsigned long long)pid,
			       (double)(t1 - t0) / 1e6);
		}
	}
	pmsg_free(&req);
	pmsg_free(&rep);
	return code;
}

int cmd_version(int argc, char **argv, struct cli_opts *o)
{
	int i = parse_common(argc, argv, o, "fcvm version [--json]");
	if (i < 0)
		return -i - 1;
	if (o->json)
		printf("{\"version\": \"%s\", \"protocol\": %d}\n", FCVM_VERSION, PROTO_VERSION);
	else
		printf("fcvm %s (protocol %d)\n", FCVM_VERSION, PROTO_VERSION);
	return EXIT_OK;
}

int cmd_shutdown(int argc, char **argv, struct cli_opts *o)
{
	int i = parse_common(argc, argv, o, "fcvm shutdown [--state-dir DIR]");
	if (i < 0)
		return -i - 1;
	struct pmsg rep;
	int code = simple_call(o, OP_SHUTDOWN, &rep);
	pmsg_free(&rep);
	return code;
}
