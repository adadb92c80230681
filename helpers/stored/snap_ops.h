/* stored's snapshot operations (snap_ops.c), registered in main.c's table. */
#ifndef FCVM_SNAP_OPS_H
#define FCVM_SNAP_OPS_H

#include "helpers/common/helper.h"

void snap_serve_begin(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);
void snap_serve_commit(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);
void snap_serve_abort(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);
void snap_serve_open(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);
void snap_serve_list(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);
void snap_serve_remove(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);

#endif
