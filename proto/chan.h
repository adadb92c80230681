/* Supervisor <-> helper channel: AF_UNIX SOCK_SEQPACKET, one frame per message, file
 * descriptors beside it as SCM_RIGHTS. */
#ifndef FCVM_CHAN_H
#define FCVM_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "proto/proto.h"

/* socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC). Returns 0 or -errno. */
int chan_pair(int sv[2]);

/* Send one frame (len 1..PROTO_MAX_FRAME) with up to PROTO_MAX_FDS fds.
 * Returns 0 or -errno (-EMSGSIZE for an oversize frame, -EPIPE if the peer is gone). */
int chan_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/* Receive one frame. Received fds arrive with O_CLOEXEC (MSG_CMSG_CLOEXEC).
 * Returns the frame length (> 0); 0 on end of stream (peer closed);
 * -EPROTO if the frame or its control data was truncated (MSG_TRUNC/MSG_CTRUNC) or the
 * control data is not SCM_RIGHTS; in that case every fd that did arrive is closed;
 * -EAGAIN on a non-blocking socket with nothing to read; other -errno. */
long chan_recv(int sock, void *buf, size_t cap, int *fds, size_t maxfds, size_t *nfds);

/* The fds a received message carries (SCM_RIGHTS), whoever reads it: up to max into fds,
 * every further one closed at once (none can leak). Returns how many came in all; *other
 * (if not NULL) says whether control data other than SCM_RIGHTS came too. */
size_t chan_take_fds(const struct msghdr *mh, int *fds, size_t max, bool *other);

/* Encode m and send it with m's fds (the fds stay owned by m). Returns 0 or -errno
 * (-EINVAL if m does not fit its schema; e may be NULL). */
int chan_send_msg(int sock, const struct pmsg *m, struct perr *e);

/* Receive, decode, validate and attach fds. Returns:
 *   1 and PE_OK in e->code: a valid message in m;
 *   1 and another e->code: a frame was read but refused (PE_UNKNOWN_OP, PE_INVALID,
 *     PE_VERSION: answer with an error reply; PE_MALFORMED: close the channel);
 *   0: end of stream; -errno: receive error (-EPROTO: truncation, close the channel).
 * m must be pmsg_free'd when 1 is returned. */
int chan_recv_msg(int sock, struct pmsg *m, struct perr *e);

#endif
