/* fcvm image import NAME FILE | ls [--json] | rm NAME
 * Base images in the data directory (through stored): the file is opened here, as the user,
 * and handed over as an fd; stored copies (or reflinks) its bytes into images/NAME, read-only.
 * `fcvm disk create NAME --size S --base IMAGE` then makes a copy-on-write disk of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "proto/stream.h"

static const char usage[] = "usage: fcvm image import NAME FILE\n"
			    "       fcvm image ls [--json]\n"
			    "       fcvm image rm NAME\n";

static int import(struct cli_opts *o, const char *name, const char *file)
{
	int img AUTOCLOSE = open(file, O_RDONLY | O_CLOEXEC);
	if (img < 0) {
		fprintf(stderr, "fcvm: cannot open %s: %s\n", file, strerror(errno));
		return EXIT_FAIL;
	}
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0)
		return code;
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_IMAGE_IMPORT, 1);
	prec_set_str(&req, &req.body, "name", name);
	int rc = cli_send_with_fd(fd, &req, img);
	pmsg_free(&req);
	if (rc < 0) {
		fprintf(stderr, "fcvm: sending the request failed: %s\n", strerror(-rc));
		return EXIT_FAIL;
	}
	code = cli_reply(fd, OP_IMAGE_IMPORT, &rep);
	if (code == EXIT_OK) {
		uint64_t size = 0;
		prec_uint(&rep.body, "size", &size);
		printf("%s (%llu bytes)\n", prec_str(&rep.body, "name"), (unsigned long long)size);
	}
	pmsg_free(&rep);
	return code;
}

int cmd_image(int argc, char **argv, struct cli_opts *o)
{
	if (argc >= 4 && strcmp(argv[1], "import") == 0 && argc == 4)
		return import(o, argv[2], argv[3]);
	struct pmsg req, rep;
	if ((argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0)) && strcmp(argv[1], "ls") == 0) {
		o->json |= argc == 3;
		pmsg_init(&req, PK_REQUEST, OP_IMAGE_LIST, 0);
	} else if (argc == 3 && strcmp(argv[1], "rm") == 0) {
		pmsg_init(&req, PK_REQUEST, OP_IMAGE_REMOVE, 0);
		prec_set_str(&req, &req.body, "name", argv[2]);
	} else {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0) {
		pmsg_free(&req);
		return code;
	}
	code = cli_call(fd, &req, &rep);
	if (code == EXIT_OK && req.op->id == OP_IMAGE_LIST) {
		if (o->json) {
			cli_print_json_list(&rep.body, "images");
		} else {
			printf("%-24s %14s\n", "NAME", "SIZE");
			const struct pval *v = prec_get(&rep.body, "images");
			for (uint32_t i = 0; v && i < v->recs.n; i++) {
				uint64_t size = 0;
				prec_uint(&v->recs.v[i], "size", &size);
				printf("%-24s %14llu\n", prec_str(&v->recs.v[i], "name"), (unsigned long long)size);
			}
		}
	}
	pmsg_free(&req);
	pmsg_free(&rep);
	return code;
}
