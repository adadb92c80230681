/* Encoding and decoding of the envelope, driven by the schema (proto/ops.c).
 *
 * Both directions go through one validator, check_msg(), on the same representation (struct
 * pmsg and its precord tree): encode validates before writing a byte; decode first converts
 * msgpack objects into a precord tree (refusing only what the tree cannot represent: wrong
 * types, unknown or duplicate keys) and then runs the same validator. */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

_Static_assert(PROTO_MAX_FIELDS <= 32, "precord.present is a 32-bit mask");

/* ---- error reports ---- */

__attribute__((format(printf, 3, 4))) static int fail(struct perr *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->code = code;
	return code;
}

/* Peer-supplied bytes for an error message: printable ASCII only, at most 32 bytes. */
static const char *safe(char out[40], const char *p, size_t n)
{
	size_t i, k = n > 32 ? 32 : n;

	for (i = 0; i < k; i++)
		out[i] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'') ? p[i] : '?';
	if (n > k)
		for (int d = 0; d < 3; d++)
			out[i++] = '.';
	out[i] = '\0';
	return out;
}

/* ---- string classes ---- */

/* Length of the well-formed UTF-8 sequence at p (no overlongs, surrogates or > U+10FFFF), or
 * 0. Sets *cp to the code point. */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (p[i] & 0x3f);
	}
	return len;
}

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool proto_str_ok(const char *s, size_t n, enum str_class cls)
{
	const unsigned char *p = (const unsigned char *)s;

	if (n && !p)
		return false;
	switch (cls) {
	case SC_IDENT:
		if (n == 0 || !is_alnum(p[0]))
			return false;
		for (size_t i = 1; i < n; i++)
			if (!is_alnum(p[i]) && p[i] != '_' && p[i] != '.' && p[i] != '-')
				return false;
		/* "." and ".." already fail the first-character rule; kept explicit for paths. */
		return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
	case SC_TEXT:
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			size_t k = utf8_seq(p + i, n - i, &cp);
			/* C0 controls but \t, DEL, and the C1 controls (U+0080..U+009F) */
			if (k == 0 || (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f))
				return false;
			i += k;
		}
		return true;
	case SC_ANY:
		return n == 0 || memchr(p, 0, n) == NULL;
	}
	return false;
}

/* ---- the validator ---- */

static const char *type_name(enum field_type t)
{
	switch (t) {
	case FT_STR:
		return "str";
	case FT_BIN:
		return "bin";
	case FT_UINT:
		return "uint";
	case FT_INT:
		return "int";
	case FT_BOOL:
		return "bool";
	case FT_STRLIST:
		return "array of str";
	case FT_RECORDS:
		return "array of maps";
	}
	return "?";
}

static const char *class_why(enum str_class cls)
{
	switch (cls) {
	case SC_IDENT:
		return "not a name ([A-Za-z0-9][A-Za-z0-9_.-]*, not . or ..)";
	case SC_TEXT:
		return "not printable UTF-8 text";
	case SC_ANY:
		return "contains a NUL byte";
	}
	return "bad string";
}

static int check_str(const char *p, uint32_t n, uint64_t min, uint64_t max, enum str_class cls, const char *what,
		     struct perr *e)
{
	if (!p)
		return fail(e, PE_INVALID, "%s: no value", what);
	if (n > max || n > PROTO_MAX_STR)
		return fail(e, PE_INVALID, "%s: length %u > %llu", what, n,
			    (unsigned long long)(max < PROTO_MAX_STR ? max : PROTO_MAX_STR));
	if (n < min)
		return fail(e, PE_INVALID, "%s: length %u < %llu", what, n, (unsigned long long)min);
	if (memchr(p, 0, n))
		return fail(e, PE_INVALID, "%s: contains a NUL byte", what);
	if (!proto_str_ok(p, n, cls))
		return fail(e, PE_INVALID, "%s: %s", what, class_why(cls));
	return PE_OK;
}

static int check_count(uint32_t n, const struct field_def *f, const char *what, struct perr *e)
{
	if (n > f->max || n > PROTO_MAX_ARRAY)
		return fail(e, PE_INVALID, "%s: %u elements > %llu", what, n,
			    (unsigned long long)(f->max < PROTO_MAX_ARRAY ? f->max : PROTO_MAX_ARRAY));
	if (n < f->min)
		return fail(e, PE_INVALID, "%s: %u elements < %llu", what, n, (unsigned long long)f->min);
	return PE_OK;
}

static int check_record(const struct precord *r, const struct record_def *def, unsigned depth, const char *prefix,
			struct perr *e);

/* One present field. `depth` is the depth of the map holding it. */
static int check_field(const struct field_def *f, const struct pval *v, unsigned depth, const char *prefix,
		       struct perr *e)
{
	char what[160];
	int rc;

	snprintf(what, sizeof(what), "field '%s%s'", prefix, f->name);
	switch (f->type) {
	case FT_STR:
		return check_str(v->s.p, v->s.n, f->min, f->max, f->cls, what, e);
	case FT_BIN:
		if (!v->s.p && v->s.n)
			return fail(e, PE_INVALID, "%s: no value", what);
		if (v->s.n > f->max || v->s.n > PROTO_MAX_STR)
			return fail(e, PE_INVALID, "%s: length %u > %llu", what, v->s.n,
				    (unsigned long long)(f->max < PROTO_MAX_STR ? f->max : PROTO_MAX_STR));
		if (v->s.n < f->min)
			return fail(e, PE_INVALID, "%s: length %u < %llu", what, v->s.n, (unsigned long long)f->min);
		return PE_OK;
	case FT_UINT:
		if (v->u < f->min || v->u > f->max)
			return fail(e, PE_INVALID, "%s: value %llu not in [%llu, %llu]", what, (unsigned long long)v->u,
				    (unsigned long long)f->min, (unsigned long long)f->max);
		return PE_OK;
	case FT_INT:
		if (v->i < (int64_t)f->min || v->i > (int64_t)f->max)
			return fail(e, PE_INVALID, "%s: value %lld not in [%lld, %lld]", what, (long long)v->i,
				    (long long)(int64_t)f->min, (long long)(int64_t)f->max);
		return PE_OK;
	case FT_BOOL:
		return PE_OK;
	case FT_STRLIST:
		if (depth + 1 > PROTO_MAX_DEPTH)
			return fail(e, PE_INVALID, "%s: nested too deep", what);
		if ((rc = check_count(v->list.n, f, what, e)) != PE_OK)
			return rc;
		for (uint32_t k = 0; k < v->list.n; k++) {
			const char *s = v->list.v ? v->list.v[k] : NULL;
			size_t n = s ? strlen(s) : 0;
			char elem[200];
			snprintf(elem, sizeof(elem), "%s: element %u", what, k);
			if (n > UINT32_MAX)
				return fail(e, PE_INVALID, "%s: too long", elem);
			if ((rc = check_str(s, (uint32_t)n, 0, f->elem_max, f->cls, elem, e)) != PE_OK)
				return rc;
		}
		return PE_OK;
	case FT_RECORDS:
		if (depth + 2 > PROTO_MAX_DEPTH)
			return fail(e, PE_INVALID, "%s: nested too deep", what);
		if ((rc = check_count(v->recs.n, f, what, e)) != PE_OK)
			return rc;
		for (uint32_t k = 0; k < v->recs.n; k++) {
			char sub[96];
			snprintf(sub, sizeof(sub), "%s%s[%u].", prefix, f->name, k);
			if ((rc = check_record(&v->recs.v[k], f->rec, depth + 2, sub, e)) != PE_OK)
				return rc;
		}
		return PE_OK;
	}
	return fail(e, PE_INVALID, "%s: unknown field type", what);
}

static int check_record(const struct precord *r, const struct record_def *def, unsigned depth, const char *prefix,
			struct perr *e)
{
	int rc;

	if (!def || r->def != def)
		return fail(e, PE_INVALID, "record '%s': not of the op's schema", prefix);
	if (depth > PROTO_MAX_DEPTH)
		return fail(e, PE_INVALID, "record '%s': nested too deep", prefix);
	if (def->nfields > PROTO_MAX_FIELDS)
		return fail(e, PE_INVALID, "record '%s': schema has too many fields", prefix);
	uint32_t known = def->nfields == 32 ? ~0u : (1u << def->nfields) - 1;
	if (r->present & ~known)
		return fail(e, PE_INVALID, "record '%s': unknown field set", prefix);
	for (size_t i = 0; i < def->nfields; i++) {
		const struct field_def *f = &def->fields[i];
		if (!(r->present & (1u << i))) {
			if (f->required)
				return fail(e, PE_INVALID, "field '%s%s': missing", prefix, f->name);
			continue;
		}
		if ((rc = check_field(f, &r->v[i], depth, prefix, e)) != PE_OK)
			return rc;
	}
	return PE_OK;
}

/* The whole message: envelope fields, then the body or the error. */
static int check_msg(const struct pmsg *m, struct perr *e)
{
	if (m->kind > PK_EVENT)
		return fail(e, PE_INVALID, "message kind %u unknown", m->kind);
	if (!m->op)
		return fail(e, PE_INVALID, "message has no operation");
	if (m->err_code != PE_OK) {
		if (m->kind != PK_REPLY)
			return fail(e, PE_INVALID, "only replies carry an error");
		if (m->err_code < 0)
			return fail(e, PE_INVALID, "error code %d out of range", (int)m->err_code);
		if (m->body.present)
			return fail(e, PE_INVALID, "error reply with a body");
		size_t n = m->err_msg ? strlen(m->err_msg) : 0;
		return check_str(m->err_msg, (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n), 0, PROTO_MAX_STR, SC_TEXT,
				 "error message", e);
	}
	return check_record(&m->body, m->kind == PK_REPLY ? &m->op->rep : &m->op->req, 2, "", e);
}

/* ---- encoding: msgpack-c packer writing into the caller's buffer ---- */

struct wbuf {
	unsigned char *p;
	size_t cap, len;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
	struct wbuf *w = data;

	if (len > w->cap - w->len)
		return -1;
	if (len)
		memcpy(w->p + w->len, buf, len);
	w->len += len;
	return 0;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_record(msgpack_packer *pk, const struct precord *r)
{
	const struct record_def *def = r->def;
	size_t n = 0;

	for (size_t i = 0; i < def->nfields; i++)
		n += !!(r->present & (1u << i));
	if (msgpack_pack_map(pk, n))
		return -1;
	for (size_t i = 0; i < def->nfields; i++) {
		const struct field_def *f = &def->fields[i];
		const struct pval *v = &r->v[i];
		int rc = 0;
		if (!(r->present & (1u << i)))
			continue;
		if (pack_str(pk, f->name, strlen(f->name)))
			return -1;
		switch (f->type) {
		case FT_STR:
			rc = pack_str(pk, v->s.p, v->s.n);
			break;
		case FT_BIN:
			rc = msgpack_pack_bin(pk, v->s.n) || msgpack_pack_bin_body(pk, v->s.p, v->s.n);
			break;
		case FT_UINT:
			rc = msgpack_pack_uint64(pk, v->u);
			break;
		case FT_INT:
			rc = msgpack_pack_int64(pk, v->i);
			break;
		case FT_BOOL:
			rc = v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
			break;
		case FT_STRLIST:
			rc = msgpack_pack_array(pk, v->list.n);
			for (uint32_t k = 0; !rc && k < v->list.n; k++)
				rc = pack_str(pk, v->list.v[k], strlen(v->list.v[k]));
			break;
		case FT_RECORDS:
			rc = msgpack_pack_array(pk, v->recs.n);
			for (uint32_t k = 0; !rc && k < v->recs.n; k++)
				rc = pack_record(pk, &v->recs.v[k]);
			break;
		}
		if (rc)
			return -1;
	}
	return 0;
}

int pmsg_encode(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e)
{
	struct perr local;
	struct wbuf w = {.p = buf, .cap = cap < PROTO_MAX_FRAME ? cap : PROTO_MAX_FRAME};
	msgpack_packer pk;
	int rc;

	if (!e)
		e = &local;
	e->code = PE_OK;
	e->msg[0] = '\0';
	if ((rc = check_msg(m, e)) != PE_OK)
		return rc;
	if (!buf)
		w.cap = 0;
	msgpack_packer_init(&pk, &w, wbuf_write);
	rc = msgpack_pack_array(&pk, 6) || msgpack_pack_uint32(&pk, PROTO_VERSION) ||
	     msgpack_pack_uint8(&pk, m->kind) || pack_str(&pk, m->op->name, strlen(m->op->name)) ||
	     msgpack_pack_uint32(&pk, m->id);
	if (!rc && m->err_code == PE_OK)
		rc = pack_record(&pk, &m->body) || msgpack_pack_nil(&pk);
	else if (!rc)
		rc = msgpack_pack_nil(&pk) || msgpack_pack_array(&pk, 2) ||
		     msgpack_pack_uint32(&pk, (uint32_t)m->err_code) || pack_str(&pk, m->err_msg, strlen(m->err_msg));
	if (rc)
		return fail(e, PE_NO_SPACE, "'%s' does not fit in %zu bytes", m->op->name, w.cap);
	if (len)
		*len = w.len;
	return PE_OK;
}

/* ---- decoding: msgpack objects -> precord tree ---- */

static int too_big(struct perr *e)
{
	return fail(e, PE_INVALID, "message too large to decode");
}

static char *copy_str(struct pmsg *m, const char *p, size_t n)
{
	char *d = parena_alloc(&m->arena, n + 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static int conv_record(struct pmsg *m, const msgpack_object *o, struct precord *r, const struct record_def *def,
		       const char *prefix, struct perr *e);

static int conv_value(struct pmsg *m, const msgpack_object *o, const struct field_def *f, struct pval *v,
		      const char *prefix, struct perr *e)
{
	static const msgpack_object_type want[] = {
	    [FT_STR] = MSGPACK_OBJECT_STR,
	    [FT_BIN] = MSGPACK_OBJECT_BIN,
	    [FT_UINT] = MSGPACK_OBJECT_POSITIVE_INTEGER,
	    [FT_INT] = MSGPACK_OBJECT_NEGATIVE_INTEGER,
	    [FT_BOOL] = MSGPACK_OBJECT_BOOLEAN,
	    [FT_STRLIST] = MSGPACK_OBJECT_ARRAY,
	    [FT_RECORDS] = MSGPACK_OBJECT_ARRAY,
	};
	bool int_ok = f->type == FT_INT && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;

	if ((unsigned)f->type >= sizeof(want) / sizeof(want[0]))
		return fail(e, PE_INVALID, "field '%s%s': unknown field type", prefix, f->name);
	if (o->type != want[f->type] && !int_ok)
		return fail(e, PE_INVALID, "field '%s%s': not of type %s", prefix, f->name, type_name(f->type));
	switch (f->type) {
	case FT_STR:
	case FT_BIN: {
		const char *p = f->type == FT_STR ? o->via.str.ptr : o->via.bin.ptr;
		uint32_t n = f->type == FT_STR ? o->via.str.size : o->via.bin.size;
		if (!(v->s.p = copy_str(m, p, n)))
			return too_big(e);
		v->s.n = n;
		return PE_OK;
	}
	case FT_UINT:
		v->u = o->via.u64;
		return PE_OK;
	case FT_INT:
		if (int_ok && o->via.u64 > INT64_MAX)
			return fail(e, PE_INVALID, "field '%s%s': value out of range", prefix, f->name);
		v->i = int_ok ? (int64_t)o->via.u64 : o->via.i64;
		return PE_OK;
	case FT_BOOL:
		v->b = o->via.boolean;
		return PE_OK;
	case FT_STRLIST: {
		uint32_t n = o->via.array.size;
		v->list.v = parena_alloc(&m->arena, proto_list_cap(f, n) * sizeof(char *));
		if (!v->list.v)
			return too_big(e);
		for (uint32_t k = 0; k < n; k++) {
			const msgpack_object *s = &o->via.array.ptr[k];
			if (s->type != MSGPACK_OBJECT_STR)
				return fail(e, PE_INVALID, "field '%s%s': element %u is not a str", prefix, f->name, k);
			/* the list holds C strings: a NUL inside one cannot be represented */
			if (s->via.str.size && memchr(s->via.str.ptr, 0, s->via.str.size))
				return fail(e, PE_INVALID, "field '%s%s': element %u: contains a NUL byte", prefix,
					    f->name, k);
			if (!(v->list.v[k] = copy_str(m, s->via.str.ptr, s->via.str.size)))
				return too_big(e);
			v->list.n = k + 1;
		}
		return PE_OK;
	}
	case FT_RECORDS: {
		uint32_t n = o->via.array.size;
		v->recs.v = parena_alloc(&m->arena, proto_list_cap(f, n) * sizeof(struct precord));
		if (!v->recs.v)
			return too_big(e);
		for (uint32_t k = 0; k < n; k++) {
			const msgpack_object *r = &o->via.array.ptr[k];
			char sub[96];
			int rc;
			snprintf(sub, sizeof(sub), "%s%s[%u].", prefix, f->name, k);
			if (r->type != MSGPACK_OBJECT_MAP)
				return fail(e, PE_INVALID, "field '%s%s': element %u is not a map", prefix, f->name, k);
			if ((rc = conv_record(m, r, &v->recs.v[k], f->rec, sub, e)) != PE_OK)
				return rc;
			v->recs.n = k + 1;
		}
		return PE_OK;
	}
	}
	return fail(e, PE_INVALID, "field '%s%s': unknown field type", prefix, f->name);
}

static int field_by_key(const struct record_def *def, const char *p, size_t n)
{
	for (size_t i = 0; def && i < def->nfields && i < PROTO_MAX_FIELDS; i++)
		if (strlen(def->fields[i].name) == n && memcmp(def->fields[i].name, p, n) == 0)
			return (int)i;
	return -1;
}

static int conv_record(struct pmsg *m, const msgpack_object *o, struct precord *r, const struct record_def *def,
		       const char *prefix, struct perr *e)
{
	char name[40];

	r->def = def;
	r->present = 0;
	for (uint32_t k = 0; k < o->via.map.size; k++) {
		const msgpack_object *key = &o->via.map.ptr[k].key;
		int i, rc;
		if (key->type != MSGPACK_OBJECT_STR)
			return fail(e, PE_INVALID, "record '%s': map key is not a str", prefix);
		if ((i = field_by_key(def, key->via.str.ptr, key->via.str.size)) < 0)
			return fail(e, PE_INVALID, "field '%s%s': unknown", prefix,
				    safe(name, key->via.str.ptr, key->via.str.size));
		if (r->present & (1u << i))
			return fail(e, PE_INVALID, "field '%s%s': duplicate key", prefix, def->fields[i].name);
		if ((rc = conv_value(m, &o->via.map.ptr[k].val, &def->fields[i], &r->v[i], prefix, e)) != PE_OK)
			return rc;
		r->present |= 1u << i;
	}
	return PE_OK;
}

/* Envelope: [version, kind, op, id, body, error]. Fills m and returns a PE_ code. */
static int decode_envelope(struct pmsg *m, const msgpack_object *top, struct perr *e)
{
	char name[40];
	const msgpack_object *a;
	uint32_t n;

	if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size == 0)
		return fail(e, PE_MALFORMED, "envelope is not an array");
	a = top->via.array.ptr;
	n = top->via.array.size;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(e, PE_MALFORMED, "envelope: version is not a uint");

	/* Best effort first, so that even a refusal can be answered: kind, id, op. */
	if (n > 1 && a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[1].via.u64 <= PK_EVENT)
		m->kind = (uint8_t)a[1].via.u64;
	if (n > 3 && a[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[3].via.u64 <= UINT32_MAX)
		m->id = (uint32_t)a[3].via.u64;
	if (n > 2 && a[2].type == MSGPACK_OBJECT_STR)
		m->op = proto_op_by_name(a[2].via.str.ptr, a[2].via.str.size);

	if (a[0].via.u64 != PROTO_VERSION)
		return fail(e, PE_VERSION, "protocol version %llu, expected %d", (unsigned long long)a[0].via.u64,
			    PROTO_VERSION);
	if (n != 6)
		return fail(e, PE_MALFORMED, "envelope has %u elements, expected 6", n);
	if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 > PK_EVENT)
		return fail(e, PE_MALFORMED, "envelope: bad message kind");
	if (a[2].type != MSGPACK_OBJECT_STR)
		return fail(e, PE_MALFORMED, "envelope: op is not a str");
	if (a[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[3].via.u64 > UINT32_MAX)
		return fail(e, PE_MALFORMED, "envelope: id is not a uint32");

	const msgpack_object *body = &a[4], *err = &a[5];
	bool ok_shape = body->type == MSGPACK_OBJECT_MAP && err->type == MSGPACK_OBJECT_NIL;
	bool err_shape = m->kind == PK_REPLY && body->type == MSGPACK_OBJECT_NIL && err->type == MSGPACK_OBJECT_ARRAY;
	if (!ok_shape && !err_shape)
		return fail(e, PE_MALFORMED, "envelope: body/error do not fit the message kind");
	if (err_shape) {
		const msgpack_object *ea = err->via.array.ptr;
		if (err->via.array.size != 2 || ea[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    ea[0].via.u64 == PE_OK || ea[0].via.u64 > INT32_MAX || ea[1].type != MSGPACK_OBJECT_STR)
			return fail(e, PE_MALFORMED, "envelope: error is not [code, message]");
	}
	if (!m->op)
		return fail(e, PE_UNKNOWN_OP, "unknown operation '%s'",
			    safe(name, a[2].via.str.ptr, a[2].via.str.size));

	m->body.def = m->kind == PK_REPLY ? &m->op->rep : &m->op->req;
	if (err_shape) {
		const msgpack_object *msg = &err->via.array.ptr[1];
		m->err_code = (int32_t)err->via.array.ptr[0].via.u64;
		/* a NUL inside would be cut by the C string; the validator then sees a short text */
		if (msg->via.str.size && memchr(msg->via.str.ptr, 0, msg->via.str.size))
			return fail(e, PE_INVALID, "error message: contains a NUL byte");
		if (!(m->err_msg = copy_str(m, msg->via.str.ptr, msg->via.str.size)))
			return too_big(e);
		return PE_OK;
	}
	return conv_record(m, body, &m->body, m->body.def, "", e);
}

int pmsg_decode(struct pmsg *m, const void *buf, size_t len, struct perr *e)
{
	struct perr local;
	msgpack_unpacked u;
	size_t off = 0;
	int rc;

	if (!e)
		e = &local;
	e->code = PE_OK;
	e->msg[0] = '\0';
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
	if (!buf || len == 0 || len > PROTO_MAX_FRAME)
		return fail(e, PE_MALFORMED, "frame of %zu bytes (1..%d)", len, PROTO_MAX_FRAME);
	/* Hard limits on the raw bytes first: msgpack-c trusts the counts in headers. */
	if (proto_prescan(buf, len) < 0)
		return fail(e, PE_MALFORMED, "not one msgpack object within the limits");

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
		rc = fail(e, PE_MALFORMED, "not one msgpack object");
	else
		rc = decode_envelope(m, &u.data, e);
	if (rc == PE_OK)
		rc = check_msg(m, e);
	msgpack_unpacked_destroy(&u); /* nothing in m points into msgpack's zone */
	/* On refusal keep kind, id and op (so that it can be answered); drop what was refused. */
	if (rc != PE_OK) {
		m->body.present = 0;
		m->err_code = PE_OK;
		m->err_msg = NULL;
	}
	e->code = rc;
	return rc;
}

int pmsg_encode_frame(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e)
{
	struct perr local;
	int rc = pmsg_encode(m, buf, cap, len, e ? e : &local);
	if (rc == PE_NO_SPACE)
		return -EMSGSIZE;
	return rc == PE_OK ? 0 : -EINVAL;
}
