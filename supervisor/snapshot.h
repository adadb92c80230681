/* Snapshots of running VMs (supervisor/snapshot.c) and the client operations on them; the
 * clones started from them are supervisor/vm_clone.c's. docs/snapshots.md. */
#ifndef FCVM_SUP_SNAPSHOT_H
#define FCVM_SUP_SNAPSHOT_H

#include <stddef.h>

#include "proto/proto.h"

struct client;
struct supervisor;
struct vm;

void op_snapshot_create(struct client *c, const struct pmsg *req);
void op_snapshot_run(struct client *c, const struct pmsg *req);
void op_snapshot_list(struct client *c, const struct pmsg *req);
void op_snapshot_remove(struct client *c, const struct pmsg *req);

/* The guest assets a snapshot depends on (kernel and root filesystem, by their content
 * names): a clone runs only on the same. 0 or -1. */
int snapshot_assets_id(struct supervisor *s, char *buf, size_t n);
/* The VM goes away while a snapshot of it is being taken: the snapshot fails. */
void snapshot_vm_gone(struct vm *vm);

#endif
