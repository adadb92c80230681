/* Messages: the bounded arena, lifecycle, field setters/getters, error replies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"

/* ---- arena: a chain of chunks, each starting with a header linking the previous one ---- */

#define ARENA_ALIGN 16
#define ARENA_MAX   (4 * (size_t)PROTO_MAX_FRAME) /* all chunks of one message together */
#define ARENA_FIRST 1024

struct chunk_hdr {
	unsigned char *prev;
	size_t total; /* bytes in this chunk and all before it */
};
#define HDR_SIZE ((sizeof(struct chunk_hdr) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

void *parena_alloc(struct parena *a, size_t n)
{
	size_t at = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (n > ARENA_MAX)
		return NULL;
	if (!a->buf || at > a->cap || n > a->cap - at) {
		size_t total = a->buf ? ((struct chunk_hdr *)(void *)a->buf)->total : 0;
		size_t size = a->cap ? 2 * a->cap : ARENA_FIRST;
		if (size < HDR_SIZE + n)
			size = HDR_SIZE + n;
		if (total + size > ARENA_MAX)
			size = HDR_SIZE + n; /* last chance: exactly what is asked */
		if (total + size > ARENA_MAX)
			return NULL;
		unsigned char *c = malloc(size);
		if (!c)
			return NULL;
		struct chunk_hdr *h = (void *)c;
		h->prev = a->buf;
		h->total = total + size;
		a->buf = c;
		a->cap = size;
		at = HDR_SIZE;
	}
	a->used = at + n;
	return memset(a->buf + at, 0, n);
}

static void parena_free(struct parena *a)
{
	unsigned char *c = a->buf;
	while (c) {
		unsigned char *prev = ((struct chunk_hdr *)(void *)c)->prev;
		free(c);
		c = prev;
	}
	a->buf = NULL;
	a->used = a->cap = 0;
}

static char *arena_strndup(struct parena *a, const char *s, size_t n)
{
	char *d = parena_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* ---- lifecycle ---- */

static void blank(struct pmsg *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
}

int pmsg_init(struct pmsg *m, enum proto_kind kind, enum proto_op op, uint32_t id)
{
	blank(m);
	m->kind = (uint8_t)kind;
	m->id = id;
	m->op = proto_op(op);
	if (!m->op)
		return -1;
	m->body.def = kind == PK_REPLY ? &m->op->rep : &m->op->req;
	return 0;
}

void pmsg_init_reply(struct pmsg *reply, const struct pmsg *req)
{
	blank(reply);
	reply->kind = PK_REPLY;
	reply->id = req->id;
	/* A request whose op was unknown can only be answered with an error, and the envelope
	 * still needs a valid op name: use ping's. Peers match replies by id. */
	reply->op = req->op ? req->op : proto_op(OP_PING);
	reply->body.def = &reply->op->rep;
}

static void close_fds(struct pmsg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
	m->nfds = 0;
}

void pmsg_free(struct pmsg *m)
{
	close_fds(m);
	parena_free(&m->arena);
	m->body.present = 0;
	m->err_msg = NULL;
}

/* An error reply carries no body and no fds (closed here: the peer would refuse them). The
 * message is made printable text so that it always passes SC_TEXT validation. */
void pmsg_set_error(struct pmsg *m, int code, const char *fmt, ...)
{
	char buf[PROTO_MAX_STR + 1];
	va_list ap;

	va_start(ap, fmt);
	int r = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (r < 0)
		buf[0] = '\0';
	size_t n = strlen(buf);
	if (!proto_str_ok(buf, n, SC_TEXT))
		for (size_t i = 0; i < n; i++)
			if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') || (unsigned char)buf[i] >= 0x7f)
				buf[i] = '?';
	m->err_code = code;
	m->body.present = 0;
	close_fds(m);
	m->err_msg = arena_strndup(&m->arena, buf, n);
	if (!m->err_msg)
		m->err_msg = proto_err_name(code);
}

/* ---- fds ---- */

int pmsg_add_fd(struct pmsg *m, int fd)
{
	if (fd < 0 || m->nfds >= PROTO_MAX_FDS)
		return -1;
	m->fds[m->nfds++] = fd;
	return 0;
}

int pmsg_take_fd(struct pmsg *m, unsigned i)
{
	if (i >= m->nfds)
		return -1;
	int fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

/* ---- fields ---- */

static int field_index(const struct record_def *def, const char *name)
{
	if (!def || !name)
		return -1;
	for (size_t i = 0; i < def->nfields && i < PROTO_MAX_FIELDS; i++)
		if (strcmp(def->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

static struct pval *field_slot(struct precord *r, const char *name, enum field_type type, int *idx)
{
	if (!r)
		return NULL;
	int i = field_index(r->def, name);
	if (i < 0 || r->def->fields[i].type != type)
		return NULL;
	*idx = i;
	return &r->v[i];
}

int prec_set_str(struct pmsg *m, struct precord *r, const char *field, const char *s)
{
	int i;
	struct pval *v = field_slot(r, field, FT_STR, &i);
	size_t n = s ? strlen(s) : 0;
	char *p;

	if (!v || !s || n > UINT32_MAX || !(p = arena_strndup(&m->arena, s, n)))
		return -1;
	v->s.p = p;
	v->s.n = (uint32_t)n;
	r->present |= 1u << i;
	return 0;
}

int prec_set_bin(struct pmsg *m, struct precord *r, const char *field, const void *p, size_t n)
{
	int i;
	struct pval *v = field_slot(r, field, FT_BIN, &i);
	char *d;

	if (!v || (!p && n) || n > UINT32_MAX || !(d = arena_strndup(&m->arena, n ? p : "", n)))
		return -1;
	v->s.p = d;
	v->s.n = (uint32_t)n;
	r->present |= 1u << i;
	return 0;
}

int prec_set_uint(struct pmsg *m, struct precord *r, const char *field, uint64_t val)
{
	int i;
	struct pval *v = field_slot(r, field, FT_UINT, &i);

	(void)m;
	if (!v)
		return -1;
	v->u = val;
	r->present |= 1u << i;
	return 0;
}

int prec_set_int(struct pmsg *m, struct precord *r, const char *field, int64_t val)
{
	int i;
	struct pval *v = field_slot(r, field, FT_INT, &i);

	(void)m;
	if (!v)
		return -1;
	v->i = val;
	r->present |= 1u << i;
	return 0;
}

int prec_set_bool(struct pmsg *m, struct precord *r, const char *field, bool val)
{
	int i;
	struct pval *v = field_slot(r, field, FT_BOOL, &i);

	(void)m;
	if (!v)
		return -1;
	v->b = val;
	r->present |= 1u << i;
	return 0;
}

/* Lists are allocated once at their schema maximum (see proto_list_cap), so a record pointer
 * returned by prec_add_record stays valid while more are appended. */
int prec_add_str(struct pmsg *m, struct precord *r, const char *field, const char *s)
{
	int i;
	struct pval *v = field_slot(r, field, FT_STRLIST, &i);
	char *p;

	if (!v || !s)
		return -1;
	size_t cap = proto_list_cap(&r->def->fields[i], 0);
	if (!(r->present & (1u << i))) {
		v->list.n = 0;
		v->list.v = NULL;
	}
	if (v->list.n >= cap)
		return -1;
	if (!v->list.v && !(v->list.v = parena_alloc(&m->arena, cap * sizeof(char *))))
		return -1;
	if (!(p = arena_strndup(&m->arena, s, strlen(s))))
		return -1;
	v->list.v[v->list.n++] = p;
	r->present |= 1u << i;
	return 0;
}

struct precord *prec_add_record(struct pmsg *m, struct precord *r, const char *field)
{
	int i;
	struct pval *v = field_slot(r, field, FT_RECORDS, &i);
	const struct field_def *f;

	if (!v)
		return NULL;
	f = &r->def->fields[i];
	size_t cap = proto_list_cap(f, 0);
	if (!(r->present & (1u << i))) {
		v->recs.n = 0;
		v->recs.v = NULL;
	}
	if (v->recs.n >= cap)
		return NULL;
	if (!v->recs.v && !(v->recs.v = parena_alloc(&m->arena, cap * sizeof(struct precord))))
		return NULL;
	struct precord *rec = &v->recs.v[v->recs.n++];
	memset(rec, 0, sizeof(*rec));
	rec->def = f->rec;
	r->present |= 1u << i;
	return rec;
}

size_t proto_list_cap(const struct field_def *f, size_t n)
{
	size_t cap = f->max < PROTO_MAX_ARRAY ? (size_t)f->max : PROTO_MAX_ARRAY;
	return n > cap ? n : cap;
}

static const struct pval *field_get(const struct precord *r, const char *name, int type)
{
	if (!r)
		return NULL;
	int i = field_index(r->def, name);
	if (i < 0 || !(r->present & (1u << i)))
		return NULL;
	if (type >= 0 && r->def->fields[i].type != (enum field_type)type)
		return NULL;
	return &r->v[i];
}

const char *prec_str(const struct precord *r, const char *field)
{
	const struct pval *v = field_get(r, field, FT_STR);
	return v ? v->s.p : NULL;
}

const void *prec_bin(const struct precord *r, const char *field, size_t *n)
{
	const struct pval *v = field_get(r, field, FT_BIN);
	if (!v)
		return NULL;
	if (n)
		*n = v->s.n;
	return v->s.p;
}

bool prec_uint(const struct precord *r, const char *field, uint64_t *out)
{
	const struct pval *v = field_get(r, field, FT_UINT);
	if (v && out)
		*out = v->u;
	return v != NULL;
}

bool prec_bool(const struct precord *r, const char *field, bool *out)
{
	const struct pval *v = field_get(r, field, FT_BOOL);
	if (v && out)
		*out = v->b;
	return v != NULL;
}

const struct pval *prec_get(const struct precord *r, const char *field)
{
	return field_get(r, field, -1);
}

bool prec_has(const struct precord *r, const char *field)
{
	return field_get(r, field, -1) != NULL;
}

const char *proto_err_name(int code)
{
	static const char *const names[] = {
	    [PE_OK] = "ok",
	    [PE_MALFORMED] = "malformed",
	    [PE_UNKNOWN_OP] = "unknown-op",
	    [PE_DENIED] = "denied",
	    [PE_INVALID] = "invalid",
	    [PE_UNAVAILABLE] = "unavailable",
	    [PE_INTERNAL] = "internal",
	    [PE_NOT_IMPLEMENTED] = "not-implemented",
	    [PE_NOT_FOUND] = "not-found",
	    [PE_EXISTS] = "exists",
	    [PE_NO_SPACE] = "no-space",
	    [PE_BUSY] = "busy",
	    [PE_VERSION] = "version",
	};
	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
		return "error";
	return names[code];
}

/* One present field of a record into dst, under the same name. 0 or nonzero. */
static int copy_field(struct pmsg *m, struct precord *dst, const struct field_def *f, const struct pval *v)
{
	int rc = 0;
	switch (f->type) {
	case FT_STR:
		return prec_set_str(m, dst, f->name, v->s.p);
	case FT_BIN:
		return prec_set_bin(m, dst, f->name, v->s.p, v->s.n);
	case FT_UINT:
		return prec_set_uint(m, dst, f->name, v->u);
	case FT_INT:
		return prec_set_int(m, dst, f->name, v->i);
	case FT_BOOL:
		return prec_set_bool(m, dst, f->name, v->b);
	case FT_STRLIST:
		for (uint32_t j = 0; j < v->list.n; j++)
			rc |= prec_add_str(m, dst, f->name, v->list.v[j]);
		return rc;
	case FT_RECORDS:
		for (uint32_t j = 0; j < v->recs.n; j++) {
			struct precord *r = prec_add_record(m, dst, f->name);
			rc |= r ? prec_copy(m, r, &v->recs.v[j]) : -1;
		}
		return rc;
	}
	return -1;
}

int prec_copy(struct pmsg *m, struct precord *dst, const struct precord *src)
{
	int rc = 0;
	for (size_t i = 0; i < src->def->nfields; i++)
		if (src->present & (1u << i))
			rc |= copy_field(m, dst, &src->def->fields[i], &src->v[i]);
	return rc ? -1 : 0;
}

int prec_copy_fields(struct pmsg *m, struct precord *dst, const struct precord *src, const char *const *names, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < src->def->nfields; i++) {
		if (!(src->present & (1u << i)))
			continue;
		for (size_t k = 0; k < n; k++)
			if (strcmp(src->def->fields[i].name, names[k]) == 0)
				rc |= copy_field(m, dst, &src->def->fields[i], &src->v[i]);
	}
	return rc ? -1 : 0;
}
