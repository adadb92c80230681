/* fcvm-stored: images, VM disks and snapshots under the data directory (fd 4, opened by the launcher).
 * It hands out open fds, never paths; every name is checked again here (store.c) however
 * well the supervisor validated it. */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "helpers/common/helper.h"
#include "helpers/stored/snap_ops.h"
#include "helpers/stored/store.h"

/* Reply with what was made and hand the disk's fd over. */
static void made(struct helper_ctx *h, struct pmsg *rep, const char *name, int fd)
{
	struct store *s = h->state;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		helper_fail(h, rep, -EIO, name);
		return;
	}
	prec_set_str(rep, &rep->body, "name", name);
	prec_set_str(rep, &rep->body, "backend", store_backend_name(s->backend));
	prec_set_uint(rep, &rep->body, "size", (uint64_t)st.st_size);
	pmsg_add_fd(rep, fd);
}

#define DISK_FREE_MIN (1ull << 30)

static void serve_create(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "name");
	uint64_t size = 0;
	int fd = -1;
	prec_uint(&req->body, "size", &size);
	/* a thin disk fills as its guest writes: none is made where there is no room for it to
	 * grow (its size, or DISK_FREE_MIN of a bigger one) */
	uint64_t avail = 0, room = size < DISK_FREE_MIN ? size : DISK_FREE_MIN;
	if (!prec_str(&req->body, "base") && store_free_bytes(h->state, &avail) == 0 && avail < room) {
		pmsg_set_error(rep, PE_NO_SPACE,
			       "the data directory has %llu MiB free: this disk needs at least %llu MiB to grow into",
			       (unsigned long long)(avail >> 20), (unsigned long long)(room >> 20));
		return;
	}
	int rc = store_create_disk(h->state, name, size, prec_str(&req->body, "base"), &fd);
	if (rc < 0)
		helper_fail(h, rep, rc, name);
	else
		made(h, rep, name, fd);
}

static void serve_clone(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *dst = prec_str(&req->body, "dst");
	int fd = -1;
	int rc = store_clone_disk(h->state, prec_str(&req->body, "src"), dst, &fd);
	if (rc < 0)
		helper_fail(h, rep, rc, dst);
	else
		made(h, rep, dst, fd);
}

static void serve_remove(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "name");
	int rc = store_remove_disk(h->state, name);
	if (rc < 0)
		helper_fail(h, rep, rc, name);
}

struct list_ctx {
	struct helper_ctx *h;
	struct pmsg *rep;
	int rc;
};

static void add_disk(const char *name, void *arg)
{
	struct list_ctx *l = arg;
	uint64_t logical = 0, allocated = 0;
	struct precord *r = prec_add_record(l->rep, &l->rep->body, "disks");
	if (!r) {
		l->rc = -E2BIG;
		return;
	}
	uint64_t exclusive = 0, shared = 0;
	store_usage(l->h->state, name, &logical, &allocated);
	prec_set_str(l->rep, r, "name", name);
	prec_set_uint(l->rep, r, "logical", logical);
	prec_set_uint(l->rep, r, "allocated", allocated);
	if (store_sharing(l->h->state, name, &exclusive, &shared) == 0) {
		prec_set_uint(l->rep, r, "exclusive", exclusive);
		prec_set_uint(l->rep, r, "shared", shared);
	}
}

static void serve_list(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	struct store *s = h->state;
	struct list_ctx l = {h, rep, 0};
	uint64_t avail = 0;
	(void)req;
	int rc = store_free_bytes(s, &avail);
	if (rc == 0)
		rc = store_list_disks(s, add_disk, &l);
	if (rc == 0)
		rc = l.rc;
	if (rc < 0) {
		helper_fail(h, rep, rc, "list");
		return;
	}
	prec_set_str(rep, &rep->body, "backend", store_backend_name(s->backend));
	prec_set_uint(rep, &rep->body, "free", avail);
}

static struct store store;

static int open_store(struct helper_ctx *h)
{
	h->state = &store;
	return store_open(&store, FCVM_HELPER_DATA_FD);
}

static void serve_image_import(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "name");
	struct stat st;
	int fd = -1;
	st.st_size = 0;
	int rc = store_import_image(h->state, name, req->fds[0], &fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		helper_fail(h, rep, rc, name);
		return;
	}
	prec_set_str(rep, &rep->body, "name", name);
	prec_set_uint(rep, &rep->body, "size", (uint64_t)st.st_size);
}

static void add_image(const char *name, void *arg)
{
	struct list_ctx *l = arg;
	uint64_t size = 0;
	struct precord *r = prec_add_record(l->rep, &l->rep->body, "images");
	if (!r) {
		l->rc = -E2BIG;
		return;
	}
	store_image_size(l->h->state, name, &size);
	prec_set_str(l->rep, r, "name", name);
	prec_set_uint(l->rep, r, "size", size);
}

static void serve_image_list(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	struct list_ctx l = {h, rep, 0};
	(void)req;
	int rc = store_list_images(h->state, add_image, &l);
	if (rc == 0)
		rc = l.rc;
	if (rc < 0)
		helper_fail(h, rep, rc, "image list");
}

static void serve_image_remove(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "name");
	int rc = store_remove_image(h->state, name);
	if (rc < 0)
		helper_fail(h, rep, rc, name);
}

static const struct helper_op ops[] = {
    {OP_STORE_CREATE, serve_create},
    {OP_STORE_CLONE, serve_clone},
    {OP_STORE_REMOVE, serve_remove},
    {OP_STORE_LIST, serve_list},
    {OP_STORE_IMAGE_IMPORT, serve_image_import},
    {OP_STORE_IMAGE_LIST, serve_image_list},
    {OP_STORE_IMAGE_REMOVE, serve_image_remove},
    {OP_STORE_SNAP_BEGIN, snap_serve_begin},
    {OP_STORE_SNAP_COMMIT, snap_serve_commit},
    {OP_STORE_SNAP_ABORT, snap_serve_abort},
    {OP_STORE_SNAP_OPEN, snap_serve_open},
    {OP_STORE_SNAP_LIST, snap_serve_list},
    {OP_STORE_SNAP_REMOVE, snap_serve_remove},
};

int main(int argc, char **argv)
{
	return helper_main("stored", &policy_stored, ops, sizeof(ops) / sizeof(ops[0]), open_store, argc, argv);
}
