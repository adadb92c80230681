/* The supervisor process: owns all state, brokers client requests to the helpers.
 * No capabilities, seccomp-filtered, driven by one libevent loop. */
#ifndef FCVM_SUPERVISOR_H
#define FCVM_SUPERVISOR_H

#include <event2/event.h>
#include <event2/listener.h>
#include <sys/queue.h>

#include "common/instance.h"
#include "common/quotas.h"
#include "supervisor/peer.h"

enum helper_state { HS_DOWN, HS_STARTING, HS_UP };

struct helper {
	enum helper_id id;
	enum helper_state state;
	struct peer peer;
	pid_t pid;
	uint32_t restarts;
	uint64_t started_mono_ms; /* when the current instance came up */
	uint64_t backoff_ms;	  /* delay before the next restart */
	struct event *restart_timer;
	struct supervisor *sup;
};

struct client;
TAILQ_HEAD(client_list, client);
struct vm;
TAILQ_HEAD(vm_list_head, vm);

struct supervisor {
	const struct instance *inst;
	struct event_base *base;
	struct peer launcher;
	struct helper helpers[HELPER__COUNT];
	struct evconnlistener *listener;
	struct event *sweep; /* closes idle and stuck connections (sup_control.c) */
	struct client_list clients;
	unsigned nclients;
	uint64_t started_ms;
	bool ready_sent;
	bool stopping;
	struct vm_list_head vms;
	int vms_dirfd;		    /* STATE_DIR/vms */
	bool kvm_usable;	    /* a hardware KVM module is loaded (looked at once, at start) */
	char vm_limits[400];	    /* how the launcher holds VMMs to their resources (its ready reply) */
	bool firecracker_installed; /* the launcher found a firecracker binary (its ready reply) */
	unsigned host_cpus;	    /* online CPUs: a VM's default vCPU count is at most this */
	uint64_t cache_max_bytes;   /* the startup cache's bound per user (FCVM_CACHE_MAX_MB; 0: off) */
	struct quotas quotas;	    /* per user (supervisor/quota.c), read as it starts */
	struct event *stop_timer;
	struct event *sig_term, *sig_int;
};

int supervisor_main(const struct instance *inst, int listen_fd, int launcher_fd, int vms_fd);

/* helpers */
void helpers_start(struct supervisor *s);
void helpers_stop(struct supervisor *s);
bool helpers_all_up(const struct supervisor *s);
/* Send req to helper id; cb gets the reply (PE_UNAVAILABLE when it is down). */
void helper_call(struct supervisor *s, enum helper_id id, struct pmsg *req, peer_reply_cb cb, void *arg);

/* control socket */
int control_start(struct supervisor *s, int listen_fd);
void control_stop(struct supervisor *s);

/* lifecycle */
void supervisor_shutdown(struct supervisor *s, const char *why);
void supervisor_check_ready(struct supervisor *s);

#endif
