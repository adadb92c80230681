/* fcvm disk create NAME --size SIZE [--base IMAGE] | clone SRC DST | rm NAME | ls [--json] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

static const char usage[] = "usage: fcvm disk create NAME --size SIZE[K|M|G|T] [--base IMAGE]\n"
			    "       fcvm disk clone SRC DST\n"
			    "       fcvm disk rm NAME\n"
			    "       fcvm disk ls [--json]\n";

bool cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (end == s || *s == '-')
		return false;
	switch (*end) {
	case 'T':
	case 't':
		shift = 40;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'K':
	case 'k':
		shift = 10;
		break;
	case '\0':
		break;
	default:
		return false;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
		return false;
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static int call_and_print(struct cli_opts *o, struct pmsg *req)
{
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	struct pmsg rep;
	if (fd < 0)
		return code;
	code = cli_call(fd, req, &rep);
	if (code == EXIT_OK) {
		if (o->json) {
			cli_print_json(&rep.body);
		} else if (req->op->id == OP_DISK_LIST) {
			uint64_t free_b = 0;
			prec_uint(&rep.body, "free", &free_b);
			printf("backend %s, %.1f GiB free\n%-24s %14s %14s %14s %14s\n", prec_str(&rep.body, "backend"),
			       (double)free_b / (1 << 30), "NAME", "SIZE", "ALLOCATED", "EXCLUSIVE", "SHARED");
			const struct pval *disks = prec_get(&rep.body, "disks");
			for (uint32_t i = 0; disks && i < disks->recs.n; i++) {
				uint64_t l = 0, a = 0, x = 0, sh = 0;
				prec_uint(&disks->recs.v[i], "logical", &l);
				prec_uint(&disks->recs.v[i], "allocated", &a);
				prec_uint(&disks->recs.v[i], "exclusive", &x);
				prec_uint(&disks->recs.v[i], "shared", &sh);
				printf("%-24s %14llu %14llu %14llu %14llu\n", prec_str(&disks->recs.v[i], "name"),
				       (unsigned long long)l, (unsigned long long)a, (unsigned long long)x,
				       (unsigned long long)sh);
			}
		} else if (prec_has(&rep.body, "name")) {
			uint64_t size = 0;
			prec_uint(&rep.body, "size", &size);
			printf("%s (%s, %llu bytes)\n", prec_str(&rep.body, "name"), prec_str(&rep.body, "backend"),
			       (unsigned long long)size);
		}
	}
	pmsg_free(&rep);
	return code;
}

int cmd_disk(int argc, char **argv, struct cli_opts *o)
{
	static const struct option opts[] = {
	    {"size", required_argument, NULL, 'S'}, {"base", required_argument, NULL, 'b'},
	    {"json", no_argument, NULL, 'j'},	    {"state-dir", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0},
	};
	const char *size_s = NULL, *base = NULL;
	int c;
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			size_s = optarg;
			break;
		case 'b':
			base = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		default:
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	char **arg = argv + optind;
	int nargs = argc - optind;
	struct pmsg req;
	int rc;
	if (strcmp(verb, "create") == 0 && nargs == 1) {
		uint64_t size;
		if (!size_s || !cli_parse_size(size_s, &size)) {
			fprintf(stderr, "fcvm disk create: --size SIZE is required, e.g. --size 10G\n");
			return EXIT_USAGE;
		}
		pmsg_init(&req, PK_REQUEST, OP_DISK_CREATE, 0);
		prec_set_str(&req, &req.body, "name", arg[0]);
		prec_set_uint(&req, &req.body, "size", size);
		if (base)
			prec_set_str(&req, &req.body, "base", base);
	} else if (strcmp(verb, "clone") == 0 && nargs == 2) {
		pmsg_init(&req, PK_REQUEST, OP_DISK_CLONE, 0);
		prec_set_str(&req, &req.body, "src", arg[0]);
		prec_set_str(&req, &req.body, "dst", arg[1]);
	} else if ((strcmp(verb, "rm") == 0 || strcmp(verb, "remove") == 0) && nargs == 1) {
		pmsg_init(&req, PK_REQUEST, OP_DISK_REMOVE, 0);
		prec_set_str(&req, &req.body, "name", arg[0]);
	} else if ((strcmp(verb, "ls") == 0 || strcmp(verb, "list") == 0) && nargs == 0) {
		pmsg_init(&req, PK_REQUEST, OP_DISK_LIST, 0);
	} else {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	rc = call_and_print(o, &req);
	pmsg_free(&req);
	return rc;
}
