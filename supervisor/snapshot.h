/* Snapshots of running VMs (supervisor/snapshot.c) and the client operations on them; the
 * clones started from them are supervisor/vm_clone.c's. docs/snapshots.md. */
#ifndef FCVM_SUP_SNAPSHOT_H
#define FCVM_SUP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

struct client;
struct supervisor;
struct vm;

void op_snapshot_create(struct client *c, const struct pmsg *req);
void op_snapshot_prune(struct client *c, const struct pmsg *req); /* startup_cache.c */
void op_snapshot_run(struct client *c, const struct pmsg *req);
void op_snapshot_list(struct client *c, const struct pmsg *req);
void op_snapshot_remove(struct client *c, const struct pmsg *req);

/* The guest assets a snapshot depends on (kernel and root filesystem, by their content
 * names): a clone runs only on the same. 0 or -1. */
int snapshot_assets_id(struct supervisor *s, char *buf, size_t n);
/* The startup cache's tags (startup_cache.c): `snapshot create` refuses them. */
#define CACHE_TAG_PREFIX "cache-"

/* Tags are per user (snapshot_names.c): stored's name for owner's TAG ("uUID.TAG"), as the
 * caller names it (root may give such a full name: it is then taken as it is, and must be
 * owner's). 0, or -1 with why in err. */
#define SNAP_STORE_TAG_MAX 64
#define SNAP_USER_TAG_MAX  (SNAP_STORE_TAG_MAX - 12) /* "u4294967295." */
int snapshot_store_tag(uid_t caller, uid_t owner, const char *tag, char *out, size_t len, char *err, size_t elen);
/* What viewer calls stored's STORE_TAG: their own by its tag, another's (root) by its full name. */
const char *snapshot_shown_tag(uid_t viewer, const char *store_tag);

/* A snapshot the supervisor takes for itself (KIND "cache"): DONE gets the outcome, as a
 * snapshot_create reply (err_code), with the VM (NULL if it went away meanwhile). Returns
 * PE_OK, or why it cannot be taken now (DONE is then never called). */
typedef void (*snapshot_done_cb)(struct vm *vm, const struct pmsg *result, void *arg);
int snapshot_take(struct vm *vm, const char *tag, const char *kind, snapshot_done_cb done, void *arg);

/* A reply of stored's nobody waits for (an abort, an eviction): only its failure is logged. */
void snapshot_stored_done(struct pmsg *rep, void *arg);

/* VMs (clones, running or not) made from snapshot TAG. */
unsigned snapshot_clones(struct supervisor *s, const char *tag);

/* The VM goes away while a snapshot of it is being taken: the snapshot fails. */
void snapshot_vm_gone(struct vm *vm);

/* In stored's reply to a snapshot list: how many snapshots of kind user owner has. */
uint64_t snapshot_count_user(const struct pmsg *list_rep, uid_t owner);

#endif
