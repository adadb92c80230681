/* The startup cache: see startup_cache.h.
 *
 * The key of a boot entry is what decides the guest's state before its container: the owner
 * (entries are never shared between users), the guest assets, the image's content (SHA-256 of
 * the archive the client handed over: a different image under the same name is another key),
 * vCPUs, memory, acceleration and the network mode. A start entry's key adds the container's
 * proc_start as the agent gets it (command, environment, user, workdir, every podman option,
 * the health check), less what is per run or does not reach the guest's state (the terminal
 * size, -d). The VM's name, its published ports, --rm and the clone's identity are per run:
 * applied to each clone (agent_restore, netd, pasta), never part of a key.
 *
 * A foreground run looks for a start entry, a detached one (-d) for a ready entry, then a
 * start entry (held, nothing has run: either serves). A miss at a level that can be taken
 * boots cold, so that the entry is taken: a clone of a lower level could not be snapshotted.
 * A level that proved impossible for a key (below) is skipped for it from then on, down to
 * the boot entry. Runs with stdin (-i) or a terminal
 * (-t) take neither: what the client types would be in the snapshot. A VM with another
 * session in flight (an `exec` during the cold run's start) takes neither: a clone would run
 * that command again; nor does a container that printed something before it was ready: its
 * clones' logs would lack it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/snapshot.h"
#include "supervisor/startup_cache.h"
#include "supervisor/vm.h"
#include "supervisor/vm_start.h"

#define CACHE_IMAGE_MAX (256ull << 20) /* hashed in the event loop: bigger images are not cached */
#define KEY_VERSION	"fcvm startup cache 1"

static const char *const level_name[CACHE__LEVELS] = {"boot", "start", "ready"};

/* Tags whose entry cannot be taken (the container failed before its hold, printed before it
 * was ready, ...): remembered so that their runs use the level below instead of booting each
 * time. In memory: a restarted supervisor learns it again in one run. */
#define NEVER_MAX 64
static char never_tags[NEVER_MAX][48];
static unsigned never_next;

static bool never(const char *tag)
{
	for (unsigned i = 0; i < NEVER_MAX; i++)
		if (never_tags[i][0] && strcmp(never_tags[i], tag) == 0)
			return true;
	return false;
}

static void mark_never(const struct vm *vm, char *tag, const char *why)
{
	if (!tag[0])
		return;
	log_info("%s: no startup cache entry %s: %s", vm->name, tag, why);
	if (!never(tag))
		snprintf(never_tags[never_next++ % NEVER_MAX], sizeof(never_tags[0]), "%s", tag);
	tag[0] = 0;
}

/* SHA-256 of the whole file behind fd (pread: its offset is QEMU's business). */
static int image_digest(int fd, uint8_t out[SHA256_DIGEST_SIZE])
{
	struct sha256_ctx h;
	struct stat st;
	static uint8_t buf[1 << 16];
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > CACHE_IMAGE_MAX)
		return -1;
	sha256_init(&h);
	for (off_t off = 0;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		sha256_update(&h, (size_t)n, buf);
		off += n;
	}
	sha256_digest(&h, SHA256_DIGEST_SIZE, out);
	return 0;
}

static void put_str(struct sha256_ctx *h, const char *s)
{
	sha256_update(h, strlen(s) + 1, (const uint8_t *)s); /* with its NUL: "ab","c" != "a","bc" */
}

static void put_uint(struct sha256_ctx *h, uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	put_str(h, b);
}

static void tag_of(char *out, size_t n, enum cache_level level, struct sha256_ctx *h)
{
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(h, sizeof(d), d);
	int k = snprintf(out, n, CACHE_TAG_PREFIX "%s-", level_name[level]);
	for (size_t i = 0; i < 16 && k > 0 && (size_t)k + 3 <= n; i++, k += 2)
		snprintf(out + k, 3, "%02x", d[i]);
}

/* The container's proc_start less what is per run, encoded: the start key's last part. */
static int run_key_bytes(const struct pmsg *run_start, uint8_t *buf, size_t cap, size_t *len)
{
	static const char *const fields[] = {
	    "kind",	     "argv",  "env",	    "tty",	"stdin",      "image",
	    "workdir",	     "user",  "privileged", "hostname", "entrypoint", "labels",
	    "read_only",     "tmpfs", "cap_add",    "cap_drop", "health_cmd", "health_interval",
	    "health_retries"};
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_PROC_START, 0);
	prec_set_uint(&m, &m.body, "session", 1);
	int rc = prec_copy_fields(&m, &m.body, &run_start->body, fields, ARRAY_LEN(fields));
	if (rc == 0)
		rc = pmsg_encode(&m, buf, cap, len, &e);
	pmsg_free(&m);
	return rc;
}

bool cache_plan(struct vm_start *st, const struct pmsg *req)
{
	struct vm *vm = st->vm;
	struct supervisor *s = vm->sup;
	uint8_t image[SHA256_DIGEST_SIZE];
	char assets[80];
	bool b;
	if ((prec_bool(&req->body, "no_cache", &b) && b) || s->cache_max_bytes == 0 || st->image_fd < 0)
		return false;
	if (snapshot_assets_id(s, assets, sizeof(assets)) < 0 || image_digest(st->image_fd, image) < 0)
		return false;
	struct sha256_ctx base;
	sha256_init(&base);
	put_str(&base, KEY_VERSION);
	put_uint(&base, vm->owner);
	put_str(&base, assets);
	sha256_update(&base, sizeof(image), image);
	put_uint(&base, vm->qc.cpus);
	put_uint(&base, vm->qc.mem_mib);
	put_str(&base, accel_name(vm->qc.accel));
	put_str(&base, vm->network);

	struct sha256_ctx start = base;
	tag_of(st->cache_tag[CACHE_BOOT], sizeof(st->cache_tag[CACHE_BOOT]), CACHE_BOOT, &base);
	bool interactive = (prec_bool(&req->body, "stdin", &b) && b) || (prec_bool(&req->body, "tty", &b) && b);
	static uint8_t buf[PROTO_MAX_FRAME];
	size_t len;
	bool detach = prec_bool(&req->body, "detach", &b) && b;
	if (!interactive && run_key_bytes(&vm->run_start, buf, sizeof(buf), &len) == 0) {
		sha256_update(&start, len, buf);
		struct sha256_ctx ready = start;
		put_str(&start, level_name[CACHE_START]);
		tag_of(st->cache_tag[CACHE_START], sizeof(st->cache_tag[CACHE_START]), CACHE_START, &start);
		put_str(&ready, level_name[CACHE_READY]);
		if (detach)
			tag_of(st->cache_tag[CACHE_READY], sizeof(st->cache_tag[CACHE_READY]), CACHE_READY, &ready);
	}
	return true;
}

/* No entry served: boot as ever, taking the entries that were missing on the way. */
static void go_cold(struct vm_start *st)
{
	struct vm *vm = st->vm;
	st->cache_try = -1;
	st->tag[0] = 0;
	for (int l = 0; l < CACHE__LEVELS; l++)
		if (l == CACHE_BOOT || !never(st->cache_tag[l]))
			snprintf(vm->cache.build[l], sizeof(vm->cache.build[l]), "%s", st->cache_tag[l]);
	if (vm->cache.build[CACHE_START][0])
		prec_set_bool(&vm->run_start, &vm->run_start.body, "hold", true);
	start_ask_for_disk(st);
}

void cache_next(struct vm_start *st)
{
	/* the most that can be served first; a miss where an entry can be taken: take it */
	if (st->cache_try > CACHE_BOOT) {
		go_cold(st);
		return;
	}
	int next = st->cache_try < 0 ? CACHE__LEVELS - 1 : st->cache_try - 1;
	while (next >= 0 && (!st->cache_tag[next][0] || (next > CACHE_BOOT && never(st->cache_tag[next]))))
		next--;
	if (next < 0) {
		go_cold(st);
		return;
	}
	st->cache_try = next;
	st->helper_tries = 0;
	snprintf(st->tag, sizeof(st->tag), "%s", st->cache_tag[next]);
	clone_ask_for_snapshot(st);
}

bool cache_open_failed(struct vm_start *st, const struct pmsg *rep)
{
	if (st->cache_try < 0)
		return false;
	if (rep->err_code != PE_NOT_FOUND) /* damaged, or stored could not: boot rather than fail */
		log_err("%s: startup cache entry '%s' not used: %s", st->vm->name, st->tag,
			rep->err_msg ? rep->err_msg : "?");
	cache_next(st);
	return true;
}

void cache_opened(struct vm_start *st)
{
	struct vm *vm = st->vm;
	snprintf(vm->clone_of, sizeof(vm->clone_of), "%s", st->tag);
	vm->cache.from = true;
	log_info("%s: from the startup cache (%s entry %s)", vm->name, level_name[st->cache_try], st->tag);
	if (st->cache_try == CACHE_BOOT)
		return; /* booted, no container: the run's proc_start goes once the agent answers */
	/* podman run is in the entry's memory as session 1: held before the container's process
	 * starts (let go once the clone knows who it is), or running (ready) */
	struct vm_session *run = TAILQ_FIRST(&vm->sessions);
	run->sid = 1;
	run->resync = true;
	vm->run_started = true;
	vm->next_sid = 1000;
	vm->cache.release = st->cache_try == CACHE_START;
}

/* ---- taking entries ---- */

/* Least recently used entries of owner beyond the bound go (never keep, nor one a clone runs
 * from). */
struct evict_job {
	struct supervisor *s;
	uid_t owner;
	char keep[48];
};

static void remove_entry(struct supervisor *s, const char *tag, peer_reply_cb cb, void *arg)
{
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_STORE_SNAP_REMOVE, 0);
	prec_set_str(&req, &req.body, "tag", tag);
	helper_call(s, HELPER_STORED, &req, cb, arg);
	pmsg_free(&req);
}

static bool is_cache(const struct precord *r)
{
	const char *kind = prec_str(r, "kind");
	return kind && strcmp(kind, "cache") == 0;
}

static uint64_t field(const struct precord *r, const char *name)
{
	uint64_t v = 0;
	prec_uint(r, name, &v);
	return v;
}

static void on_evict_list(struct pmsg *rep, void *arg)
{
	struct evict_job *e = arg;
	const struct pval *v = prec_get(&rep->body, "snapshots");
	uint32_t n = rep->err_code == PE_OK && v ? v->recs.n : 0;
	const struct precord *mine[PROTO_MAX_ARRAY];
	uint32_t k = 0;
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct precord *r = &v->recs.v[i];
		if (!is_cache(r) || field(r, "owner") != e->owner)
			continue;
		total += field(r, "size");
		mine[k++] = r;
	}
	while (total > e->s->cache_max_bytes) {
		const struct precord *oldest = NULL;
		for (uint32_t i = 0; i < k; i++)
			if (mine[i] && strcmp(prec_str(mine[i], "tag"), e->keep) != 0 &&
			    !snapshot_clones(e->s, prec_str(mine[i], "tag")) &&
			    (!oldest || field(mine[i], "used_ms") < field(oldest, "used_ms")))
				oldest = mine[i];
		if (!oldest)
			break;
		log_info("startup cache: %s goes (uid %u has %llu MiB of entries, the bound is %llu MiB)",
			 prec_str(oldest, "tag"), (unsigned)e->owner, (unsigned long long)(total >> 20),
			 (unsigned long long)(e->s->cache_max_bytes >> 20));
		total -= field(oldest, "size");
		remove_entry(e->s, prec_str(oldest, "tag"), snapshot_stored_done, NULL);
		for (uint32_t i = 0; i < k; i++)
			if (mine[i] == oldest)
				mine[i] = NULL;
	}
	free(e);
}

static void evict(struct supervisor *s, uid_t owner, const char *keep)
{
	struct evict_job *e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->s = s;
	e->owner = owner;
	snprintf(e->keep, sizeof(e->keep), "%s", keep);
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(s, HELPER_STORED, &req, on_evict_list, e);
	pmsg_free(&req);
}

/* An entry's snapshot is done (or failed: a run with the same key may be taking it, or the
 * VM went away): the run goes on as if nothing happened. */
static void entry_taken(struct vm *vm, const struct pmsg *result, const char *tag)
{
	if (result->err_code != PE_OK) {
		log_info("%s: startup cache entry %s not taken: %s", vm ? vm->name : "(gone)", tag,
			 result->err_msg ? result->err_msg : "?");
		return;
	}
	uint64_t pause = 0;
	prec_uint(&result->body, "pause_ms", &pause);
	log_info("%s: startup cache entry %s taken (paused %llu ms)", vm ? vm->name : "(gone)", tag,
		 (unsigned long long)pause);
	if (vm)
		evict(vm->sup, vm->owner, tag);
}

static void on_boot_taken(struct vm *vm, const struct pmsg *result, void *arg)
{
	char *tag = arg;
	entry_taken(vm, result, tag);
	free(tag);
	if (!vm)
		return;
	vm->cache.busy = false;
	vm_agent_ready(vm, NULL); /* on to the container */
}

bool cache_before_run(struct vm *vm)
{
	if (vm->cache.busy)
		return true;
	if (!vm->cache.build[CACHE_BOOT][0])
		return false;
	char *tag = strdup(vm->cache.build[CACHE_BOOT]);
	vm->cache.build[CACHE_BOOT][0] = 0;
	if (!tag)
		return false;
	int rc = snapshot_take(vm, tag, "cache", on_boot_taken, tag);
	if (rc != PE_OK) {
		log_info("%s: no startup cache entry %s: %s", vm->name, tag, proto_err_name(rc));
		free(tag);
		return false;
	}
	vm->cache.busy = true;
	return true;
}

static void container_go(struct vm *vm)
{
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_CONTAINER_GO, 0);
	prec_set_uint(&ev, &ev.body, "session", 1);
	agent_send_event(vm, &ev);
	pmsg_free(&ev);
}

static void on_start_taken(struct vm *vm, const struct pmsg *result, void *arg)
{
	char *tag = arg;
	entry_taken(vm, result, tag);
	free(tag);
	if (vm)
		container_go(vm);
}

void cache_on_held(struct vm *vm, const struct precord *ev)
{
	uint64_t sid = 0;
	prec_uint(ev, "session", &sid);
	struct vm_session *run = TAILQ_FIRST(&vm->sessions), *other = run ? TAILQ_NEXT(run, link) : NULL;
	char *tag = vm->cache.build[CACHE_START][0] ? strdup(vm->cache.build[CACHE_START]) : NULL;
	vm->cache.build[CACHE_START][0] = 0;
	if (!tag || sid != 1 || !run || run->sid != 1 || vm->qc.restore) {
		if (!tag)
			agent_bad(vm, "agent held a container nobody asked to hold");
		free(tag);
		container_go(vm);
		return;
	}
	if (other) { /* a clone would run that session's command again */
		log_info("%s: no startup cache entry %s: a command was sent while it started", vm->name, tag);
		free(tag);
		container_go(vm);
		return;
	}
	int rc = snapshot_take(vm, tag, "cache", on_start_taken, tag);
	if (rc != PE_OK) {
		log_info("%s: no startup cache entry %s: %s", vm->name, tag, proto_err_name(rc));
		free(tag);
		container_go(vm);
	}
}

static void on_ready_taken(struct vm *vm, const struct pmsg *result, void *arg)
{
	char *tag = arg;
	entry_taken(vm, result, tag);
	free(tag);
}

void cache_on_health(struct vm *vm)
{
	char *tag = vm->cache.build[CACHE_READY];
	if (!tag[0] || vm->qc.restore)
		return;
	if (strcmp(vm->health, "unhealthy") == 0 || vm->exit_code >= 0) {
		mark_never(vm, tag, "the container was never ready");
		return;
	}
	if (!vm->container_ran || strcmp(vm->health, "healthy") != 0 || vm->snapshot)
		return;
	struct vm_session *run = TAILQ_FIRST(&vm->sessions), *other = run ? TAILQ_NEXT(run, link) : NULL;
	if (run && run->offset) {
		mark_never(vm, tag, "it printed output before it was ready (its clones' logs would lack it)");
		return;
	}
	const char *why = !run || run->sid != 1 ? "its run session is not the first"
			  : other		? "a command was sent while it started"
						: NULL;
	char *copy = why ? NULL : strdup(tag);
	if (why || !copy) {
		log_info("%s: no startup cache entry %s: %s", vm->name, tag, why ? why : "out of memory");
		tag[0] = 0;
		return;
	}
	tag[0] = 0;
	int rc = snapshot_take(vm, copy, "cache", on_ready_taken, copy);
	if (rc != PE_OK) {
		log_info("%s: no startup cache entry %s: %s", vm->name, copy, proto_err_name(rc));
		free(copy);
	}
}

void cache_run_ended(struct vm *vm)
{
	mark_never(vm, vm->cache.build[CACHE_START], "the container ended before its process was held");
	mark_never(vm, vm->cache.build[CACHE_READY], "the container ended before it was ready");
}

/* ---- fcvm snapshot prune ---- */

struct prune_job {
	struct client *c;
	struct pmsg rep;
	unsigned pending, removed, kept;
	uint64_t bytes;
};

static void prune_send(struct prune_job *p)
{
	client_send(p->c, &p->rep);
	client_release(p->c);
	pmsg_free(&p->rep);
	free(p);
}

static void prune_done(struct prune_job *p)
{
	prec_set_uint(&p->rep, &p->rep.body, "removed", p->removed);
	prec_set_uint(&p->rep, &p->rep.body, "bytes", p->bytes);
	prec_set_uint(&p->rep, &p->rep.body, "kept", p->kept);
	prune_send(p);
}

struct prune_one {
	struct prune_job *p;
	uint64_t size;
};

static void on_pruned(struct pmsg *rep, void *arg)
{
	struct prune_one *o = arg;
	struct prune_job *p = o->p;
	if (rep->err_code == PE_OK) {
		p->removed++;
		p->bytes += o->size;
	} else {
		p->kept++; /* e.g. a clone's overlay still reads through its disk */
	}
	free(o);
	if (--p->pending == 0)
		prune_done(p);
}

static void on_prune_list(struct pmsg *rep, void *arg)
{
	struct prune_job *p = arg;
	const struct pval *v = prec_get(&rep->body, "snapshots");
	if (rep->err_code != PE_OK) {
		pmsg_set_error(&p->rep, rep->err_code, "%s", rep->err_msg ? rep->err_msg : "stored failed");
		prune_send(p);
		return;
	}
	p->pending = 1; /* this function's own, so that no answer ends it early */
	for (uint32_t i = 0; v && i < v->recs.n; i++) {
		const struct precord *r = &v->recs.v[i];
		if (!is_cache(r) || (p->c->uid != 0 && field(r, "owner") != p->c->uid))
			continue;
		if (snapshot_clones(p->c->sup, prec_str(r, "tag"))) {
			p->kept++;
			continue;
		}
		struct prune_one *o = calloc(1, sizeof(*o));
		if (!o)
			break;
		o->p = p;
		o->size = field(r, "size");
		p->pending++;
		remove_entry(p->c->sup, prec_str(r, "tag"), on_pruned, o);
	}
	if (--p->pending == 0)
		prune_done(p);
}

void op_snapshot_prune(struct client *c, const struct pmsg *req)
{
	struct prune_job *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->c = c;
	client_hold(c);
	pmsg_init_reply(&p->rep, req);
	struct pmsg sreq;
	pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(c->sup, HELPER_STORED, &sreq, on_prune_list, p);
	pmsg_free(&sreq);
}
