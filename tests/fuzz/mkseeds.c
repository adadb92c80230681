/* Writes the fuzz seed corpora: valid encodings of every op (requests, replies, an event, an
 * error reply) and a few malformed frames, bare (fuzz_envelope) and length-prefixed, alone
 * and back to back (fuzz_stream). Not built by make; after a schema change:
 *   cc -std=gnu11 -D_GNU_SOURCE -I. tests/fuzz/mkseeds.c proto/[a-z]*.c -lmsgpackc -o /tmp/mkseeds
 *   /tmp/mkseeds tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/stream.h"

static const char *dir;
static unsigned char all[8 * PROTO_MAX_FRAME];
static size_t all_len;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* One frame: bare for the envelope target, prefixed for the stream target (and kept for the
 * back-to-back seed). */
static void seed(const char *name, const void *p, size_t n)
{
	unsigned char s[STREAM_HDR + PROTO_MAX_FRAME];
	put("fuzz_envelope", name, p, n);
	s[0] = (unsigned char)(n >> 24);
	s[1] = (unsigned char)(n >> 16);
	s[2] = (unsigned char)(n >> 8);
	s[3] = (unsigned char)n;
	memcpy(s + STREAM_HDR, p, n);
	put("fuzz_stream", name, s, STREAM_HDR + n);
	if (all_len + STREAM_HDR + n <= sizeof(all)) {
		memcpy(all + all_len, s, STREAM_HDR + n);
		all_len += STREAM_HDR + n;
	}
}

static void fill(struct pmsg *m, struct precord *r)
{
	for (size_t i = 0; i < r->def->nfields; i++) {
		const struct field_def *f = &r->def->fields[i];
		switch (f->type) {
		case FT_STR:
			prec_set_str(m, r, f->name, f->cls == SC_ANY ? "/run/fcvm" : "netd");
			break;
		case FT_BIN:
			prec_set_bin(m, r, f->name, "\0\1", 2);
			break;
		case FT_UINT:
			prec_set_uint(m, r, f->name, f->max > 1000 ? 1000 : f->max);
			break;
		case FT_INT:
			prec_set_int(m, r, f->name, (int64_t)f->min);
			break;
		case FT_BOOL:
			prec_set_bool(m, r, f->name, true);
			break;
		case FT_STRLIST:
			prec_add_str(m, r, f->name, "cap_net_admin");
			prec_add_str(m, r, f->name, "cap_sys_admin");
			break;
		case FT_RECORDS:
			for (int k = 0; k < 2; k++) {
				struct precord *sub = prec_add_record(m, r, f->name);
				if (sub)
					fill(m, sub);
			}
			break;
		}
	}
}

static void encode_seed(const char *name, const struct pmsg *m)
{
	static unsigned char buf[PROTO_MAX_FRAME];
	struct perr e;
	size_t len;
	if (pmsg_encode(m, buf, sizeof(buf), &len, &e) != PE_OK) {
		fprintf(stderr, "%s: %s\n", name, e.msg);
		exit(1);
	}
	seed(name, buf, len);
}

int main(int argc, char **argv)
{
	static const char *kinds[] = {"req", "rep", "evt"};
	char name[64];
	struct pmsg m;

	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds CORPUS_DIR\n");
		return 2;
	}
	dir = argv[1];
	for (int op = 0; op < OP__COUNT; op++) {
		for (int k = PK_REQUEST; k <= PK_EVENT; k++) {
			if (k == PK_EVENT && op != OP_READY)
				continue;
			pmsg_init(&m, (enum proto_kind)k, (enum proto_op)op, 100u + (unsigned)op);
			fill(&m, &m.body);
			snprintf(name, sizeof(name), "%s-%s", proto_op((enum proto_op)op)->name, kinds[k]);
			encode_seed(name, &m);
			pmsg_free(&m);
		}
	}
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 7);
	pmsg_set_error(&m, PE_DENIED, "'x' is not a helper");
	encode_seed("spawn-error", &m);
	pmsg_free(&m);

	/* malformed or refused */
	static const unsigned char bomb[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0};
	static const unsigned char huge[] = {0xdd, 0x80, 0, 0, 0, 0xc0, 0xc0, 0xc0};
	static const unsigned char str32[] = {0x96, 0x01, 0x00, 0xdb, 0, 0, 0x10, 0, 'p'};
	static const unsigned char version[] = {0x96, 0x02, 0x00, 0xa4, 'p', 'i', 'n', 'g', 0x05, 0x80, 0xc0};
	static const unsigned char unknown[] = {0x96, 0x01, 0x00, 0xa3, 'f', 'o', 'o', 0x05, 0x80, 0xc0};
	static const unsigned char dup[] = {0x96, 0x01, 0x00, 0xa5, 's', 'p', 'a', 'w',	 'n',  0x05,
					    0x82, 0xa6, 'h',  'e',  'l', 'p', 'e', 'r',	 0xa1, 'a',
					    0xa6, 'h',	'e',  'l',  'p', 'e', 'r', 0xa1, 'b',  0xc0};
	static const unsigned char utf8[] = {0x96, 0x01, 0x00, 0xa8, 's', 'h', 'u', 't', 'd',  'o',  'w',  'n', 0x05,
					     0x81, 0xa6, 'r',  'e',  'a', 's', 'o', 'n', 0xa2, 0xc3, 0x28, 0xc0};
	seed("bad-depth", bomb, sizeof(bomb));
	seed("bad-array32", huge, sizeof(huge));
	seed("bad-str32", str32, sizeof(str32));
	seed("bad-version", version, sizeof(version));
	seed("bad-unknown-op", unknown, sizeof(unknown));
	seed("bad-dup-key", dup, sizeof(dup));
	seed("bad-utf8", utf8, sizeof(utf8));
	put("fuzz_envelope", "bad-truncated", dup, sizeof(dup) - 3);

	/* stream only: all frames back to back, a cut tail, bad lengths */
	put("fuzz_stream", "all-back-to-back", all, all_len);
	put("fuzz_stream", "cut-tail", all, all_len > 40 ? 40 : all_len);
	static const unsigned char zero[] = {0, 0, 0, 0, 0xc0};
	static const unsigned char over[] = {0, 1, 0, 1, 0xc0};
	put("fuzz_stream", "len-zero", zero, sizeof(zero));
	put("fuzz_stream", "len-over", over, sizeof(over));
	return 0;
}
