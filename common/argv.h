/* Building a command line into caller-owned storage: each string lands in buf, one after
 * another (so the whole argv is one contiguous block), and any overflow is remembered. */
#ifndef FCVM_ARGV_H
#define FCVM_ARGV_H

#include <stdbool.h>
#include <stddef.h>

struct argv_builder {
	const char **argv;
	size_t n, max; /* max counts the NULL the caller may add */
	char *buf;
	size_t used, cap;
	bool overflow;
};

/* Append one formatted argument (nothing once overflowed). */
void argv_add(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
