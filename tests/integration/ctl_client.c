/* Run under `fcvm supervise -- ctl_client`: speaks raw frames to the control socket and checks
 * that bad input is refused without harming anyone else. Prints PASS:/FAIL: lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/stream.h"
#include "tests/integration/ctl_dial.h"

static int failures;

static void report(const char *name, int ok, const char *why)
{
	printf("%s: ctl_client:%s%s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : " (", ok ? "" : why, ok ? "" : ")");
	failures += !ok;
}

static int dial(void)
{
	return ctl_dial(10);
}

/* true if the supervisor closed the connection (read returns 0) */
static int closed_by_peer(int fd)
{
	char b;
	return read(fd, &b, 1) == 0;
}

/* Send req, return the reply's error code (PE_OK on success), -1 on transport failure. */
static int call(int fd, struct pmsg *req)
{
	struct pmsg rep;
	struct perr e;
	if (stream_send_msg(fd, req, &e) < 0)
		return -1;
	int r = stream_recv_msg(fd, &rep, &e);
	int code = r == 1 && e.code == PE_OK ? rep.err_code : -1;
	if (r == 1)
		pmsg_free(&rep);
	return code;
}

static int ping_ok(void)
{
	int fd = dial();
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_PING, 1);
	int ok = fd >= 0 && call(fd, &req) == PE_OK;
	pmsg_free(&req);
	close(fd);
	return ok;
}

int main(void)
{
	int fd;

	/* garbage in a well-sized frame: that connection is closed, others still served */
	fd = dial();
	static const unsigned char garbage[] = {0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
	report("malformed_frame_closes_connection",
	       write(fd, garbage, sizeof(garbage)) == sizeof(garbage) && closed_by_peer(fd), "connection stayed open");
	close(fd);
	report("others_served_after_malformed", ping_ok(), "ping failed");

	/* a length header beyond the frame limit */
	fd = dial();
	static const unsigned char huge[] = {0x7f, 0xff, 0xff, 0xff};
	report("oversize_frame_closes_connection", write(fd, huge, sizeof(huge)) == sizeof(huge) && closed_by_peer(fd),
	       "connection stayed open");
	close(fd);

	/* spawn is the launcher's business, not a client's */
	fd = dial();
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SPAWN, 7);
	prec_set_str(&req, &req.body, "helper", "netd");
	report("spawn_refused_to_clients", call(fd, &req) == PE_DENIED, "not denied");
	pmsg_free(&req);

	/* an invalid field is refused by the schema, and the connection stays usable */
	unsigned char buf[STREAM_HDR + 256];
	/* hand-made: [1, 0, "ping", 9, {"helper": "../etc"}, nil] */
	static const unsigned char bad_ident[] = {0x96, 0x01, 0x00, 0xa4, 'p', 'i', 'n', 'g', 0x09,
						  0x81, 0xa6, 'h',  'e',  'l', 'p', 'e', 'r', 0xa6,
						  '.',	'.',  '/',  'e',  't', 'c', 0xc0};
	struct pmsg rep;
	struct perr e;
	int r = stream_write_frame(fd, bad_ident, sizeof(bad_ident));
	r = r == 0 ? stream_recv_msg(fd, &rep, &e) : -1;
	report("path_like_name_refused", r == 1 && rep.err_code == PE_INVALID && rep.id == 9, "not refused as invalid");
	if (r == 1)
		pmsg_free(&rep);

	/* unknown operation: an error reply naming it, connection kept */
	static const unsigned char unknown[] = {0x96, 0x01, 0x00, 0xa4, 'h', 'a', 'c', 'k', 0x0a, 0x80, 0xc0};
	r = stream_write_frame(fd, unknown, sizeof(unknown));
	r = r == 0 ? stream_recv_msg(fd, &rep, &e) : -1;
	report("unknown_op_refused", r == 1 && rep.err_code == PE_UNKNOWN_OP && rep.id == 10, "no unknown-op reply");
	if (r == 1)
		pmsg_free(&rep);

	/* oversize field: a helper name past its bound */
	char longname[64];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	static const unsigned char hdr[] = {0x96, 0x01, 0x00, 0xa4, 'p', 'i', 'n', 'g',	 0x0b, 0x81,
					    0xa6, 'h',	'e',  'l',  'p', 'e', 'r', 0xd9, 63};
	memcpy(buf, hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), longname, 63);
	buf[sizeof(hdr) + 63] = 0xc0;
	r = stream_write_frame(fd, buf, sizeof(hdr) + 64);
	r = r == 0 ? stream_recv_msg(fd, &rep, &e) : -1;
	report("oversize_field_refused", r == 1 && rep.err_code == PE_INVALID, "not refused");
	if (r == 1)
		pmsg_free(&rep);

	pmsg_init(&req, PK_REQUEST, OP_PING, 12);
	report("connection_usable_after_refusals", call(fd, &req) == PE_OK, "ping failed");
	pmsg_free(&req);

	/* a ping for a helper that does not exist */
	pmsg_init(&req, PK_REQUEST, OP_PING, 13);
	prec_set_str(&req, &req.body, "helper", "sshd");
	report("unknown_helper_not_found", call(fd, &req) == PE_NOT_FOUND, "wrong error");
	pmsg_free(&req);
	close(fd);
	return failures ? 1 : 0;
}
