/* The startup cache (supervisor/startup_cache.c, docs/snapshots.md): snapshots the supervisor
 * takes of a `podman run` on its way up, restored instead of booting when a run with the same
 * key comes again. Three levels:
 *   boot  - booted, the agent ready, no container yet: serves any command on that image
 *   start - the container made by podman and held just before its process starts: serves the
 *           same command (and options) again, podman's own start-up already paid
 *   ready - (run -d) the container running, healthy with --health-cmd, and silent so far: a
 *           service comes up serving
 * Entries are snapshots of kind "cache", one owner's each, tagged CACHE_TAG_PREFIX + level +
 * the key's hash; least recently used ones go beyond a size bound. */
#ifndef FCVM_SUP_STARTUP_CACHE_H
#define FCVM_SUP_STARTUP_CACHE_H

#include <stdbool.h>

#include "proto/proto.h"

struct vm;
struct vm_start;

enum cache_level { CACHE_BOOT, CACHE_START, CACHE_READY, CACHE__LEVELS };

/* vm_run (not a clone): work out the keys of this run (-d: a ready and a start key). False: no cache for it
 * (--no-snapshot, an image too big to hash, ...): start it as ever. True: cache_next starts it. */
bool cache_plan(struct vm_start *st, const struct pmsg *req);
/* Try the next level's entry (clone_ask_for_snapshot), or start cold, building what is missing. */
void cache_next(struct vm_start *st);
/* store_snap_open's answer to a try was not a usable entry: true if the cache took it (on to
 * the next level or a cold start), false if the start must fail as a clone's would. */
bool cache_open_failed(struct vm_start *st, const struct pmsg *rep);
/* The entry opened: the VM is a clone of it, its run at the level's point. */
void cache_opened(struct vm_start *st);
/* vm_agent_ready, before the container's proc_start: true while a boot entry is being taken
 * (vm_agent_ready is called again once it is). */
bool cache_before_run(struct vm *vm);
/* The agent's container_held: take the start entry, then let the container go. */
void cache_on_held(struct vm *vm, const struct precord *ev);
/* The container's health changed (vm->health): the ready entry is taken once it is healthy. */
void cache_on_health(struct vm *vm);
/* The container exited: entries it was to give are impossible for its key. */
void cache_run_ended(struct vm *vm);

#endif
