/* What kind of object does a received file descriptor refer to? */
#ifndef FCVM_FDKIND_H
#define FCVM_FDKIND_H

#include <stdbool.h>
#include "proto/proto.h"

bool fd_is_kind(int fd, enum fd_kind kind);
const char *fd_kind_name(enum fd_kind kind);

#endif
