/* libFuzzer target for pmsg_decode (the envelope + schema decoder).
 * Properties checked beyond "no crash, no leak, no UB":
 *   - whatever decodes re-encodes, and encode(decode(x)) is a fixed point;
 *   - every refusal says why and can be answered with an error reply that encodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static unsigned char a[PROTO_MAX_FRAME], b[PROTO_MAX_FRAME];

static void refusal_is_answerable(const struct pmsg *m, const struct perr *e)
{
	struct pmsg rep;
	struct perr e2;
	size_t len;

	if (e->msg[0] == '\0')
		abort();
	if ((e->code == PE_INVALID && !m->op) || (e->code == PE_UNKNOWN_OP && m->op))
		abort(); /* PE_INVALID: the op was known; PE_UNKNOWN_OP: it was not */
	if (m->op)
		pmsg_init_reply(&rep, m);
	else
		pmsg_init(&rep, PK_REPLY, OP_PING, m->id);
	pmsg_set_error(&rep, e->code, "%s", e->msg);
	if (pmsg_encode(&rep, a, sizeof(a), &len, &e2) != PE_OK)
		abort();
	pmsg_free(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pmsg m, m2;
	struct perr e;
	size_t la, lb;

	int rc = pmsg_decode(&m, data, size, &e);
	if (rc != e.code)
		abort();
	if (rc == PE_OK) {
		if (proto_prescan(data, size) != 0)
			abort();
		if (pmsg_encode(&m, a, sizeof(a), &la, &e) != PE_OK)
			abort(); /* accepted on the way in, so valid on the way out */
		if (pmsg_decode(&m2, a, la, &e) != PE_OK)
			abort();
		if (pmsg_encode(&m2, b, sizeof(b), &lb, &e) != PE_OK)
			abort();
		if (la != lb || memcmp(a, b, la) != 0 || la > size)
			abort(); /* canonical: a fixed point, never longer than the input */
		pmsg_free(&m2);
	} else {
		refusal_is_answerable(&m, &e);
	}
	pmsg_free(&m);
	return 0;
}
