/* The handshake's region list (regions.h). A small strict parser rather than a JSON library:
 * the payload comes from a VMM, is tiny and has one shape, and uffdd's filter allows no
 * opening of files (jansson seeds its hash tables from /dev/urandom). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "helpers/uffdd/regions.h"

struct jp {
	const char *start, *p, *end;
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct jp *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->why, j->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool eat(struct jp *j, char c)
{
	ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

/* A string without escapes or control characters (keys; skipped values may have escapes). */
static int str(struct jp *j, const char **s, size_t *len)
{
	if (!eat(j, '"'))
		return fail(j, "a string expected at byte %td", j->p - j->start);
	const char *start = j->p;
	while (j->p < j->end && *j->p != '"') {
		if ((unsigned char)*j->p < 0x20)
			return fail(j, "a control character in a string");
		if (*j->p == '\\') {
			if (++j->p >= j->end)
				break;
			if (s)
				return fail(j, "an escape in a key");
		}
		j->p++;
	}
	if (j->p >= j->end)
		return fail(j, "an unterminated string");
	if (s) {
		*s = start;
		*len = (size_t)(j->p - start);
	}
	j->p++;
	return 0;
}

static int uint(struct jp *j, uint64_t *v)
{
	ws(j);
	const char *start = j->p;
	uint64_t x = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = (unsigned)(*j->p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return fail(j, "a number beyond 64 bits");
		x = x * 10 + d;
		j->p++;
	}
	if (j->p == start)
		return fail(j, "an unsigned integer expected");
	if (j->p - start > 1 && *start == '0')
		return fail(j, "a number with a leading zero");
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return fail(j, "a number that is not an integer");
	*v = x;
	return 0;
}

/* A scalar value of a key we do not know: a string, a number, true, false or null. */
static int skip_scalar(struct jp *j)
{
	ws(j);
	if (j->p >= j->end)
		return fail(j, "a value expected");
	if (*j->p == '"')
		return str(j, NULL, NULL);
	static const char *const words[] = {"true", "false", "null"};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
			j->p += n;
			return 0;
		}
	}
	const char *start = j->p;
	if (*j->p == '-')
		j->p++;
	while (j->p < j->end && strchr("0123456789.eE+-", *j->p))
		j->p++;
	if (j->p == start || (j->p == start + 1 && *start == '-'))
		return fail(j, "a scalar value expected (no arrays or objects)");
	return 0;
}

enum { K_BASE, K_SIZE, K_OFFSET, K_PAGE, K_PAGE_KIB, K__N };
static const char *const keys[K__N] = {"base_host_virt_addr", "size", "offset", "page_size", "page_size_kib"};

static int region(struct jp *j, struct uffd_region *r)
{
	uint64_t v[K__N] = {0};
	bool have[K__N] = {false};

	if (!eat(j, '{'))
		return fail(j, "a region must be an object");
	if (!eat(j, '}')) {
		do {
			const char *k = NULL;
			size_t kn = 0;
			if (str(j, &k, &kn) < 0)
				return -1;
			if (!eat(j, ':'))
				return fail(j, "':' expected after a key");
			int which = -1;
			for (int i = 0; i < K__N; i++)
				if (strlen(keys[i]) == kn && memcmp(keys[i], k, kn) == 0)
					which = i;
			if (which < 0) {
				if (skip_scalar(j) < 0)
					return -1;
				continue;
			}
			if (have[which])
				return fail(j, "'%s' twice in a region", keys[which]);
			if (uint(j, &v[which]) < 0)
				return fail(j, "'%s': %s", keys[which], j->why);
			have[which] = true;
		} while (eat(j, ','));
		if (!eat(j, '}'))
			return fail(j, "'}' or ',' expected in a region");
	}
	for (int i = K_BASE; i <= K_OFFSET; i++)
		if (!have[i])
			return fail(j, "a region without '%s'", keys[i]);
	if (have[K_PAGE] && have[K_PAGE_KIB] && v[K_PAGE] != v[K_PAGE_KIB])
		return fail(j, "page_size %llu and page_size_kib %llu disagree", (unsigned long long)v[K_PAGE],
			    (unsigned long long)v[K_PAGE_KIB]);
	r->base = v[K_BASE];
	r->size = v[K_SIZE];
	r->offset = v[K_OFFSET];
	r->page_size = have[K_PAGE] ? v[K_PAGE] : have[K_PAGE_KIB] ? v[K_PAGE_KIB] : UFFDD_DEFAULT_PAGE;
	return 0;
}

int regions_parse(const char *json, size_t n, struct uffd_region *out, unsigned max, char *why, size_t whylen)
{
	struct jp j = {.start = json, .p = json, .end = json + n, .why = why, .whylen = whylen};
	unsigned count = 0;

	if (n > UFFDD_MAX_JSON)
		return fail(&j, "%zu bytes of regions (at most %d)", n, UFFDD_MAX_JSON);
	if (memchr(json, '\0', n))
		return fail(&j, "a NUL byte in the regions");
	if (!eat(&j, '['))
		return fail(&j, "the regions are not a JSON array");
	if (eat(&j, ']'))
		return fail(&j, "no regions");
	do {
		if (count >= max)
			return fail(&j, "more than %u regions", max);
		if (region(&j, &out[count]) < 0)
			return -1;
		count++;
	} while (eat(&j, ','));
	if (!eat(&j, ']'))
		return fail(&j, "']' or ',' expected after a region");
	ws(&j);
	if (j.p != j.end)
		return fail(&j, "%td bytes after the array", j.end - j.p);
	return (int)count;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int regions_check(const struct uffd_region *r, unsigned n, uint64_t file_size, uint64_t page_size, char *why,
		  size_t whylen)
{
	for (unsigned i = 0; i < n; i++) {
		const struct uffd_region *x = &r[i];
		if (x->page_size != page_size) {
			snprintf(why, whylen, "region %u: page size %llu, not %llu", i,
				 (unsigned long long)x->page_size, (unsigned long long)page_size);
			return -1;
		}
		if (x->size == 0 || x->base % page_size || x->size % page_size || x->offset % page_size) {
			snprintf(
			    why, whylen, "region %u: empty or not page-aligned (base 0x%llx size %llu offset %llu)", i,
			    (unsigned long long)x->base, (unsigned long long)x->size, (unsigned long long)x->offset);
			return -1;
		}
		if (x->base + x->size < x->base || x->offset > file_size || x->size > file_size - x->offset) {
			snprintf(why, whylen, "region %u: offset %llu size %llu outside the memory file (%llu bytes)",
				 i, (unsigned long long)x->offset, (unsigned long long)x->size,
				 (unsigned long long)file_size);
			return -1;
		}
		for (unsigned k = 0; k < i; k++) {
			if (overlap(x->base, x->size, r[k].base, r[k].size)) {
				snprintf(why, whylen, "regions %u and %u overlap in the VMM's memory", k, i);
				return -1;
			}
			if (overlap(x->offset, x->size, r[k].offset, r[k].size)) {
				snprintf(why, whylen, "regions %u and %u overlap in the memory file", k, i);
				return -1;
			}
		}
	}
	return 0;
}
