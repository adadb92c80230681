/* fcvm snapshot create VM --tag TAG [--json]
 * fcvm snapshot run TAG [--name NAME] [-d] [-i] [-t] [--rm] [--network MODE] [-p ...]
 * fcvm snapshot ls [--json]
 * fcvm snapshot rm TAG
 * fcvm snapshot prune */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "proto/stream.h"

static const char usage_text[] =
    "usage: fcvm snapshot create VM --tag TAG [--vmm auto|qemu|firecracker] [--json]\n"
    "                                                   pause VM, keep it as TAG, resume it\n"
    "       fcvm snapshot run TAG [--name NAME] [-d] [-i] [-t] [--rm] [--network bridged|rootless|none]\n"
    "                             [-p|--publish [IP:]HOST:GUEST[/tcp|udp]]...\n"
    "                                                   a clone of TAG, its container running on\n"
    "       fcvm snapshot ls [--json]\n"
    "       fcvm snapshot rm TAG\n"
    "       fcvm snapshot prune                        remove your startup-cache entries (kind cache)\n";

static int usage(bool help)
{
	fputs(usage_text, help ? stdout : stderr);
	return help ? EXIT_OK : EXIT_USAGE;
}

static void mib(uint64_t bytes, char *buf, size_t n)
{
	snprintf(buf, n, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

static int snap_create(int argc, char **argv, struct cli_opts *o)
{
	static const struct option opts[] = {
	    {"tag", required_argument, NULL, 'T'},
	    {"vmm", required_argument, NULL, 'V'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *tag = NULL, *vmm = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'T')
			tag = optarg;
		else if (c == 'V')
			vmm = optarg;
		else if (c == 'j')
			o->json = true;
		else
			return usage(c == 'h');
	}
	if (!tag || optind != argc - 1)
		return usage(false);
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_SNAPSHOT_CREATE, 0);
	prec_set_str(&req, &req.body, "vm", argv[optind]);
	prec_set_str(&req, &req.body, "tag", tag);
	if (vmm)
		prec_set_str(&req, &req.body, "vmm", vmm);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	if (code == EXIT_OK && o->json) {
		cli_print_json(&rep.body);
	} else if (code == EXIT_OK) {
		uint64_t pause = 0, state = 0, size = 0, mem = 0;
		char s1[32], s2[32];
		prec_uint(&rep.body, "pause_ms", &pause);
		prec_uint(&rep.body, "state_ms", &state);
		prec_uint(&rep.body, "size", &size);
		prec_uint(&rep.body, "mem_bytes", &mem);
		mib(size, s1, sizeof(s1));
		mib(mem, s2, sizeof(s2));
		printf("%s: %s paused %llu ms (device state %llu ms); %s, of it guest memory %s\n", tag, argv[optind],
		       (unsigned long long)pause, (unsigned long long)state, s1, s2);
	}
	pmsg_free(&rep);
	return code;
}

static int snap_run(int argc, char **argv, struct cli_opts *o)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"cpu", required_argument, NULL, 'c'},
	    {"mem", required_argument, NULL, 'm'},
	    {"detach", no_argument, NULL, 'd'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"rm", no_argument, NULL, 'r'},
	    {"network", required_argument, NULL, 'N'},
	    {"publish", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct field_opt sizes[] = {{'c', "cpu", FO_UINT}, {'m', "mem", FO_UINT}};
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SNAPSHOT_RUN, 0);
	bool detach = false, tty = false, in = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "dithp:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			prec_set_str(&req, &req.body, "name", optarg);
			break;
		case 'c':
		case 'm':
			if (cli_field_opt(&req, sizes, ARRAY_LEN(sizes), c, optarg) < 0) {
				pmsg_free(&req);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			detach = true;
			break;
		case 'i':
			in = true;
			break;
		case 't':
			tty = true;
			break;
		case 'r':
			prec_set_bool(&req, &req.body, "remove", true);
			break;
		case 'N':
			prec_set_str(&req, &req.body, "network", optarg);
			break;
		case 'p':
			if (cli_add_publish(&req, optarg) < 0) {
				pmsg_free(&req);
				return EXIT_USAGE;
			}
			break;
		default:
			pmsg_free(&req);
			return usage(c == 'h');
		}
	}
	if (optind != argc - 1) {
		pmsg_free(&req);
		return usage(false);
	}
	prec_set_str(&req, &req.body, "tag", argv[optind]);
	prec_set_bool(&req, &req.body, "detach", detach);
	cli_set_stdio(&req, tty, in);

	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0) {
		pmsg_free(&req);
		return code;
	}
	struct perr e;
	req.id = 1;
	int rc = stream_send_msg(fd, &req, &e);
	pmsg_free(&req);
	if (rc < 0) {
		fprintf(stderr, "fcvm: sending the request failed: %s\n", e.msg);
		return EXIT_FAIL;
	}
	return cli_started(fd, OP_SNAPSHOT_RUN, detach, tty, in);
}

/* [--json] and nothing else: -1, or the usage's exit code */
static int json_only(int argc, char **argv, struct cli_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			o->json = true;
		else
			return usage(strcmp(argv[i], "-h") == 0);
	}
	return -1;
}

static int snap_ls(int argc, char **argv, struct cli_opts *o)
{
	int bad = json_only(argc, argv, o);
	if (bad >= 0)
		return bad;
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_SNAPSHOT_LIST, 0);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	if (code == EXIT_OK && o->json) {
		cli_print_json_list(&rep.body, "snapshots");
	} else if (code == EXIT_OK) {
		printf("%-20s %-5s %-20s %-24s %-12s %10s %10s %6s %6s\n", "TAG", "KIND", "VM", "IMAGE", "CREATED",
		       "SIZE", "MEMORY", "CLONES", "OWNER");
		const struct pval *l = prec_get(&rep.body, "snapshots");
		for (uint32_t i = 0; l && i < l->recs.n; i++) {
			const struct precord *r = &l->recs.v[i];
			uint64_t created = 0, size = 0, mem = 0, clones = 0, owner = 0;
			char when[32], s1[32], s2[32];
			prec_uint(r, "created_ms", &created);
			prec_uint(r, "size", &size);
			prec_uint(r, "mem", &mem);
			prec_uint(r, "clones", &clones);
			prec_uint(r, "owner", &owner);
			cli_age(created, when, sizeof(when));
			mib(size, s1, sizeof(s1));
			snprintf(s2, sizeof(s2), "%llu MiB", (unsigned long long)mem);
			const char *kind = prec_str(r, "kind");
			printf("%-20s %-5s %-20s %-24.24s %-12s %10s %10s %6llu %6llu\n", prec_str(r, "tag"),
			       kind ? kind : "user", prec_str(r, "vm"), prec_str(r, "image"), when, s1, s2,
			       (unsigned long long)clones, (unsigned long long)owner);
		}
	}
	pmsg_free(&rep);
	return code;
}

static int snap_rm(int argc, char **argv, struct cli_opts *o)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage(argc == 2 && strcmp(argv[1], "-h") == 0);
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_SNAPSHOT_REMOVE, 0);
	prec_set_str(&req, &req.body, "tag", argv[1]);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	pmsg_free(&rep);
	return code;
}

static int snap_prune(int argc, char **argv, struct cli_opts *o)
{
	int bad = json_only(argc, argv, o);
	if (bad >= 0)
		return bad;
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_SNAPSHOT_PRUNE, 0);
	int code = cli_simple_call(o, &req, &rep);
	pmsg_free(&req);
	uint64_t removed = 0, bytes = 0, kept = 0;
	prec_uint(&rep.body, "removed", &removed);
	prec_uint(&rep.body, "bytes", &bytes);
	prec_uint(&rep.body, "kept", &kept);
	if (code == EXIT_OK && o->json) {
		printf("{\"removed\":%llu,\"bytes\":%llu,\"kept\":%llu}\n", (unsigned long long)removed,
		       (unsigned long long)bytes, (unsigned long long)kept);
	} else if (code == EXIT_OK) {
		char s1[32];
		mib(bytes, s1, sizeof(s1));
		printf("removed %llu startup-cache entr%s (%s)", (unsigned long long)removed,
		       removed == 1 ? "y" : "ies", s1);
		if (kept)
			printf("; %llu kept: a clone runs from %s", (unsigned long long)kept,
			       kept == 1 ? "it" : "them");
		printf("\n");
	}
	pmsg_free(&rep);
	return code;
}

int cmd_snapshot(int argc, char **argv, struct cli_opts *o)
{
	if (argc < 2)
		return usage(false);
	const char *sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "create") == 0)
		return snap_create(argc, argv, o);
	if (strcmp(sub, "run") == 0)
		return snap_run(argc, argv, o);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return snap_ls(argc, argv, o);
	if (strcmp(sub, "rm") == 0)
		return snap_rm(argc, argv, o);
	if (strcmp(sub, "prune") == 0)
		return snap_prune(argc, argv, o);
	return usage(strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0);
}
