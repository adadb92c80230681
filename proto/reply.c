/* Error replies and the errno -> protocol code map, shared by the supervisor, the helpers and
 * the guest agent (so: nothing here may log or need libevent). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "proto/proto.h"

void pmsg_vrefuse(struct pmsg *rep, const struct pmsg *req, int code, const char *fmt, va_list ap)
{
	char buf[PROTO_MAX_STR + 1];

	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	pmsg_init_reply(rep, req);
	pmsg_set_error(rep, code, "%s", buf);
}

void pmsg_refuse(struct pmsg *rep, const struct pmsg *req, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pmsg_vrefuse(rep, req, code, fmt, ap);
	va_end(ap);
}

int proto_code_from_errno(int neg_errno)
{
	switch (-neg_errno) {
	case EEXIST:
	case EADDRINUSE:
		return PE_EXISTS;
	case ENOENT:
		return PE_NOT_FOUND;
	case ENOSPC:
	case EDQUOT:
		return PE_NO_SPACE;
	case EINVAL:
	case ENAMETOOLONG:
	case EADDRNOTAVAIL:
		return PE_INVALID;
	case EBUSY:
		return PE_BUSY;
	case ELOOP: /* openat2's RESOLVE_* refusals: a symlink, or a path out of its tree */
	case EXDEV:
	case EPERM:
	case EACCES:
		return PE_DENIED;
	default:
		return PE_INTERNAL;
	}
}
