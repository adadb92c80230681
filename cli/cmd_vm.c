/* fcvm exec [OPTIONS] NAME [--] CMD... | ls [--json] | stop NAME | rm NAME | logs NAME [-f] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "proto/stream.h"

/* Podman's order: options, NAME, then the command (`--` before it optional); an option after
 * NAME is part of the command, as with podman exec. */
int cmd_exec(int argc, char **argv, struct cli_opts *o)
{
	static const char usage[] =
	    "usage: fcvm exec [OPTIONS] NAME [--] CMD [ARG...]\n"
	    "  -i, --interactive      keep stdin open\n"
	    "  -t, --tty              a terminal\n"
	    "  -e, --env KEY[=VALUE]  set a variable (KEY alone: this shell's value)\n"
	    "      --env-file FILE    variables from FILE, one KEY[=VALUE] a line\n"
	    "  -w, --workdir DIR      the working directory in the container\n"
	    "  -u, --user USER[:GROUP]\n"
	    "                         a name or id of the container's /etc/passwd (and group)\n"
	    "  -d, --detach           run in the background (podman exec -d)\n"
	    "      --privileged       every capability, no seccomp filter (podman exec --privileged)\n"
	    "      --vm               in the guest itself rather than the container\n"
	    "  Options after NAME are part of the command.\n";
	enum { OPT_ENV_FILE = 256, OPT_PRIVILEGED };
	static const struct option opts[] = {
	    {"vm", no_argument, NULL, 'v'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"env-file", required_argument, NULL, OPT_ENV_FILE},
	    {"workdir", required_argument, NULL, 'w'},
	    {"user", required_argument, NULL, 'u'},
	    {"detach", no_argument, NULL, 'd'},
	    {"privileged", no_argument, NULL, OPT_PRIVILEGED},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct field_opt fields[] = {
	    {'v', "vm", FO_FLAG},
	    {'e', NULL, FO_ENV},
	    {OPT_ENV_FILE, NULL, FO_ENV_FILE},
	    {'w', "workdir", FO_STR},
	    {'u', "user", FO_STR},
	    {'d', "detach", FO_FLAG},
	    {OPT_PRIVILEGED, "privileged", FO_FLAG},
	};
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_VM_EXEC, 0);
	bool tty = false, in = false, bad = false;
	int c, r;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "+ite:w:u:dh", opts, NULL)) != -1) {
		if ((r = cli_field_opt(&req, fields, ARRAY_LEN(fields), c, optarg)) != 0)
			bad = r < 0;
		else if (c == 'i')
			in = true;
		else if (c == 't')
			tty = true;
		else {
			fputs(usage, c == 'h' ? stdout : stderr);
			pmsg_free(&req);
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	/* NAME, then the command (after an optional --) */
	if (!bad && optind < argc)
		prec_set_str(&req, &req.body, "name", argv[optind++]);
	if (!bad && optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (bad || optind >= argc) {
		if (!bad)
			fputs(usage, stderr);
		pmsg_free(&req);
		return EXIT_USAGE;
	}
	for (; optind < argc; optind++)
		prec_add_str(&req, &req.body, "argv", argv[optind]);
	cli_set_stdio(&req, tty, in);
	struct cli_session s = {.tty = tty, .stdin_open = in};
	return cli_call_session(o, &req, &s);
}

int cmd_ls(int argc, char **argv, struct cli_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else {
			fputs("usage: fcvm ls [--json]\n", strcmp(argv[i], "-h") == 0 ? stdout : stderr);
			return strcmp(argv[i], "-h") == 0 ? EXIT_OK : EXIT_USAGE;
		}
	}
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_VM_LIST, 0);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	if (code == EXIT_OK && o->json) {
		cli_print_json_list(&rep.body, "vms");
	} else if (code == EXIT_OK) {
		printf("%-20s %-12s %-9s %-9s %-6s %-24s %6s %-12s %-9s %-15s %s\n", "NAME", "ID", "STATUS", "HEALTH",
		       "OWNER", "IMAGE", "EXIT", "CREATED", "NETWORK", "GUEST IP", "PORTS");
		const struct pval *vms = prec_get(&rep.body, "vms");
		for (uint32_t i = 0; vms && i < vms->recs.n; i++) {
			const struct precord *r = &vms->recs.v[i];
			uint64_t owner = 0, created = 0, exitc = 0;
			char when[32], ex[8] = "-";
			prec_uint(r, "owner", &owner);
			prec_uint(r, "created_ms", &created);
			if (prec_uint(r, "exit_code", &exitc))
				snprintf(ex, sizeof(ex), "%llu", (unsigned long long)exitc);
			cli_age(created, when, sizeof(when));
			char ports[256] = "";
			const struct pval *pl = prec_get(r, "ports");
			for (uint32_t k = 0, used = 0; pl && k < pl->list.n && used < sizeof(ports); k++)
				used += (uint32_t)snprintf(ports + used, sizeof(ports) - used, "%s%s", k ? "," : "",
							   pl->list.v[k]);
			const char *gip = prec_str(r, "guest_ip");
			printf("%-20s %-12.12s %-9s %-9s %-6llu %-24.24s %6s %-12s %-9s %-15s %s\n",
			       prec_str(r, "name"), prec_str(r, "id"), prec_str(r, "status"), prec_str(r, "health"),
			       (unsigned long long)owner, prec_str(r, "image"), ex, when, prec_str(r, "network"),
			       gip ? gip : "-", ports[0] ? ports : "-");
		}
	}
	pmsg_free(&rep);
	return code;
}

static int name_op(int argc, char **argv, struct cli_opts *o, enum proto_op op, const char *verb)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: fcvm %s NAME\n", verb);
		return EXIT_USAGE;
	}
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, op, 0);
	prec_set_str(&req, &req.body, "name", argv[1]);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	pmsg_free(&rep);
	return code;
}

int cmd_stop(int argc, char **argv, struct cli_opts *o)
{
	return name_op(argc, argv, o, OP_VM_STOP, "stop");
}

int cmd_rm(int argc, char **argv, struct cli_opts *o)
{
	return name_op(argc, argv, o, OP_VM_REMOVE, "rm");
}

int cmd_logs(int argc, char **argv, struct cli_opts *o)
{
	bool follow = false;
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
			follow = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else {
			fputs("usage: fcvm logs NAME [-f]\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (!name) {
		fputs("usage: fcvm logs NAME [-f]\n", stderr);
		return EXIT_USAGE;
	}
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_VM_LOGS, 0);
	prec_set_str(&req, &req.body, "name", name);
	prec_set_bool(&req, &req.body, "follow", follow);
	struct cli_session s = {.logs = true};
	return cli_call_session(o, &req, &s);
}
