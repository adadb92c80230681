/* stored's snapshot operations: the protocol side of snapshot.c. The supervisor vouches for
 * who owns a snapshot and what it was taken of; stored checks every name and size again. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers/stored/snap_ops.h"
#include "helpers/stored/snapshot.h"

static void put_meta(struct pmsg *rep, struct precord *r, const struct snap_meta *m, const struct snap_usage *u)
{
	prec_set_str(rep, r, "tag", m->tag);
	prec_set_str(rep, r, "vm", m->vm);
	prec_set_str(rep, r, "image", m->image);
	prec_set_uint(rep, r, "owner", m->owner);
	prec_set_uint(rep, r, "created_ms", m->created_ms);
	prec_set_uint(rep, r, "cpu", m->cpu);
	prec_set_uint(rep, r, "mem", m->mem);
	prec_set_str(rep, r, "accel", m->accel);
	prec_set_str(rep, r, "assets", m->assets);
	prec_set_str(rep, r, "network", m->network);
	prec_set_str(rep, r, "kind", m->kind);
	prec_set_uint(rep, r, "used_ms", m->used_ms);
	if (u) {
		prec_set_uint(rep, r, "mem_bytes", u->mem);
		prec_set_uint(rep, r, "state_bytes", u->state);
		prec_set_uint(rep, r, "disk_bytes", u->disk);
		prec_set_uint(rep, r, "size", u->total);
	}
}

void snap_serve_begin(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *tag = prec_str(&req->body, "tag");
	int fd = -1, rc = snap_begin(h->state, tag, &fd);
	if (rc < 0)
		helper_fail(h, rep, rc, tag);
	else
		pmsg_add_fd(rep, fd);
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

void snap_serve_commit(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const struct precord *b = &req->body;
	struct snap_meta m = {0};
	struct snap_usage u;
	copy_str(m.tag, sizeof(m.tag), prec_str(b, "tag"));
	copy_str(m.vm, sizeof(m.vm), prec_str(b, "vm"));
	copy_str(m.image, sizeof(m.image), prec_str(b, "image"));
	copy_str(m.accel, sizeof(m.accel), prec_str(b, "accel"));
	copy_str(m.assets, sizeof(m.assets), prec_str(b, "assets"));
	copy_str(m.network, sizeof(m.network), prec_str(b, "network"));
	copy_str(m.kind, sizeof(m.kind), prec_str(b, "kind") ? prec_str(b, "kind") : "user");
	prec_uint(b, "owner", &m.owner);
	prec_uint(b, "created_ms", &m.created_ms);
	prec_uint(b, "cpu", &m.cpu);
	prec_uint(b, "mem", &m.mem);
	int rc = snap_commit(h->state, &m, prec_str(b, "disk"), req->fds[0], req->fds[1]);
	if (rc < 0) {
		helper_fail(h, rep, rc, m.tag);
		return;
	}
	m.used_ms = m.created_ms;
	put_meta(rep, &rep->body, &m, snap_usage_of(h->state, m.tag, &u) == 0 ? &u : NULL);
}

void snap_serve_abort(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *tag = prec_str(&req->body, "tag");
	int rc = snap_abort(h->state, tag);
	if (rc < 0)
		helper_fail(h, rep, rc, tag);
}

void snap_serve_open(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *tag = prec_str(&req->body, "tag");
	struct snap_meta m;
	int fds[SNAP_OPEN_FDS];
	bool overlay = false;
	int rc = snap_open(h->state, tag, prec_str(&req->body, "disk"), &m, fds, &overlay);
	if (rc < 0) {
		helper_fail(h, rep, rc, tag);
		return;
	}
	put_meta(rep, &rep->body, &m, NULL);
	prec_set_str(rep, &rep->body, "disk_format", overlay ? "qcow2" : "raw");
	for (int i = 0; i < SNAP_OPEN_FDS; i++)
		pmsg_add_fd(rep, fds[i]);
}

struct snap_list_ctx {
	struct helper_ctx *h;
	struct pmsg *rep;
	int rc;
};

static void add_snap(const char *tag, void *arg)
{
	struct snap_list_ctx *l = arg;
	struct snap_meta m;
	struct snap_usage u;
	if (snap_read_meta(l->h->state, tag, &m) < 0)
		return; /* not one of ours, or damaged: not listed (and never cloned) */
	struct precord *r = prec_add_record(l->rep, &l->rep->body, "snapshots");
	if (!r) {
		l->rc = -E2BIG;
		return;
	}
	put_meta(l->rep, r, &m, snap_usage_of(l->h->state, tag, &u) == 0 ? &u : NULL);
}

void snap_serve_list(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	struct snap_list_ctx l = {h, rep, 0};
	(void)req;
	int rc = snap_list(h->state, add_snap, &l);
	if (rc == 0)
		rc = l.rc;
	if (rc < 0)
		helper_fail(h, rep, rc, "snapshot list");
}

void snap_serve_remove(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *tag = prec_str(&req->body, "tag");
	int rc = snap_remove(h->state, tag);
	if (rc < 0)
		helper_fail(h, rep, rc, tag);
}
