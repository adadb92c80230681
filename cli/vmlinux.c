/* vmlinuz -> vmlinux: find the xz magic, run liblzma's stream decoder to the stream's end. */
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "cli/vmlinux.h"

static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};

int vmlinux_extract(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	const uint8_t *p = len >= sizeof(xz_magic) ? memmem(in, len, xz_magic, sizeof(xz_magic)) : NULL;
	lzma_stream s = LZMA_STREAM_INIT;
	size_t cap = 64u << 20, n = 0;
	uint8_t *buf;
	lzma_ret r;

	if (!p)
		return -ENOENT;
	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	if (!(buf = malloc(cap))) {
		lzma_end(&s);
		return -ENOMEM;
	}
	s.next_in = p;
	s.avail_in = len - (size_t)(p - in);
	for (;;) {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				r = LZMA_MEM_ERROR;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		s.next_out = buf + n;
		s.avail_out = cap - n;
		r = lzma_code(&s, LZMA_FINISH);
		n = cap - s.avail_out;
		if (r != LZMA_OK)
			break;
	}
	lzma_end(&s);
	if (r != LZMA_STREAM_END || n < 4 || memcmp(buf, "\177ELF", 4) != 0) {
		free(buf);
		return r == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	}
	*out = buf;
	*outlen = n;
	return 0;
}
