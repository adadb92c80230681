/* proto/reply.c: error replies, and the one errno -> protocol code map. */
#include "proto/proto.h"
#include "tests/unit/check.h"

TEST(refuse_answers_the_request)
{
	struct pmsg req, rep;
	CHECK_EQ(pmsg_init(&req, PK_REQUEST, OP_VM_STOP, 42), 0);
	pmsg_refuse(&rep, &req, PE_NOT_FOUND, "no VM named '%s' (see `fcvm ls`)", "web\x01");
	CHECK_EQ(rep.kind, PK_REPLY);
	CHECK_EQ(rep.id, 42);
	CHECK(rep.op == req.op);
	CHECK_EQ(rep.err_code, PE_NOT_FOUND);
	CHECK_STR(rep.err_msg, "no VM named 'web?' (see `fcvm ls`)"); /* always printable text */
	unsigned char buf[256];
	size_t len;
	struct perr e;
	CHECK_EQ(pmsg_encode(&rep, buf, sizeof(buf), &len, &e), PE_OK);
	pmsg_free(&rep);
	pmsg_free(&req);
}

TEST(errno_codes)
{
	static const struct {
		int err, code;
	} map[] = {
	    {EEXIST, PE_EXISTS},   {EADDRINUSE, PE_EXISTS}, {ENOENT, PE_NOT_FOUND},	{ENOSPC, PE_NO_SPACE},
	    {EDQUOT, PE_NO_SPACE}, {EINVAL, PE_INVALID},    {ENAMETOOLONG, PE_INVALID}, {EADDRNOTAVAIL, PE_INVALID},
	    {EBUSY, PE_BUSY},	   {ELOOP, PE_DENIED},	    {EXDEV, PE_DENIED},		{EPERM, PE_DENIED},
	    {EACCES, PE_DENIED},   {EIO, PE_INTERNAL},	    {E2BIG, PE_INTERNAL},	{0, PE_INTERNAL},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		CHECK_EQ(proto_code_from_errno(-map[i].err), map[i].code);
}
