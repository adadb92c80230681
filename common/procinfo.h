/* A process describes itself (the proc_info record of proto/ops.c). */
#ifndef FCVM_PROCINFO_H
#define FCVM_PROCINFO_H

#include <stdint.h>
#include "proto/proto.h"

/* Fill r (a proc_info record) with this process's identity and sandbox state.
 * Returns 0 or -1 (arena full). */
int procinfo_fill(struct pmsg *m, struct precord *r, const char *name, const char *mode, uint64_t started_ms);

#endif
