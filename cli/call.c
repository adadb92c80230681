#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "proto/stream.h"

static int exit_for(int code)
{
	switch (code) {
	case PE_DENIED:
		return EXIT_DENIED;
	case PE_UNAVAILABLE:
		return EXIT_UNAVAILABLE;
	default:
		return EXIT_FAIL;
	}
}

int cli_call(int fd, struct pmsg *req, struct pmsg *rep)
{
	struct perr e = {0};
	req->id = 1;
	int rc = stream_send_msg(fd, req, &e);
	pmsg_init(rep, PK_REPLY, req->op->id, 0);
	if (rc < 0) {
		fprintf(stderr, "fcvm: sending '%s' failed: %s\n", req->op->name,
			rc == -EINVAL ? e.msg : strerror(-rc));
		return EXIT_FAIL;
	}
	pmsg_free(rep);
	return cli_reply(fd, req->op->id, rep);
}

int cli_reply(int fd, enum proto_op op, struct pmsg *rep)
{
	struct perr e = {0};
	int rc = stream_recv_msg(fd, rep, &e);
	if (rc <= 0) {
		fprintf(stderr, "fcvm: the supervisor closed the connection without answering '%s'%s%s\n",
			proto_op(op)->name, rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
		return EXIT_FAIL;
	}
	if (e.code != PE_OK) {
		fprintf(stderr, "fcvm: invalid reply from the supervisor: %s\n", e.msg);
		return EXIT_FAIL;
	}
	if (rep->err_code != PE_OK) {
		fprintf(stderr, "fcvm: %s\n", rep->err_msg ? rep->err_msg : proto_err_name(rep->err_code));
		return exit_for(rep->err_code);
	}
	return EXIT_OK;
}

int cli_simple_call(struct cli_opts *o, struct pmsg *req, struct pmsg *rep)
{
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0) {
		pmsg_init(rep, PK_REPLY, req->op->id, 0);
		return code;
	}
	return cli_call(fd, req, rep);
}

void cli_age(uint64_t created_ms, char *buf, size_t n)
{
	uint64_t now = now_realtime_ms();
	uint64_t s = now > created_ms ? (now - created_ms) / 1000 : 0;
	if (s < 120)
		snprintf(buf, n, "%llus ago", (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%llum ago", (unsigned long long)(s / 60));
	else
		snprintf(buf, n, "%lluh ago", (unsigned long long)(s / 3600));
}
