/* proto/: schema-driven encode/decode, the validator, the prescan of raw bytes, messages. */
#include <fcntl.h>
#include <msgpack.h>
#include <time.h>

#include "proto/proto.h"
#include "tests/unit/check.h"

#define CHECK_CONTAINS(hay, needle) CHECK(strstr((hay), (needle)) != NULL)

/* ---- building values from the schema ---- */

/* A string of exactly len bytes of class cls (salt varies the content). */
static void make_str(char *s, size_t len, enum str_class cls, unsigned salt)
{
	size_t i = 0;
	switch (cls) {
	case SC_IDENT:
		for (; i < len; i++)
			s[i] = i == 0 ? (char)('a' + salt % 26) : "a9_.-Z"[(i + salt) % 6];
		break;
	case SC_TEXT:
		while (i < len) { /* "é" and "\t" and ASCII: printable UTF-8 text */
			if (len - i >= 2 && (i + salt) % 5 == 0) {
				s[i++] = (char)0xc3;
				s[i++] = (char)0xa9;
			} else {
				s[i] = (i + salt) % 7 == 3 ? '\t' : (char)('A' + (i + salt) % 26);
				i++;
			}
		}
		break;
	case SC_ANY: /* every byte but NUL: controls and invalid UTF-8 included */
		for (; i < len; i++)
			s[i] = (char)(1 + (i + salt) % 255);
		break;
	}
	s[len] = '\0';
}

static size_t min_sz(uint64_t a, size_t b)
{
	return a < b ? (size_t)a : b;
}

/* Set every field of r (optional ones too) to a valid value, at the bounds where cheap. */
static void fill(struct pmsg *m, struct precord *r, unsigned salt)
{
	char s[PROTO_MAX_STR + 1];
	for (size_t i = 0; i < r->def->nfields; i++) {
		const struct field_def *f = &r->def->fields[i];
		switch (f->type) {
		case FT_STR:
			make_str(s, min_sz(f->max, 40 + salt), f->cls, salt + (unsigned)i);
			CHECK_EQ(prec_set_str(m, r, f->name, s), 0);
			break;
		case FT_BIN: {
			static const unsigned char bytes[PROTO_MAX_STR];
			size_t n = f->min > 3 ? (size_t)f->min : min_sz(f->max, 3);
			CHECK_EQ(prec_set_bin(m, r, f->name, bytes, n), 0);
			break;
		}
		case FT_UINT: {
			uint64_t v = f->min + salt;
			if (salt & 1 || v > f->max || v < f->min)
				v = salt & 1 ? f->max : f->min;
			CHECK_EQ(prec_set_uint(m, r, f->name, v), 0);
			break;
		}
		case FT_INT:
			CHECK_EQ(prec_set_int(m, r, f->name, (int64_t)f->min), 0);
			break;
		case FT_BOOL:
			CHECK_EQ(prec_set_bool(m, r, f->name, salt & 1), 0);
			break;
		case FT_STRLIST:
			for (size_t k = 0; k < min_sz(f->max, 3); k++) {
				make_str(s, min_sz(f->elem_max, 5 + k), f->cls, salt + (unsigned)k);
				CHECK_EQ(prec_add_str(m, r, f->name, s), 0);
			}
			break;
		case FT_RECORDS:
			for (size_t k = 0; k < min_sz(f->max, 2); k++) {
				struct precord *sub = prec_add_record(m, r, f->name);
				CHECK(sub != NULL);
				fill(m, sub, salt + (unsigned)k + 1);
			}
			break;
		}
	}
	CHECK_EQ(r->present, (1u << r->def->nfields) - 1);
}

static void same_rec(const struct precord *a, const struct precord *b)
{
	CHECK(a->def == b->def);
	CHECK_EQ(a->present, b->present);
	for (size_t i = 0; i < a->def->nfields; i++) {
		const struct field_def *f = &a->def->fields[i];
		const struct pval *x = &a->v[i], *y = &b->v[i];
		if (!(a->present & (1u << i)))
			continue;
		switch (f->type) {
		case FT_STR:
		case FT_BIN:
			CHECK_EQ(x->s.n, y->s.n);
			CHECK(memcmp(x->s.p, y->s.p, x->s.n) == 0);
			CHECK_EQ(y->s.p[y->s.n], '\0');
			break;
		case FT_UINT:
			CHECK(x->u == y->u);
			break;
		case FT_INT:
			CHECK(x->i == y->i);
			break;
		case FT_BOOL:
			CHECK_EQ(x->b, y->b);
			break;
		case FT_STRLIST:
			CHECK_EQ(x->list.n, y->list.n);
			for (uint32_t k = 0; k < x->list.n; k++)
				CHECK_STR(x->list.v[k], y->list.v[k]);
			break;
		case FT_RECORDS:
			CHECK_EQ(x->recs.n, y->recs.n);
			for (uint32_t k = 0; k < x->recs.n; k++)
				same_rec(&x->recs.v[k], &y->recs.v[k]);
			break;
		}
	}
}

static unsigned char frame[PROTO_MAX_FRAME];

/* encode m, decode it, compare, re-encode: same bytes. */
static void round_trip(const struct pmsg *m)
{
	static unsigned char again[PROTO_MAX_FRAME];
	struct perr e;
	struct pmsg d;
	size_t len, len2;

	CHECK_EQ(pmsg_encode(m, frame, sizeof(frame), &len, &e), PE_OK);
	CHECK_EQ(proto_prescan(frame, len), 0);
	CHECK_EQ(pmsg_decode(&d, frame, len, &e), PE_OK);
	CHECK_EQ(e.code, PE_OK);
	CHECK_EQ(d.kind, m->kind);
	CHECK(d.op == m->op);
	CHECK_EQ(d.id, m->id);
	CHECK_EQ(d.err_code, m->err_code);
	if (m->err_code)
		CHECK_STR(d.err_msg, m->err_msg);
	same_rec(&m->body, &d.body);
	CHECK_EQ(pmsg_encode(&d, again, sizeof(again), &len2, &e), PE_OK);
	CHECK_EQ(len2, len);
	CHECK(memcmp(frame, again, len) == 0);
	pmsg_free(&d);
}

TEST(round_trip_every_op_all_fields)
{
	for (int op = 0; op < OP__COUNT; op++) {
		for (int kind = PK_REQUEST; kind <= PK_EVENT; kind++) {
			struct pmsg m;
			CHECK_EQ(pmsg_init(&m, (enum proto_kind)kind, (enum proto_op)op, 1000u + (unsigned)op), 0);
			fill(&m, &m.body, (unsigned)(op + kind));
			round_trip(&m);
			pmsg_free(&m);
		}
	}
}

TEST(round_trip_min_and_max_bounds)
{
	/* each op again, with the other salt parity: uints at their max (UINT64_MAX for capeff) */
	for (int op = 0; op < OP__COUNT; op++) {
		struct pmsg m;
		CHECK_EQ(pmsg_init(&m, PK_REPLY, (enum proto_op)op, UINT32_MAX), 0);
		fill(&m, &m.body, 1);
		round_trip(&m);
		pmsg_free(&m);
	}
	/* a 4096-byte SC_ANY path, the longest string the schema allows */
	char s[4097];
	struct pmsg m;
	pmsg_init(&m, PK_REPLY, OP_STATUS, 1);
	fill(&m, &m.body, 0);
	make_str(s, 4096, SC_ANY, 3);
	CHECK_EQ(prec_set_str(&m, &m.body, "state_dir", s), 0);
	round_trip(&m);
	pmsg_free(&m);
}

TEST(status_reply_nested_records_and_lists)
{
	struct pmsg m, d;
	struct perr e;
	size_t len;
	pmsg_init(&m, PK_REPLY, OP_STATUS, 42);
	CHECK_EQ(prec_set_str(&m, &m.body, "version", "0.1.0"), 0);
	CHECK_EQ(prec_set_str(&m, &m.body, "mode", "rootless"), 0);
	CHECK_EQ(prec_set_str(&m, &m.body, "state_dir", "/run/user/1000/fcvm"), 0);
	CHECK_EQ(prec_set_str(&m, &m.body, "socket", "/run/user/1000/fcvm/control.sock"), 0);
	CHECK_EQ(prec_set_uint(&m, &m.body, "owner_uid", 1000), 0);
	const char *names[] = {"supervisor", "netd", "stored"};
	for (int i = 0; i < 3; i++) {
		struct precord *p = prec_add_record(&m, &m.body, "processes");
		CHECK(p != NULL);
		CHECK_EQ(prec_set_str(&m, p, "name", names[i]), 0);
		CHECK_EQ(prec_set_uint(&m, p, "pid", 100u + (unsigned)i), 0);
		CHECK_EQ(prec_set_uint(&m, p, "uid", 1000), 0);
		CHECK_EQ(prec_set_uint(&m, p, "gid", 1000), 0);
		CHECK_EQ(prec_set_uint(&m, p, "capeff", i == 1 ? 1u << 12 : 0), 0);
		if (i == 1)
			CHECK_EQ(prec_add_str(&m, p, "caps", "cap_net_admin"), 0);
		CHECK_EQ(prec_set_uint(&m, p, "seccomp", 2), 0);
		CHECK_EQ(prec_set_bool(&m, p, "no_new_privs", true), 0);
		CHECK_EQ(prec_set_bool(&m, p, "dumpable", false), 0);
		CHECK_EQ(prec_set_str(&m, p, "mode", "rootless"), 0);
		CHECK_EQ(prec_set_uint(&m, p, "started_ms", 1700000000000ull), 0);
		CHECK_EQ(prec_set_str(&m, p, "state", "up"), 0);
	}
	CHECK_EQ(pmsg_encode(&m, frame, sizeof(frame), &len, &e), PE_OK);
	CHECK_EQ(pmsg_decode(&d, frame, len, &e), PE_OK);
	const struct pval *procs = prec_get(&d.body, "processes");
	CHECK(procs != NULL);
	CHECK_EQ(procs->recs.n, 3);
	CHECK(!prec_has(&d.body, "launcher"));
	CHECK_STR(prec_str(&procs->recs.v[1], "name"), "netd");
	uint64_t u = 0;
	CHECK(prec_uint(&procs->recs.v[2], "pid", &u));
	CHECK_EQ(u, 102);
	bool b = true;
	CHECK(prec_bool(&procs->recs.v[0], "dumpable", &b));
	CHECK_EQ(b, false);
	const struct pval *caps = prec_get(&procs->recs.v[1], "caps");
	CHECK(caps != NULL);
	CHECK_EQ(caps->list.n, 1);
	CHECK_STR(caps->list.v[0], "cap_net_admin");
	CHECK(prec_get(&procs->recs.v[0], "caps") == NULL);
	CHECK_STR(prec_str(&d.body, "socket"), "/run/user/1000/fcvm/control.sock");
	/* getters refuse another type */
	CHECK(prec_str(&d.body, "owner_uid") == NULL);
	CHECK(!prec_uint(&d.body, "mode", &u));
	pmsg_free(&d);
	pmsg_free(&m);
}

TEST(error_reply_round_trip)
{
	struct pmsg req, m, d;
	struct perr e;
	size_t len;
	pmsg_init(&req, PK_REQUEST, OP_SPAWN, 7);
	pmsg_init_reply(&m, &req);
	CHECK_EQ(m.kind, PK_REPLY);
	CHECK_EQ(m.id, 7);
	CHECK(m.body.def == &proto_op(OP_SPAWN)->rep);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 5), 0);
	pmsg_set_error(&m, PE_DENIED, "'%s' is not a helper (%d)", "x", 3);
	CHECK_EQ(m.body.present, 0);
	CHECK_EQ(pmsg_encode(&m, frame, sizeof(frame), &len, &e), PE_OK);
	CHECK_EQ(pmsg_decode(&d, frame, len, &e), PE_OK);
	CHECK_EQ(d.kind, PK_REPLY);
	CHECK_EQ(d.id, 7);
	CHECK(d.op == proto_op(OP_SPAWN));
	CHECK_EQ(d.err_code, PE_DENIED);
	CHECK_STR(d.err_msg, "'x' is not a helper (3)");
	CHECK_EQ(d.body.present, 0);
	round_trip(&m);
	pmsg_free(&d);
	pmsg_free(&m);
	pmsg_free(&req);
}

TEST(set_error_makes_text_and_closes_fds)
{
	struct pmsg m;
	int p[2];
	CHECK(pipe(p) == 0);
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1);
	CHECK_EQ(pmsg_add_fd(&m, p[0]), 0);
	pmsg_set_error(&m, PE_INTERNAL, "bad\n\x1b[31mthing\xff");
	CHECK_STR(m.err_msg, "bad??[31mthing?");
	CHECK_EQ(m.nfds, 0);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	round_trip(&m);
	/* a message longer than PROTO_MAX_STR is cut to it */
	char big[PROTO_MAX_STR + 100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pmsg_set_error(&m, PE_INTERNAL, "%s", big);
	CHECK_EQ(strlen(m.err_msg), PROTO_MAX_STR);
	round_trip(&m);
	pmsg_free(&m);
	close(p[1]);
}

TEST(err_names)
{
	CHECK_STR(proto_err_name(PE_OK), "ok");
	CHECK_STR(proto_err_name(PE_MALFORMED), "malformed");
	CHECK_STR(proto_err_name(PE_UNKNOWN_OP), "unknown-op");
	CHECK_STR(proto_err_name(PE_DENIED), "denied");
	CHECK_STR(proto_err_name(PE_INVALID), "invalid");
	CHECK_STR(proto_err_name(PE_UNAVAILABLE), "unavailable");
	CHECK_STR(proto_err_name(PE_INTERNAL), "internal");
	CHECK_STR(proto_err_name(PE_NOT_IMPLEMENTED), "not-implemented");
	CHECK_STR(proto_err_name(PE_NOT_FOUND), "not-found");
	CHECK_STR(proto_err_name(PE_EXISTS), "exists");
	CHECK_STR(proto_err_name(PE_NO_SPACE), "no-space");
	CHECK_STR(proto_err_name(PE_BUSY), "busy");
	CHECK_STR(proto_err_name(PE_VERSION), "version");
	CHECK_STR(proto_err_name(13), "error");
	CHECK_STR(proto_err_name(-1), "error");
}

/* ---- encode refusals ---- */

static int encode_code(const struct pmsg *m, struct perr *e)
{
	size_t len = 12345;
	int rc = pmsg_encode(m, frame, sizeof(frame), &len, e);
	CHECK_EQ(e->code, rc);
	if (rc != PE_OK)
		CHECK(e->msg[0] != '\0');
	return rc;
}

TEST(encode_refuses_long_string)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_SPAWN, 1);
	CHECK_EQ(prec_set_str(&m, &m.body, "helper", "abcdefghijklmnop"), 0); /* 16: the max */
	CHECK_EQ(encode_code(&m, &e), PE_OK);
	CHECK_EQ(prec_set_str(&m, &m.body, "helper", "abcdefghijklmnopqrstuvwxyzabcdefghijklmn"), 0);
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'helper': length 40 > 16");
	pmsg_free(&m);
}

TEST(encode_refuses_out_of_range_uint)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 0), 0); /* min 1 */
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "field 'pid'");
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", (uint64_t)INT32_MAX + 1), 0);
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", INT32_MAX), 0);
	CHECK_EQ(encode_code(&m, &e), PE_OK);
	pmsg_free(&m);
}

TEST(encode_refuses_bad_ident)
{
	const char *bad[] = {"../x", ".", "..", "a/b", "", "-a", "_a", "a b", "a\tb", "\xc3\xa9"};
	const char *good[] = {"a", "netd", "x.y-z_0", "9", "a.."};
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_SPAWN, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(prec_set_str(&m, &m.body, "helper", bad[i]), 0);
		CHECK_EQ(encode_code(&m, &e), PE_INVALID);
		CHECK_CONTAINS(e.msg, "field 'helper'");
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(prec_set_str(&m, &m.body, "helper", good[i]), 0);
		CHECK_EQ(encode_code(&m, &e), PE_OK);
	}
	pmsg_free(&m);
}

TEST(encode_refuses_bad_text)
{
	const char *bad[] = {"a\nb",	 "\x1b[31m",	 "del\x7f",	     "\xff",	 "\xc3\x28",
			     "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "c1 \xc2\x9b"};
	const char *good[] = {"stopping\tnow", "h\xc3\xa9llo \xe2\x9c\x93", "\xf0\x9f\x98\x80", "x"};
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_SHUTDOWN, 1);
	CHECK_EQ(encode_code(&m, &e), PE_OK); /* reason is optional */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(prec_set_str(&m, &m.body, "reason", bad[i]), 0);
		CHECK_EQ(encode_code(&m, &e), PE_INVALID);
		CHECK_CONTAINS(e.msg, "field 'reason'");
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(prec_set_str(&m, &m.body, "reason", good[i]), 0);
		CHECK_EQ(encode_code(&m, &e), PE_OK);
	}
	pmsg_free(&m);
}

TEST(encode_refuses_missing_required)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_SPAWN, 1);
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'helper': missing");
	pmsg_free(&m);

	/* inside a nested record */
	pmsg_init(&m, PK_REPLY, OP_STATUS, 1);
	fill(&m, &m.body, 0);
	struct precord *p = &prec_get(&m.body, "processes")->recs.v[1];
	p->present &= ~1u; /* "name" */
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'processes[1].name': missing");
	pmsg_free(&m);
}

TEST(setters_refuse_unknown_fields_and_types)
{
	struct pmsg m;
	pmsg_init(&m, PK_REQUEST, OP_SPAWN, 1);
	CHECK_EQ(prec_set_str(&m, &m.body, "nope", "x"), -1);
	CHECK_EQ(prec_set_uint(&m, &m.body, "helper", 1), -1);
	CHECK_EQ(prec_set_bool(&m, &m.body, "helper", true), -1);
	CHECK_EQ(prec_set_int(&m, &m.body, "helper", 1), -1);
	CHECK_EQ(prec_set_bin(&m, &m.body, "helper", "x", 1), -1);
	CHECK_EQ(prec_add_str(&m, &m.body, "helper", "x"), -1);
	CHECK(prec_add_record(&m, &m.body, "helper") == NULL);
	CHECK_EQ(prec_set_str(&m, &m.body, "helper", NULL), -1);
	CHECK_EQ(m.body.present, 0);
	pmsg_free(&m);

	/* an op with an empty request record has no fields at all */
	pmsg_init(&m, PK_REQUEST, OP_STATUS, 1);
	CHECK_EQ(prec_set_str(&m, &m.body, "helper", "x"), -1);
	pmsg_free(&m);
	CHECK_EQ(pmsg_init(&m, PK_REQUEST, OP__COUNT, 1), -1);
	pmsg_free(&m);
}

TEST(lists_stop_at_their_maximum)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REPLY, OP_STATUS, 1);
	fill(&m, &m.body, 0);
	struct precord *l = prec_add_record(&m, &m.body, "launcher"); /* max 1: fill added one */
	CHECK(l == NULL);
	struct precord *p = &prec_get(&m.body, "processes")->recs.v[0];
	struct precord *first = p;
	for (int i = 3; i < 64; i++)
		CHECK_EQ(prec_add_str(&m, p, "caps", "cap_x"), 0);
	CHECK_EQ(prec_add_str(&m, p, "caps", "cap_y"), -1); /* 65 > 64 */
	for (int i = 2; i < 8; i++)
		CHECK(prec_add_record(&m, &m.body, "processes") != NULL);
	CHECK(prec_add_record(&m, &m.body, "processes") == NULL);
	CHECK(&prec_get(&m.body, "processes")->recs.v[0] == first); /* records never move */
	/* the added empty records lack required fields */
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'processes[2].name': missing");
	pmsg_free(&m);
}

TEST(encode_refuses_long_list_element)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REPLY, OP_PING, 1);
	fill(&m, &m.body, 0);
	CHECK_EQ(encode_code(&m, &e), PE_OK);
	CHECK_EQ(prec_add_str(&m, &m.body, "caps", "cap_0123456789012345678901234567890"), 0); /* 35 > 32 */
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "field 'caps': element 3");
	pmsg_free(&m);
}

TEST(encode_refuses_bad_envelope)
{
	struct pmsg m;
	struct perr e;
	size_t len;
	pmsg_init(&m, PK_REQUEST, OP_STATUS, 1);
	m.err_code = PE_DENIED; /* an error on a request */
	m.err_msg = "x";
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	m.err_code = PE_OK;
	m.kind = 3;
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	m.kind = PK_REQUEST;
	CHECK_EQ(encode_code(&m, &e), PE_OK);
	/* no space */
	CHECK_EQ(pmsg_encode(&m, frame, 5, &len, &e), PE_NO_SPACE);
	CHECK_EQ(e.code, PE_NO_SPACE);
	pmsg_free(&m);
	/* an error reply with a body set after the error */
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1);
	pmsg_set_error(&m, PE_BUSY, "busy");
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 3), 0);
	CHECK_EQ(encode_code(&m, &e), PE_INVALID);
	pmsg_free(&m);
}

/* ---- decode refusals, frames built by hand ---- */

struct fr {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void fr_init(struct fr *f)
{
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
}

static void pstr(struct fr *f, const char *s)
{
	msgpack_pack_str(&f->pk, strlen(s));
	msgpack_pack_str_body(&f->pk, s, strlen(s));
}

/* [version, kind, op, id, ...] with n elements in all */
static void env(struct fr *f, unsigned n, uint64_t ver, uint64_t kind, const char *op, uint64_t id)
{
	fr_init(f);
	msgpack_pack_array(&f->pk, n);
	msgpack_pack_uint64(&f->pk, ver);
	msgpack_pack_uint64(&f->pk, kind);
	pstr(f, op);
	msgpack_pack_uint64(&f->pk, id);
}

/* decode f, free everything, return the code (checked against e.code) */
static int dec_bytes(const void *p, size_t n, struct perr *e, struct pmsg *out)
{
	struct pmsg m;
	int rc = pmsg_decode(&m, p, n, e);
	CHECK_EQ(e->code, rc);
	if (rc != PE_OK) {
		CHECK(e->msg[0] != '\0');
		CHECK_EQ(m.body.present, 0);
	}
	if (out)
		*out = m;
	else
		pmsg_free(&m);
	return rc;
}

static int dec(struct fr *f, struct perr *e)
{
	int rc = dec_bytes(f->sb.data, f->sb.size, e, NULL);
	msgpack_sbuffer_destroy(&f->sb);
	return rc;
}

/* a valid spawn request {helper: "netd"} as a baseline */
static void spawn_req(struct fr *f)
{
	env(f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 9);
	msgpack_pack_map(&f->pk, 1);
	pstr(f, "helper");
	pstr(f, "netd");
	msgpack_pack_nil(&f->pk);
}

TEST(decode_baseline_accepted)
{
	struct fr f;
	struct perr e;
	struct pmsg m;
	spawn_req(&f);
	CHECK_EQ(dec_bytes(f.sb.data, f.sb.size, &e, &m), PE_OK);
	CHECK_STR(prec_str(&m.body, "helper"), "netd");
	CHECK_EQ(m.id, 9);
	pmsg_free(&m);
	msgpack_sbuffer_destroy(&f.sb);
	/* non-canonical integer encodings are still integers */
	fr_init(&f);
	msgpack_pack_array(&f.pk, 6);
	msgpack_pack_fix_int8(&f.pk, 1); /* 0xd0 0x01: a positive int8 */
	msgpack_pack_fix_int32(&f.pk, 0);
	pstr(&f, "ready");
	msgpack_pack_fix_uint64(&f.pk, 5);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_OK);
}

TEST(decode_refuses_truncated_and_trailing)
{
	struct fr f;
	struct perr e;
	spawn_req(&f);
	for (size_t n = 0; n < f.sb.size; n++)
		CHECK_EQ(dec_bytes(f.sb.data, n, &e, NULL), PE_MALFORMED);
	msgpack_pack_nil(&f.pk); /* one byte too many */
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	spawn_req(&f);
	msgpack_pack_map(&f.pk, 0); /* a second object */
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	CHECK_EQ(dec_bytes(NULL, 0, &e, NULL), PE_MALFORMED);
}

TEST(decode_refuses_wrong_arity)
{
	struct fr f;
	struct perr e;
	env(&f, 5, PROTO_VERSION, PK_REQUEST, "ready", 1);
	msgpack_pack_map(&f.pk, 0);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 7, PROTO_VERSION, PK_REQUEST, "ready", 1);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	CHECK_CONTAINS(e.msg, "7 elements");
	fr_init(&f); /* not an array at all */
	msgpack_pack_map(&f.pk, 0);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	fr_init(&f);
	msgpack_pack_array(&f.pk, 0);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
}

TEST(decode_refuses_bad_envelope_fields)
{
	struct fr f;
	struct perr e;
	env(&f, 6, PROTO_VERSION, 3, "ready", 1); /* kind */
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "ready", (uint64_t)UINT32_MAX + 1); /* id */
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	fr_init(&f); /* op not a str */
	msgpack_pack_array(&f.pk, 6);
	msgpack_pack_uint8(&f.pk, PROTO_VERSION);
	msgpack_pack_uint8(&f.pk, PK_REQUEST);
	msgpack_pack_uint8(&f.pk, 1);
	msgpack_pack_uint8(&f.pk, 1);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	fr_init(&f); /* version negative */
	msgpack_pack_array(&f.pk, 6);
	msgpack_pack_int8(&f.pk, -1);
	msgpack_pack_uint8(&f.pk, PK_REQUEST);
	pstr(&f, "ready");
	msgpack_pack_uint8(&f.pk, 1);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	CHECK_CONTAINS(e.msg, "version");
}

TEST(decode_refuses_bad_body_shape)
{
	struct fr f;
	struct perr e;
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1); /* body an array */
	msgpack_pack_array(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1); /* body an int */
	msgpack_pack_uint8(&f.pk, 1);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "ready", 1); /* request with nil body */
	msgpack_pack_nil(&f.pk);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "ready", 1); /* request with an error */
	msgpack_pack_nil(&f.pk);
	msgpack_pack_array(&f.pk, 2);
	msgpack_pack_uint8(&f.pk, PE_DENIED);
	pstr(&f, "x");
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ready", 1); /* reply with body and error */
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_array(&f.pk, 2);
	msgpack_pack_uint8(&f.pk, PE_DENIED);
	pstr(&f, "x");
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ready", 1); /* error code 0 */
	msgpack_pack_nil(&f.pk);
	msgpack_pack_array(&f.pk, 2);
	msgpack_pack_uint8(&f.pk, PE_OK);
	pstr(&f, "x");
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ready", 1); /* error of 3 elements */
	msgpack_pack_nil(&f.pk);
	msgpack_pack_array(&f.pk, 3);
	msgpack_pack_uint8(&f.pk, PE_DENIED);
	pstr(&f, "x");
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_MALFORMED);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ready", 1); /* error message with a control char */
	msgpack_pack_nil(&f.pk);
	msgpack_pack_array(&f.pk, 2);
	msgpack_pack_uint8(&f.pk, PE_DENIED);
	pstr(&f, "\x1b]0;pwned\x07");
	CHECK_EQ(dec(&f, &e), PE_INVALID);
}

/* spawn request whose body map is { key: value } with value packed by fn */
static int dec_spawn_field(const char *key, void (*fn)(struct fr *), struct perr *e)
{
	struct fr f;
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, key);
	fn(&f);
	msgpack_pack_nil(&f.pk);
	return dec(&f, e);
}

static void v_int(struct fr *f)
{
	msgpack_pack_uint8(&f->pk, 5);
}
static void v_nul(struct fr *f)
{
	msgpack_pack_str(&f->pk, 5);
	msgpack_pack_str_body(&f->pk, "ne\0td", 5);
}
static void v_bin(struct fr *f)
{
	msgpack_pack_bin(&f->pk, 4);
	msgpack_pack_bin_body(&f->pk, "netd", 4);
}
static void v_long(struct fr *f)
{
	pstr(f, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn");
}
static void v_dots(struct fr *f)
{
	pstr(f, "..");
}
static void v_nil(struct fr *f)
{
	msgpack_pack_nil(&f->pk);
}

TEST(decode_refuses_bad_fields)
{
	struct fr f;
	struct perr e;
	CHECK_EQ(dec_spawn_field("helper", v_int, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "field 'helper': not of type str");
	CHECK_EQ(dec_spawn_field("helper", v_bin, &e), PE_INVALID); /* bin is not str */
	CHECK_EQ(dec_spawn_field("helper", v_nil, &e), PE_INVALID);
	CHECK_EQ(dec_spawn_field("helper", v_nul, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "NUL");
	CHECK_EQ(dec_spawn_field("helper", v_long, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'helper': length 40 > 16");
	CHECK_EQ(dec_spawn_field("helper", v_dots, &e), PE_INVALID);
	CHECK_EQ(dec_spawn_field("bogus\x1b", v_dots, &e), PE_INVALID); /* unknown field */
	CHECK_STR(e.msg, "field 'bogus?': unknown");

	/* unknown field besides a valid one */
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1);
	msgpack_pack_map(&f.pk, 2);
	pstr(&f, "helper");
	pstr(&f, "netd");
	pstr(&f, "extra");
	msgpack_pack_true(&f.pk);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "'extra'");
	/* duplicate key */
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1);
	msgpack_pack_map(&f.pk, 2);
	pstr(&f, "helper");
	pstr(&f, "netd");
	pstr(&f, "helper");
	pstr(&f, "stored");
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "duplicate");
	/* non-str key */
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1);
	msgpack_pack_map(&f.pk, 1);
	msgpack_pack_uint8(&f.pk, 1);
	pstr(&f, "netd");
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	/* missing required */
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 1);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'helper': missing");
	/* a reply field as a uint given as a str, and a negative int */
	env(&f, 6, PROTO_VERSION, PK_REPLY, "spawn", 1);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "pid");
	pstr(&f, "12");
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "spawn", 1);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "pid");
	msgpack_pack_int8(&f.pk, -3);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	env(&f, 6, PROTO_VERSION, PK_REPLY, "spawn", 1); /* float */
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "pid");
	msgpack_pack_double(&f.pk, 3.0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
}

TEST(decode_refuses_invalid_utf8_text)
{
	const char *bad[] = {"\xff", "a\xc3", "\xc0\x80", "\xed\xb0\x80", "tab ok\t but nl\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fr f;
		struct perr e;
		env(&f, 6, PROTO_VERSION, PK_REQUEST, "shutdown", 1);
		msgpack_pack_map(&f.pk, 1);
		pstr(&f, "reason");
		pstr(&f, bad[i]);
		msgpack_pack_nil(&f.pk);
		CHECK_EQ(dec(&f, &e), PE_INVALID);
		CHECK_CONTAINS(e.msg, "field 'reason': not printable UTF-8 text");
	}
}

/* ping reply with a "caps" list of n strings (the schema allows 64, the hard limit is 256) */
static int dec_caps(unsigned n, const char *elem, struct perr *e)
{
	struct fr f;
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ping", 1);
	msgpack_pack_map(&f.pk, 7);
	pstr(&f, "name");
	pstr(&f, "netd");
	pstr(&f, "pid");
	msgpack_pack_uint8(&f.pk, 1);
	pstr(&f, "uid");
	msgpack_pack_uint8(&f.pk, 1);
	pstr(&f, "gid");
	msgpack_pack_uint8(&f.pk, 1);
	pstr(&f, "capeff");
	msgpack_pack_uint8(&f.pk, 0);
	pstr(&f, "caps");
	msgpack_pack_array(&f.pk, n);
	for (unsigned i = 0; i < n; i++)
		pstr(&f, elem);
	pstr(&f, "seccomp");
	msgpack_pack_uint8(&f.pk, 2);
	msgpack_pack_nil(&f.pk);
	return dec(&f, e);
}

TEST(decode_list_limits)
{
	struct perr e;
	/* the other required fields are missing: the list checks come first in field order */
	CHECK_EQ(dec_caps(64, "cap_x", &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "'no_new_privs': missing");
	CHECK_EQ(dec_caps(65, "cap_x", &e), PE_INVALID);
	CHECK_STR(e.msg, "field 'caps': 65 elements > 64");
	CHECK_EQ(dec_caps(257, "c", &e), PE_MALFORMED); /* hard limit: prescan */
	CHECK_EQ(dec_caps(2, "cap/x", &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "field 'caps': element 0");
}

TEST(decode_refuses_nul_in_list_element)
{
	struct fr f;
	struct perr e;
	env(&f, 6, PROTO_VERSION, PK_REPLY, "ping", 1);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "caps");
	msgpack_pack_array(&f.pk, 1);
	msgpack_pack_str(&f.pk, 3);
	msgpack_pack_str_body(&f.pk, "a\0b", 3);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec(&f, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "NUL");
}

TEST(decode_nested_record_errors)
{
	struct fr f;
	struct perr e;
	/* status reply whose processes[0] is not a map, then has an unknown field */
	for (int variant = 0; variant < 2; variant++) {
		env(&f, 6, PROTO_VERSION, PK_REPLY, "status", 1);
		msgpack_pack_map(&f.pk, 1);
		pstr(&f, "processes");
		msgpack_pack_array(&f.pk, 1);
		if (variant == 0) {
			pstr(&f, "x");
		} else {
			msgpack_pack_map(&f.pk, 1);
			pstr(&f, "evil");
			msgpack_pack_nil(&f.pk);
		}
		msgpack_pack_nil(&f.pk);
		CHECK_EQ(dec(&f, &e), PE_INVALID);
		CHECK_STR(e.msg, variant == 0 ? "field 'processes': element 0 is not a map"
					      : "field 'processes[0].evil': unknown");
	}
}

/* ---- hard limits (prescan) ---- */

TEST(decode_refuses_depth_bomb)
{
	unsigned char b[101];
	struct perr e;
	memset(b, 0x91, 100); /* fixarray of 1, 100 deep */
	b[100] = 0xc0;
	CHECK_EQ(proto_prescan(b, sizeof(b)), -1);
	CHECK_EQ(dec_bytes(b, sizeof(b), &e, NULL), PE_MALFORMED);
	/* exactly PROTO_MAX_DEPTH passes the prescan, one more does not */
	CHECK_EQ(proto_prescan(b + 100 - PROTO_MAX_DEPTH, PROTO_MAX_DEPTH + 1), 0);
	CHECK_EQ(proto_prescan(b + 100 - PROTO_MAX_DEPTH - 1, PROTO_MAX_DEPTH + 2), -1);
	/* maps count too: {k: {k: ...}} */
	unsigned char m[3 * 8 + 1];
	for (int i = 0; i < 8; i++) {
		m[3 * i] = 0x81;
		m[3 * i + 1] = 0xa1;
		m[3 * i + 2] = 'k';
	}
	m[24] = 0xc0;
	CHECK_EQ(proto_prescan(m, sizeof(m)), -1);
	CHECK_EQ(proto_prescan(m + 3 * (8 - PROTO_MAX_DEPTH), 3 * PROTO_MAX_DEPTH + 1), 0);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

TEST(decode_refuses_huge_counts_quickly)
{
	struct perr e;
	/* array32 claiming 2^31 elements in a 20-byte frame: msgpack-c would allocate 48 GiB */
	unsigned char a[20] = {0xdd, 0x80, 0x00, 0x00, 0x00};
	memset(a + 5, 0xc0, sizeof(a) - 5);
	double t0 = now_ms();
	CHECK_EQ(proto_prescan(a, sizeof(a)), -1);
	CHECK_EQ(dec_bytes(a, sizeof(a), &e, NULL), PE_MALFORMED);
	CHECK(now_ms() - t0 < 100);
	/* map32 likewise, and nested under a valid-looking envelope */
	unsigned char b[12] = {0x96, 0x01, 0x00, 0xa1, 'x', 0x00, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0};
	CHECK_EQ(dec_bytes(b, sizeof(b), &e, NULL), PE_MALFORMED);
	/* map16 with a count under the array limit but larger than the buffer */
	unsigned char c[8] = {0xde, 0x00, 0x64, 0xa1, 'k', 0xc0, 0xa1, 'l'};
	CHECK_EQ(proto_prescan(c, sizeof(c)), -1);
	CHECK_EQ(dec_bytes(c, sizeof(c), &e, NULL), PE_MALFORMED);
	unsigned char c2[3] = {0xde, 0xff, 0xff};
	CHECK_EQ(dec_bytes(c2, sizeof(c2), &e, NULL), PE_MALFORMED);
	/* array16 of 257 (over PROTO_MAX_ARRAY) even when the bytes are there */
	unsigned char d[3 + 257];
	d[0] = 0xdc;
	d[1] = 0x01;
	d[2] = 0x01;
	memset(d + 3, 0xc0, 257);
	CHECK_EQ(proto_prescan(d, sizeof(d)), -1);
	d[2] = 0x00; /* 256: fine */
	CHECK_EQ(proto_prescan(d, sizeof(d) - 1), 0);
}

TEST(decode_refuses_long_str_headers)
{
	struct perr e;
	/* str32 announcing more than the buffer holds (within PROTO_MAX_STR) */
	unsigned char a[10] = {0xdb, 0x00, 0x00, 0x10, 0x00, 'a', 'b', 'c', 'd', 'e'};
	CHECK_EQ(proto_prescan(a, sizeof(a)), -1);
	CHECK_EQ(dec_bytes(a, sizeof(a), &e, NULL), PE_MALFORMED);
	/* str32 of 4 GiB */
	unsigned char b[10] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
	CHECK_EQ(dec_bytes(b, sizeof(b), &e, NULL), PE_MALFORMED);
	/* bin32 / ext32 likewise */
	unsigned char c[6] = {0xc6, 0x00, 0x00, 0x00, 0x02, 'a'};
	CHECK_EQ(proto_prescan(c, sizeof(c)), -1);
	unsigned char x[7] = {0xc9, 0x00, 0x00, 0x00, 0x02, 0x01, 'a'};
	CHECK_EQ(proto_prescan(x, sizeof(x)), -1);
	unsigned char x2[8] = {0xc9, 0x00, 0x00, 0x00, 0x02, 0x01, 'a', 'b'};
	CHECK_EQ(proto_prescan(x2, sizeof(x2)), 0);
	/* a string of PROTO_MAX_STR + 1 bytes, present in full */
	static unsigned char s[5 + PROTO_MAX_STR + 1];
	s[0] = 0xdb;
	s[3] = (PROTO_MAX_STR + 1) >> 8;
	s[4] = (PROTO_MAX_STR + 1) & 0xff;
	CHECK_EQ(proto_prescan(s, sizeof(s)), -1);
	s[4] = PROTO_MAX_STR & 0xff;
	CHECK_EQ(proto_prescan(s, sizeof(s) - 1), 0);
}

TEST(prescan_formats)
{
	/* every fixed-size type, one of each, in one array */
	static const unsigned char ok[] = {
	    0xdc, 0x00, 0x10, /* array16 of 16 */
	    0x00, 0xff, 0xc0, 0xc2, 0xc3, 0xca, 1,  2,	3,  4,	0xcb, 1,    2,	3,    4,    5,	6, 7, 8,
	    0xcc, 1,	0xcd, 1,    2,	  0xce, 1,  2,	3,  4,	0xcf, 1,    2,	3,    4,    5,	6, 7, 8,
	    0xd0, 1,	0xd3, 1,    2,	  3,	4,  5,	6,  7,	8,    0xd4, 1,	1,    0xd8, 1,	1, 2, 3,
	    4,	  5,	6,    7,    8,	  9,	10, 11, 12, 13, 14,   15,   16, 0xc4, 1,    'x'};
	CHECK_EQ(proto_prescan(ok, sizeof(ok)), 0);
	CHECK_EQ(proto_prescan(ok, sizeof(ok) - 1), -1);
	static const unsigned char never[] = {0xc1};
	CHECK_EQ(proto_prescan(never, 1), -1);
	static const unsigned char trunc_int[] = {0xcf, 1, 2};
	CHECK_EQ(proto_prescan(trunc_int, sizeof(trunc_int)), -1);
	static const unsigned char two[] = {0xc0, 0xc0};
	CHECK_EQ(proto_prescan(two, 2), -1);
	CHECK_EQ(proto_prescan(two, 1), 0);
	CHECK_EQ(proto_prescan(two, 0), -1);
	static unsigned char big[PROTO_MAX_FRAME + 1];
	CHECK_EQ(proto_prescan(big, sizeof(big)), -1);
}

TEST(decode_version_mismatch_keeps_id)
{
	struct fr f;
	struct perr e;
	struct pmsg m;
	env(&f, 6, PROTO_VERSION + 1, PK_REQUEST, "ping", 77);
	msgpack_pack_map(&f.pk, 0);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec_bytes(f.sb.data, f.sb.size, &e, &m), PE_VERSION);
	CHECK_EQ(m.id, 77);
	CHECK_EQ(m.kind, PK_REQUEST);
	CHECK(m.op == proto_op(OP_PING));
	pmsg_free(&m);
	msgpack_sbuffer_destroy(&f.sb);
	/* a future version may have another arity: still PE_VERSION */
	env(&f, 8, 2, PK_REQUEST, "ping", 78);
	for (int i = 0; i < 4; i++)
		msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec_bytes(f.sb.data, f.sb.size, &e, &m), PE_VERSION);
	CHECK_EQ(m.id, 78);
	pmsg_free(&m);
	msgpack_sbuffer_destroy(&f.sb);
}

TEST(decode_unknown_op_keeps_id)
{
	struct fr f;
	struct perr e;
	struct pmsg m;
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "frobnicate", 99);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "anything");
	msgpack_pack_true(&f.pk);
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec_bytes(f.sb.data, f.sb.size, &e, &m), PE_UNKNOWN_OP);
	CHECK_EQ(m.id, 99);
	CHECK_EQ(m.kind, PK_REQUEST);
	CHECK(m.op == NULL);
	CHECK_CONTAINS(e.msg, "frobnicate");
	/* the refusal can be answered */
	struct pmsg rep;
	size_t len;
	pmsg_init(&rep, PK_REPLY, OP_PING, m.id);
	pmsg_set_error(&rep, e.code, "%s", e.msg);
	CHECK_EQ(pmsg_encode(&rep, frame, sizeof(frame), &len, &e), PE_OK);
	pmsg_free(&rep);
	pmsg_free(&m);
	msgpack_sbuffer_destroy(&f.sb);
}

TEST(decode_invalid_body_keeps_op_and_id)
{
	struct fr f;
	struct perr e;
	struct pmsg m;
	env(&f, 6, PROTO_VERSION, PK_REQUEST, "spawn", 31);
	msgpack_pack_map(&f.pk, 1);
	pstr(&f, "helper");
	pstr(&f, "../etc");
	msgpack_pack_nil(&f.pk);
	CHECK_EQ(dec_bytes(f.sb.data, f.sb.size, &e, &m), PE_INVALID);
	CHECK_EQ(m.id, 31);
	CHECK(m.op == proto_op(OP_SPAWN));
	CHECK(prec_str(&m.body, "helper") == NULL);
	pmsg_free(&m);
	msgpack_sbuffer_destroy(&f.sb);
}

/* ---- messages: fds, arena ---- */

TEST(fds_owned_taken_and_closed)
{
	struct pmsg m;
	int p[2];
	CHECK(pipe(p) == 0);
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1);
	CHECK_EQ(pmsg_add_fd(&m, p[0]), 0);
	CHECK_EQ(pmsg_add_fd(&m, p[1]), 0);
	for (int i = 2; i < PROTO_MAX_FDS; i++)
		CHECK_EQ(pmsg_add_fd(&m, dup(p[0])), 0);
	CHECK_EQ(pmsg_add_fd(&m, 0), -1); /* full */
	CHECK_EQ(pmsg_add_fd(&m, -1), -1);
	CHECK_EQ(pmsg_take_fd(&m, 1), p[1]);
	CHECK_EQ(pmsg_take_fd(&m, 1), -1); /* already taken */
	CHECK_EQ(pmsg_take_fd(&m, PROTO_MAX_FDS), -1);
	pmsg_free(&m);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(p[1], F_GETFD) >= 0);
	pmsg_free(&m); /* twice is harmless */
	CHECK(fcntl(p[1], F_GETFD) >= 0);
	close(p[1]);
}

TEST(attach_fds_checks_count_and_kind)
{
	struct pmsg m;
	struct perr e;
	int p[2];
	CHECK(pipe(p) == 0);
	pmsg_init(&m, PK_REQUEST, OP_PING, 1); /* declares none */
	int fds[1] = {p[0]};
	CHECK_EQ(proto_attach_fds(&m, fds, 1, &e), PE_INVALID);
	CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
	CHECK_EQ(proto_attach_fds(&m, NULL, 0, &e), PE_OK);
	pmsg_free(&m);
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1); /* declares one seqpacket */
	fds[0] = p[1];
	CHECK_EQ(proto_attach_fds(&m, fds, 1, &e), PE_INVALID);
	CHECK_CONTAINS(e.msg, "seqpacket");
	CHECK(fcntl(p[1], F_GETFD) < 0 && errno == EBADF);
	pmsg_free(&m);
}

TEST(arena_is_bounded)
{
	struct pmsg m;
	char s[4001];
	int i;
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	pmsg_init(&m, PK_REQUEST, OP_SHUTDOWN, 1);
	for (i = 0; i < 1000; i++)
		if (prec_set_str(&m, &m.body, "reason", s) < 0)
			break;
	CHECK(i >= 32 && i <= 4 * PROTO_MAX_FRAME / 4000);
	/* still usable: an error reply falls back to a static message */
	pmsg_set_error(&m, PE_INTERNAL, "%s", s);
	CHECK(m.err_msg != NULL);
	pmsg_free(&m);
}
