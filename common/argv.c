#include <stdarg.h>
#include <stdio.h>

#include "common/argv.h"

void argv_add(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;
	if (b->overflow || b->n >= b->max) {
		b->overflow = true;
		return;
	}
	va_start(ap, fmt);
	int len = vsnprintf(b->buf + b->used, b->cap - b->used, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= b->cap - b->used) {
		b->overflow = true;
		return;
	}
	b->argv[b->n++] = b->buf + b->used;
	b->used += (size_t)len + 1;
}
