/* A structural walk over raw msgpack bytes, run before msgpack-c sees them.
 *
 * Why: msgpack-c allocates a container's elements up front from the count in its header, so a
 * 20-byte frame holding an array32 header that claims 4 billion elements makes it try to
 * allocate ~100 GB, and it has no notion of our depth or string limits. This walker touches no
 * memory beyond the input and a fixed stack; only input that passes it reaches msgpack-c. It
 * checks every container count (<= PROTO_MAX_ARRAY and <= the bytes left, since every element
 * takes at least one byte), every str/bin/ext length (<= PROTO_MAX_STR, inside the buffer),
 * the nesting depth (<= PROTO_MAX_DEPTH) and that exactly one object fills the buffer. */
#include <stdint.h>

#include "proto/proto.h"

static uint64_t be(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* One object header at p[0..left). Sets *hdr (header bytes), and either *items (a container:
 * elements that follow, maps counting keys and values) or *data (payload bytes after the
 * header). Returns 0, or -1 if the header is invalid, truncated or breaks a limit. */
static int object_header(const unsigned char *p, size_t left, size_t *hdr, uint64_t *data, uint64_t *items,
			 int *is_container)
{
	unsigned char b = p[0];
	unsigned lenbytes = 0; /* size of the length/count field after the type byte */
	uint64_t n;

	*data = 0;
	*items = 0;
	*is_container = 0;
	*hdr = 1;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;	      /* fixint, nil, bool */
	if (b >= 0x80 && b <= 0x9f) { /* fixmap, fixarray */
		n = b & 0x0f;
		*is_container = 1;
		*items = b <= 0x8f ? 2 * n : n;
		return 0;
	}
	if (b >= 0xa0 && b <= 0xbf) { /* fixstr */
		*data = b & 0x1f;
		return 0;
	}
	switch (b) {
	case 0xca: /* float32 */
		*data = 4;
		return 0;
	case 0xcb: /* float64 */
		*data = 8;
		return 0;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf: /* uint8..64 */
		*data = 1u << (b - 0xcc);
		return 0;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: /* int8..64 */
		*data = 1u << (b - 0xd0);
		return 0;
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8: /* fixext 1..16, plus a type byte */
		*data = 1 + (1u << (b - 0xd4));
		return 0;
	case 0xc4:
	case 0xd9: /* bin8, str8 */
		lenbytes = 1;
		break;
	case 0xc5:
	case 0xda: /* bin16, str16 */
		lenbytes = 2;
		break;
	case 0xc6:
	case 0xdb: /* bin32, str32 */
		lenbytes = 4;
		break;
	case 0xc7:
	case 0xc8:
	case 0xc9: /* ext8/16/32 */
		lenbytes = 1u << (b - 0xc7);
		break;
	case 0xdc:
	case 0xde: /* array16, map16 */
		lenbytes = 2;
		*is_container = 1;
		break;
	case 0xdd:
	case 0xdf: /* array32, map32 */
		lenbytes = 4;
		*is_container = 1;
		break;
	default: /* 0xc1: never used */
		return -1;
	}
	if (left < 1 + (size_t)lenbytes)
		return -1;
	n = be(p + 1, lenbytes);
	*hdr = 1 + lenbytes;
	if (*is_container) {
		if (n > PROTO_MAX_ARRAY)
			return -1;
		*items = (b == 0xde || b == 0xdf) ? 2 * n : n;
		return 0;
	}
	if (n > PROTO_MAX_STR)
		return -1;
	*data = n;
	if (b >= 0xc7 && b <= 0xc9)
		*hdr += 1; /* the ext type byte */
	return 0;
}

int proto_prescan(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t pos = 0;
	unsigned depth = 0;		    /* containers open */
	uint64_t left[PROTO_MAX_DEPTH + 1]; /* objects still expected at each level */

	if (!buf || len == 0 || len > PROTO_MAX_FRAME)
		return -1;
	left[0] = 1; /* exactly one top-level object */
	for (;;) {
		size_t hdr;
		uint64_t data, items;
		int container;

		if (pos >= len)
			return -1;
		if (object_header(p + pos, len - pos, &hdr, &data, &items, &container) < 0)
			return -1;
		if (hdr > len - pos || data > len - pos - hdr)
			return -1;
		pos += hdr + data;
		left[depth]--;
		if (container) {
			if (depth + 1 > PROTO_MAX_DEPTH || items > len - pos)
				return -1;
			left[++depth] = items;
		}
		while (depth > 0 && left[depth] == 0)
			depth--;
		if (depth == 0 && left[0] == 0)
			break;
	}
	return pos == len ? 0 : -1;
}
