/* Firecracker's UFFD handshake payload: a JSON array of guest memory regions
 * ([{"base_host_virt_addr":N,"size":N,"offset":N,"page_size":N}, ...], one sendmsg, no
 * newline), parsed strictly and checked against the memory file it is to be served from. */
#ifndef FCVM_UFFDD_REGIONS_H
#define FCVM_UFFDD_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#define UFFDD_MAX_REGIONS  32
#define UFFDD_MAX_JSON	   8192 /* one region is ~110 bytes; Firecracker sends a few */
#define UFFDD_DEFAULT_PAGE 4096 /* Firecracker < 1.7 sent no page size */

struct uffd_region {
	uint64_t base;	    /* the VMM's virtual address */
	uint64_t size;	    /* bytes */
	uint64_t offset;    /* in the memory file */
	uint64_t page_size; /* bytes: page_size, else page_size_kib (bytes too, despite its name), else 4096 */
};

/* Parse the payload (n bytes, not NUL-terminated). Unknown keys with scalar values are
 * skipped (a newer Firecracker may add some); the three of base_host_virt_addr, size and
 * offset are required, each key at most once, numbers are unsigned decimal integers that fit
 * 64 bits. Returns the number of regions (>= 1), or -1 with why set. */
int regions_parse(const char *json, size_t n, struct uffd_region *out, unsigned max, char *why, size_t whylen);

/* Are they servable from a file of file_size bytes with pages of page_size: every region
 * non-empty, of that page size, page-aligned (address, size, offset), inside the file, and
 * overlapping no other one (neither in the VMM's address space nor in the file)?
 * 0, or -1 with why set. */
int regions_check(const struct uffd_region *r, unsigned n, uint64_t file_size, uint64_t page_size, char *why,
		  size_t whylen);

#endif
