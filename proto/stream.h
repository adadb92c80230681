/* Length-prefixed framing on byte streams (client <-> supervisor, supervisor <-> agent):
 * a 4-byte big-endian length (1..PROTO_MAX_FRAME) followed by that many bytes of msgpack. */
#ifndef FCVM_STREAM_H
#define FCVM_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "proto/proto.h"

#define STREAM_HDR 4

/* Written by the guest agent right before its agent_hello reply: a zero length can never
 * start a frame, so a host that reconnected mid-frame skips up to it (docs/agent-protocol.md). */
#define AGENT_SYNC_MARKER     "\0\0\0\0fcvm-sync-v1"
#define AGENT_SYNC_MARKER_LEN 16

/* Look at buffered bytes. Returns 1 if a whole frame is present (*payload_len set; the frame
 * occupies STREAM_HDR + *payload_len bytes), 0 if more bytes are needed, -1 if the header
 * announces an invalid length (0 or > PROTO_MAX_FRAME): close the stream. */
int stream_frame_peek(const void *buf, size_t len, size_t *payload_len);

/* Blocking write of one frame of len payload bytes (retries on EINTR): 0, -EMSGSIZE for an
 * empty or oversized payload, -EPIPE if the peer is gone, or -errno. */
int stream_write_frame(int fd, const void *buf, size_t len);

/* Encode m as one whole frame (header + payload) into buf, for event-loop writers.
 * Returns 0 and *len, or -EMSGSIZE / -EINVAL (schema, or fds that cannot travel on a stream). */
int stream_encode(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e);

/* Encode+write / read+decode a message (no fds on streams), blocking, retrying on EINTR. recv
 * returns like chan_recv_msg: 1 (check e->code), 0 on EOF at a frame boundary, -errno:
 * -EPROTO for an invalid length, -EPIPE on EOF mid-frame. */
int stream_send_msg(int fd, const struct pmsg *m, struct perr *e);
int stream_recv_msg(int fd, struct pmsg *m, struct perr *e);

/* The one exception to "no fds on streams": a client's request whose op declares fds (the
 * image of vm_run), sent on a UNIX stream socket with the fds beside the frame's first byte
 * (the supervisor claims them for the frame that needs them). 0 or -errno. */
int stream_send_msg_fds(int sock, const struct pmsg *m, struct perr *e);

#endif
