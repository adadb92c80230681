/* One client connection on the control socket. */
#ifndef FCVM_CLIENT_H
#define FCVM_CLIENT_H

#include <event2/bufferevent.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "proto/proto.h"
#include "supervisor/supervisor.h"

#define CLIENT_MAX_FDS 4

struct client {
	struct supervisor *sup;
	struct bufferevent *bev; /* NULL once the connection is gone; writes (reads: rev) */
	struct event *rev;	 /* readable: recvmsg, for the fds a vm_run carries */
	struct evbuffer *in;	 /* bytes received, not yet a whole frame */
	int fds[CLIENT_MAX_FDS]; /* received, not yet claimed by a frame (oldest first) */
	unsigned nfds;
	uid_t uid; /* from SO_PEERCRED at accept */
	gid_t gid;
	pid_t pid;
	unsigned refs; /* the connection itself + each request still being served */
	unsigned inflight;
	bool paused;	     /* its replies are not being read: its requests are not either */
	uint64_t last_ms;    /* when it last sent anything */
	uint64_t partial_ms; /* since when a frame of it is half in (0: none) */
	TAILQ_ENTRY(client) link;
};

/* Keep c alive while a request is served asynchronously; release when its reply is sent. */
void client_hold(struct client *c);
void client_release(struct client *c);
/* Encode and queue rep (dropped quietly if the client has gone). */
void client_send(struct client *c, const struct pmsg *rep);
/* Answer req with an error (code, printf-style message). Auditing it is the caller's part. */
void client_refuse(struct client *c, const struct pmsg *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Send req's fields to a helper as op hop; answer the client with the helper's reply (its
 * fields, under req's op and id) or its error. fds in the helper's reply are closed. */
void relay_to_helper(struct client *c, const struct pmsg *req, enum helper_id h, enum proto_op hop);

/* The operations clients may ask for (supervisor/sup_ops.c). */
typedef void (*control_fn)(struct client *c, const struct pmsg *req);
enum control_who {
	WHO_ANYONE, /* any local user that can reach the socket */
	WHO_CLIENT, /* a user this instance serves (all users for the system instance; the
		       owner and root for a private one) */
	WHO_OWNER,  /* the user who started the instance, or root */
};
struct control_op {
	enum proto_op op;
	enum control_who who;
	control_fn fn;
};
const struct control_op *control_op_find(enum proto_op op);

/* VM operations (supervisor/sup_vm_ops.c) */
void op_vm_run(struct client *c, const struct pmsg *req);
void op_vm_exec(struct client *c, const struct pmsg *req);
void op_vm_list(struct client *c, const struct pmsg *req);
void op_vm_stop(struct client *c, const struct pmsg *req);
void op_vm_remove(struct client *c, const struct pmsg *req);
void op_vm_logs(struct client *c, const struct pmsg *req);
/* stdin, resize and signals for a client's session; false if ev is none of those */
bool vm_client_event(struct client *c, const struct pmsg *ev);

#endif
