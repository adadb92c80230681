/* VMs: what the supervisor knows of each, and the parts that drive one (the VMM through
 * QMP, the guest agent through its port). The supervisor owns all of it. */
#ifndef FCVM_VM_H
#define FCVM_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "proto/proto.h"
#include "supervisor/peer.h"
#include "supervisor/pending.h"
#include "common/vmconfig.h"

struct supervisor;
struct client;
struct vm;

/* creating: its disk, network and VMM are being made (stop waits for the VMM, rm refuses) */
#define VM_DISK_SIZE (4ull << 30) /* every VM's disk; sparse: only what the guest writes is used */

enum vm_status { VM_BOOTING, VM_RUNNING, VM_STOPPING, VM_STOPPED, VM_LOST, VM_CREATING };
const char *vm_status_name(enum vm_status s);

/* ---- the agent's port (supervisor/agent_link.c) ---- */
typedef void (*agent_reply_cb)(struct vm *vm, struct pmsg *reply, void *arg);

struct agent_link {
	struct bufferevent *bev;
	bool synced; /* the sync marker has been seen: frames follow */
	struct pending_table calls;
	unsigned bad;	/* this connection's frames that broke the protocol */
	size_t skipped; /* bytes skipped looking for the sync marker, since it was last seen */
	bool garbage;	/* dropped for what it sent: the VM is unhealthy for good */
};

int agent_link_open(struct vm *vm);   /* connect to the VM's agent socket and say hello */
void agent_link_close(struct vm *vm); /* fails pending calls */
/* A request to the agent; cb gets its reply (PE_UNAVAILABLE if the link goes first, an error
 * if none comes within AGENT_CALL_TIMEOUT_MS). agent_call_within: timeout_ms of its own (0:
 * none, for what another deadline covers). */
#define AGENT_CALL_TIMEOUT_MS 30000
void agent_call(struct vm *vm, struct pmsg *req, agent_reply_cb cb, void *arg);
void agent_call_within(struct vm *vm, struct pmsg *req, int timeout_ms, agent_reply_cb cb, void *arg);
void agent_send_event(struct vm *vm, const struct pmsg *ev); /* kept in order until the VM runs */
void agent_flush_events(struct vm *vm);
/* The guest sent what no agent sends (what): logged, rate-limited per VM; past a bound the
 * link is dropped, the VM marked unhealthy and stopped. */
void agent_bad(struct vm *vm, const char *what);
/* What the guest made happen, worth a line: logged, rate-limited per VM, not counted. */
void agent_audit(struct vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* it runs: what was kept goes */

/* ---- QMP (supervisor/qmp.c) ---- */
struct qmp;
/* ret: the command's "return" (borrowed, for the callback's time), NULL on failure */
typedef void (*qmp_reply_cb)(struct vm *vm, bool ok, const char *error, json_t *ret, void *arg);
int qmp_open(struct vm *vm);
void qmp_close(struct vm *vm);
void qmp_command(struct vm *vm, const char *cmd, qmp_reply_cb cb, void *arg);
/* CMD with ARGS (taken; NULL: none) and, if FD >= 0, FD passed with it (getfd). */
void qmp_execute(struct vm *vm, const char *cmd, json_t *args, int fd, qmp_reply_cb cb, void *arg);

/* ---- sessions: processes whose output somebody wants ---- */
struct vm_session {
	uint32_t sid;	       /* on the agent, and towards the client (the same number) */
	struct client *client; /* output goes there; NULL when nobody is attached */
	bool is_run;	       /* the container itself: output also goes to the VM's log */
	uint64_t offset;       /* output bytes received so far */
	bool exited;
	bool resync;	  /* re-attached: take the agent's next offset as where we are */
	bool ack_waiting; /* output passed to a slow client: acknowledge when it drains */
	int exit_code, exit_signal;
	TAILQ_ENTRY(vm_session) link;
};
TAILQ_HEAD(vm_session_list, vm_session);

#define CLIENT_HIGH_WATER (256 * 1024) /* bytes queued to a client before acks (and logs) wait */
#define CHUNK_MAX_LOG	  4096	       /* a log record's bytes: one proc_output chunk */

TAILQ_HEAD(vm_waiter_list, vm_waiter);

/* ---- the VM's network (supervisor/vm_net.c) ---- */
#define VM_PORTS_MAX 16
struct vm_net {
	bool made;	    /* netd made it: net_destroy once the VMM is gone */
	char host_if[16];   /* bridged: the host end of its veth */
	char host_addr[16]; /* bridged: that end's address */
	char guest_ip[16];
	char ports[VM_PORTS_MAX][40]; /* [IP:]HOST:GUEST/PROTO, for listings */
	unsigned nports;
};

struct vm {
	struct supervisor *sup;
	char name[65];	  /* its owner's name for it: two users may both have "web" */
	char dirname[65]; /* STATE_DIR/vms/DIRNAME: its id (a predecessor's record: its name) */
	char id[33];
	char image[257];
	uid_t owner;
	enum vm_status status;
	char health[16];
	char limits[400]; /* its VMM's host resource limits, as the launcher set them */
	uint64_t created_ms, spawned_mono_ms, boot_ms;
	struct vm_config qc;
	char network[16]; /* bridged | rootless | none */
	struct vm_net net;
	pid_t pid;     /* the VMM's */
	uid_t vmm_uid; /* the uid the launcher ran it as (its own, system mode) */
	int exit_code; /* the container's, -1 until it exits */
	bool remove_on_stop;
	bool foreground;	  /* a run with its client attached (not -d): it ends with it */
	unsigned rm_tries;	  /* removals of its disk stored could not take (restarting) */
	bool container_ran;	  /* the agent said its container runs (an exec need not wait) */
	bool stop_on_start;	  /* stopped while it was created: stopped once its VMM runs */
	bool reattached;	  /* found running by a restarted supervisor */
	bool removing;		  /* its disk is being removed: gone from listings */
	struct client *rm_waiter; /* `fcvm rm` is answered once everything is gone */
	struct pmsg rm_reply;
	bool disk_made;
	int dirfd;		       /* STATE/vms/ID */
	int ram_fd;		       /* the guest's RAM (memfd) while the VMM runs; -1 after a supervisor restart */
	int image_fd;		       /* its image disk, likewise: a snapshot keeps a copy */
	char clone_of[65];	       /* a clone: its snapshot's tag */
	struct vmm_op *vmm_op;	       /* the VMM saving or restoring (vmm_qemu.c) */
	bool identity_set;	       /* a clone's agent acknowledged agent_restore */
	struct snapshot_job *snapshot; /* a snapshot being taken of it (snapshot.c) */
	struct {		       /* the startup cache (startup_cache.c) */
		char build[3][48];     /* entries to take on its way up, by level ("": none) */
		bool busy;	       /* a boot entry is being taken: the container's start waits */
		bool from;	       /* started from an entry: a clone that keeps the guest's hostname */
		bool release;	       /* from a start entry: its held container is let go */
	} cache;
	int log_fd;		    /* the container's output, records of [stream u8][len u32 BE][bytes] */
	uint64_t log_size, log_max; /* output.log's, and where it becomes output.log.1 */
	unsigned log_gen;	    /* rotations so far: a follower moves on to the new file */
	struct agent_link agent;
	struct evbuffer *agent_queue; /* events for the agent before the VM runs (agent_send_event) */
	bool agent_up;
	struct qmp *qmp;
	struct pmsg run_start; /* proc_start for the container, sent once the agent answers */
	bool run_started;
	struct vm_session_list sessions;
	struct vm_waiter_list waiters; /* until its container runs (vm_wait.c) */
	uint32_t next_sid;
	struct event *timer;	    /* boot deadline, then stop deadline, then removal retries */
	struct event *health_timer; /* asks the agent how the container is, while running */
	TAILQ_ENTRY(vm) link;
};

/* The network fields of a vm_run request: the mode (default: bridged in system mode,
 * rootless otherwise) into vm->network and, unless none, netd's net_create into net_req.
 * 0, or -errno with a message for the client. */
int vm_net_parse(struct vm *vm, struct pmsg *net_req, const struct precord *req, char *err, size_t n);
/* netd's reply: the guest's addresses into vm->qc.net, the tap, netns and userns fds into fds. */
int vm_net_made(struct vm *vm, struct pmsg *rep, int fds[3]);
/* Ask the launcher for pasta in the VM's namespaces (rootless), with net_req's ports. */
void vm_net_pasta(struct vm *vm, const struct pmsg *net_req, int userns_fd, int netns_fd, peer_reply_cb cb, void *arg);
void vm_net_release(struct vm *vm); /* the VMM is gone: netd removes what is left on the host */
void vm_net_list(const struct vm *vm, struct pmsg *rep, struct precord *r); /* ls fields */

/* ---- waiting for the container to run (supervisor/vm_wait.c) ---- */
/* exec req again once the container runs (vm_only: once the agent answers); false: no memory */
bool vm_wait_exec(struct vm *vm, struct client *c, const struct pmsg *req, bool vm_only);
/* a detached run's reply, sent once the container runs */
bool vm_wait_run(struct vm *vm, struct client *c, const struct pmsg *rep);
void vm_wait_ready(struct vm *vm, bool container); /* the agent answers / the container runs */
void vm_wait_ended(struct vm *vm);		   /* the VM stopped: each is answered why */
void vm_wait_check(struct vm *vm);		   /* those past their bound are refused */

/* ---- records, re-attach after a supervisor restart (supervisor/vm_record.c) ---- */
void vm_record_save(struct vm *vm);
int vm_records_load(struct supervisor *s);    /* before the sandbox: VMs from vms/ID/vm.json */
void vm_records_attach(struct supervisor *s); /* once the loop runs: connect to each */

/* ---- clones (supervisor/vm_clone.c) ---- */
/* The clone's VMM runs, paused: load its device state (x-ignore-shared: the RAM is the
 * template it maps), then let it run. Failing, the VM is stopped. */
void clone_restore(struct vm *vm);
/* The agent answered: tell it it is a clone (clock, entropy, hostname, neighbours); once it
 * acknowledges, vm->identity_set and vm_agent_ready again. */
void clone_identity(struct vm *vm);

/* ---- lifecycle (supervisor/vm.c) ---- */
struct event *vm_timer_new(struct vm *vm); /* the VM's boot/stop timer */
/* A non-blocking connection to the UNIX socket NAME in the VM's directory (fd or -errno). */
int vm_connect(const struct vm *vm, const char *name);
void vm_boot_deadline(struct vm *vm); /* stop it if the agent does not answer in time */
/* The VM a client (uid) means by name: its own, or for root anybody's (supervisor/vm.c);
 * NULL, with err set when the name is ambiguous (else left alone). */
struct vm *vm_find_for(struct supervisor *s, uid_t uid, const char *name, char *err, size_t n);
/* owner's VM of that name. */
struct vm *vm_find_own(struct supervisor *s, uid_t owner, const char *name);
/* Start a VM for client c as asked by req (vm_run, with the image fd); answers c. */
void vm_run(struct client *c, const struct pmsg *req);
void vm_stop(struct vm *vm, const char *why);
void vm_remove(struct vm *vm); /* a stopped VM's files and disk */
/* The same for a client's `rm`: answered (c held until then) when everything is gone. */
void vm_remove_for(struct vm *vm, struct client *c, const struct pmsg *req);
/* The VMM is gone (QMP or agent EOF after stop, or a crash). */
void vm_vmm_gone(struct vm *vm);
/* The agent answered hello: the VM is up. */
void vm_agent_ready(struct vm *vm, const struct precord *hello);
/* Events from the agent. */
void vm_on_output(struct vm *vm, const struct precord *ev);
void vm_on_exit(struct vm *vm, const struct precord *ev);
/* A client connection is going away: detach it from every session and follower list. */
void vm_client_gone(struct supervisor *s, struct client *c);
void vm_client_drained(struct supervisor *s, struct client *c);
/* A session or a log reader of c's exists (its connection is not idle). */
/* The container's output log, bounded: past log_max bytes output.log becomes output.log.1
 * (supervisor/vm_io.c); vm_log_open_new makes an empty output.log in the VM's directory. */
#define VM_LOG_MAX_DEFAULT (32ull << 20)
int vm_log_open_new(struct vm *vm);
/* msg on the stderr of every session somebody is attached to (supervisor/vm_io.c) */
void vm_say_to_sessions(struct vm *vm, const char *msg);
bool vm_client_attached(struct supervisor *s, const struct client *c);
/* Events to a client for its session sid (supervisor/vm_io.c). */
void vm_send_output(struct client *c, uint32_t sid, unsigned stream, uint64_t offset, const void *data, size_t n);
void vm_send_exit(struct client *c, uint32_t sid, int code, int sig, uint64_t offset);
/* A proc_start for session sid of kind run/exec/vm, with the command and stdio fields of
 * a client's vm_run or vm_exec request. */
void vm_proc_start(struct pmsg *m, uint32_t sid, const char *kind, const struct precord *from);
/* ---- the container's log to `fcvm logs` (supervisor/vm_logs.c): from the file, as fast as
 * each reader's connection drains ---- */
void vm_logs_start(struct vm *vm, struct client *c, uint32_t sid, bool follow);
void vm_logs_appended(struct vm *vm); /* a record more in its log: followers get it */
void vm_logs_vm_ended(struct vm *vm); /* followers finish the file, then get the exit */
void vm_logs_client_drained(struct client *c);
void vm_logs_client_gone(struct client *c);
bool vm_logs_client_reads(const struct client *c);
void vm_stop_all(struct supervisor *s);
bool vm_all_gone(const struct supervisor *s);

struct vm_session *vm_session_new(struct vm *vm, struct client *c, bool is_run);
struct vm_session *vm_session_find(struct vm *vm, uint32_t sid);
struct vm_session *vm_session_of_client(struct supervisor *s, struct client *c, uint32_t sid, struct vm **vmp);

#endif
