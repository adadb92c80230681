/* common/vmlinux.c: the first xz stream inside a vmlinuz-like blob, decompressed; trailing
 * bytes ignored; no stream, a corrupt stream, or a non-ELF payload refused. */
#include <lzma.h>
#include <stdint.h>

#include "cli/vmlinux.h"
#include "tests/unit/check.h"

#define PAYLOAD 300000

static uint8_t *make_elf(void)
{
	uint8_t *p = malloc(PAYLOAD);
	CHECK(p);
	for (size_t i = 0; i < PAYLOAD; i++)
		p[i] = (uint8_t)(i * 7 + i / 1000);
	static const uint8_t magic[4] = {0x7f, 'E', 'L', 'F'};
	memcpy(p, magic, sizeof(magic));
	return p;
}

/* prefix garbage + xz(payload) + trailing garbage; *xzoff = where the stream starts */
static uint8_t *wrap(const uint8_t *payload, size_t n, size_t *len, size_t *xzoff)
{
	size_t cap = n + n / 2 + 65536, pos = 0;
	uint8_t *buf = malloc(cap);
	CHECK(buf);
	memset(buf, 0x90, 4096); /* like the bzImage setup code */
	buf[100] = 0xFD;	 /* a partial magic must not confuse it */
	buf[101] = '7';
	pos = 4096;
	*xzoff = pos;
	CHECK(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, payload, n, buf, &pos, cap - 1024) == LZMA_OK);
	memset(buf + pos, 0xAB, 1000); /* trailing garbage (the bzImage's size field and more) */
	*len = pos + 1000;
	return buf;
}

TEST(extract_with_garbage_around)
{
	uint8_t *elf = make_elf(), *out = NULL;
	size_t len, off, outlen = 0;
	uint8_t *in = wrap(elf, PAYLOAD, &len, &off);
	CHECK_EQ(vmlinux_extract(in, len, &out, &outlen), 0);
	CHECK_EQ(outlen, PAYLOAD);
	CHECK(memcmp(out, elf, PAYLOAD) == 0);
	free(out);
	free(in);
	free(elf);
}

TEST(no_stream)
{
	uint8_t junk[8192], *out = NULL;
	size_t outlen = 0;
	memset(junk, 0x5A, sizeof(junk));
	CHECK_EQ(vmlinux_extract(junk, sizeof(junk), &out, &outlen), -ENOENT);
	CHECK_EQ(vmlinux_extract(junk, 3, &out, &outlen), -ENOENT);
}

TEST(corrupt_stream)
{
	uint8_t *elf = make_elf(), *out = NULL;
	size_t len, off, outlen = 0;
	uint8_t *in = wrap(elf, PAYLOAD, &len, &off);
	in[off + 200] ^= 0xFF;
	CHECK_EQ(vmlinux_extract(in, len, &out, &outlen), -EINVAL);
	free(in);
	free(elf);
}

TEST(not_elf)
{
	uint8_t *elf = make_elf(), *out = NULL;
	size_t len, off, outlen = 0;
	elf[0] = 'M';
	uint8_t *in = wrap(elf, PAYLOAD, &len, &off);
	CHECK_EQ(vmlinux_extract(in, len, &out, &outlen), -EINVAL);
	free(in);
	free(elf);
}

TEST(truncated_stream)
{
	uint8_t *elf = make_elf(), *out = NULL;
	size_t len, off, outlen = 0;
	uint8_t *in = wrap(elf, PAYLOAD, &len, &off);
	CHECK_EQ(vmlinux_extract(in, off + (len - 1000 - off) / 2, &out, &outlen), -EINVAL);
	free(in);
	free(elf);
}
