/* The QEMU microvm command line for one VM, built by the launcher from its checked
 * configuration alone (no I/O), so that tests can check it exactly. */
#ifndef FCVM_QEMU_ARGV_H
#define FCVM_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>

#include "common/vmconfig.h"

#define QEMU_ARGV_MAX 96

/* Fill argv (without argv[0]) with string storage in buf. Returns the count, or -1 when it
 * does not fit or c->net holds a malformed address (checked again here: this is the one
 * place its strings become QEMU's and the kernel's command line). */
int qemu_build_argv(const struct vm_config *c, const char **argv, size_t max, char *buf, size_t buflen);

#endif
