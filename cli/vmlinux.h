/* The uncompressed kernel (ELF vmlinux, bootable through its PVH entry) out of a Debian
 * vmlinuz: the first xz stream in it, decompressed. */
#ifndef FCVM_VMLINUX_H
#define FCVM_VMLINUX_H

#include <stddef.h>
#include <stdint.h>

/* Decompress the first xz stream found in in[0..len) (anything after it is ignored) into a
 * malloc'd buffer; it must be an ELF file. Returns 0, -ENOENT (no xz magic), -EINVAL
 * (corrupt stream, or not ELF), -ENOMEM. */
int vmlinux_extract(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

#endif
