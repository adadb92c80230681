/* libFuzzer target for the stream framing: stream_frame_peek consuming frames from a buffer,
 * each complete frame decoded; and the same bytes read back through the blocking reader
 * (stream_recv_msg on a memfd), which must see the same frames and end the same way. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/stream.h"

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int codes[64];
	size_t nframes = 0, off = 0, n = 0;
	int r;

	while ((r = stream_frame_peek(data + off, size - off, &n)) == 1) {
		struct pmsg m;
		struct perr e;
		if (n == 0 || n > PROTO_MAX_FRAME || n > size - off - STREAM_HDR)
			abort();
		pmsg_decode(&m, data + off + STREAM_HDR, n, &e);
		if (e.code == PE_OK)
			proto_attach_fds(&m, NULL, 0, &e); /* as stream_recv_msg does */
		if (nframes < 64)
			codes[nframes] = e.code;
		nframes++;
		pmsg_free(&m);
		off += STREAM_HDR + n;
	}
	if (r == 0 && size - off >= STREAM_HDR && (n == 0 || n > PROTO_MAX_FRAME || STREAM_HDR + n <= size - off))
		abort(); /* with a whole header, 0 means "the payload is incomplete" and n says how long */

	/* The blocking reader over the same bytes. */
	if (memfd < 0 && (memfd = memfd_create("fuzz_stream", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size || lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	for (size_t i = 0;; i++) {
		struct pmsg m;
		struct perr e;
		int rc = stream_recv_msg(memfd, &m, &e);
		pmsg_free(&m);
		if (rc != 1) {
			int want = r < 0 ? -EPROTO : off == size ? 0 : -EPIPE;
			if (i != nframes || rc != want)
				abort();
			break;
		}
		if (i >= nframes || (i < 64 && e.code != codes[i]))
			abort();
	}
	return 0;
}
