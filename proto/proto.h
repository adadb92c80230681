/* fcvm wire protocol: msgpack envelope, schema-driven encode/validate.
 *
 * Every message is one msgpack array:
 *   [version, kind, op, id, body, error]
 *     version  uint   PROTO_VERSION
 *     kind     uint   enum proto_kind
 *     op       str    operation name (schema key)
 *     id       uint   request id, echoed in the reply (0..UINT32_MAX)
 *     body     map    field name -> value, per the op's request/reply record; nil on error replies
 *     error    nil | [code uint, message str]   (replies only)
 *
 * The schema (proto/ops.c) declares each operation once; the same table drives encoding
 * (a message that does not fit its schema is never sent) and decoding (a message that does
 * not fit is refused). Unknown fields are refused, not ignored.
 */
#ifndef FCVM_PROTO_H
#define FCVM_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1

/* Hard limits. Decoding checks them on the raw bytes before msgpack-c allocates anything. */
#define PROTO_MAX_FRAME	 (64 * 1024) /* bytes in one frame (seqpacket message or stream frame) */
#define PROTO_MAX_STR	 4096	     /* bytes in one string or binary field */
#define PROTO_MAX_ARRAY	 256	     /* elements in one array or map */
#define PROTO_MAX_DEPTH	 6	     /* nesting of arrays/maps, envelope included */
#define PROTO_MAX_FIELDS 32	     /* fields in one record (at most 32: a bitmask) */
#define PROTO_MAX_FDS	 12	     /* file descriptors beside one frame (a VMM's start takes 8) */

enum proto_kind { PK_REQUEST = 0, PK_REPLY = 1, PK_EVENT = 2 };

/* Error codes carried in replies, and returned by the decode functions. */
enum proto_err {
	PE_OK = 0,
	PE_MALFORMED = 1,   /* not a valid frame/envelope: the channel must be closed */
	PE_UNKNOWN_OP = 2,  /* op name not in the schema */
	PE_DENIED = 3,	    /* op not allowed for this peer/process/state */
	PE_INVALID = 4,	    /* body does not fit the op's schema, or a bad value */
	PE_UNAVAILABLE = 5, /* the helper that serves it is down */
	PE_INTERNAL = 6,
	PE_NOT_IMPLEMENTED = 7, /* known op, not served by this process */
	PE_NOT_FOUND = 8,
	PE_EXISTS = 9,
	PE_NO_SPACE = 10,
	PE_BUSY = 11,
	PE_VERSION = 12, /* protocol version mismatch */
};
const char *proto_err_name(int code);

enum field_type {
	FT_STR,	 /* UTF-8 text, no NUL; min/max = length in bytes; see str_class */
	FT_BIN,	 /* raw bytes; min/max = length */
	FT_UINT, /* min/max = value range */
	FT_INT,	 /* min/max = value range, as int64 cast to uint64 */
	FT_BOOL,
	FT_STRLIST, /* array of str (each checked with str_class and elem_max); min/max = count */
	FT_RECORDS, /* array of maps, each a record of `rec`; min/max = count */
};

enum str_class {
	SC_TEXT = 0, /* any printable UTF-8 text (no control chars besides \t) */
	SC_IDENT,    /* [A-Za-z0-9][A-Za-z0-9_.-]* and not "." / ".." : object names */
	SC_ANY,	     /* any bytes except NUL (e.g. command arguments) */
};

struct record_def;

struct field_def {
	const char *name;
	enum field_type type;
	bool required;
	uint64_t min, max;
	enum str_class cls;	      /* FT_STR, FT_STRLIST */
	uint32_t elem_max;	      /* FT_STRLIST: max length of each string */
	const struct record_def *rec; /* FT_RECORDS */
};

struct record_def {
	const struct field_def *fields;
	size_t nfields;
};

/* Kinds of file descriptor a receiver can insist on (proto/fdkind.c checks them). */
enum fd_kind {
	FDK_NONE = 0,
	FDK_ANY,
	FDK_FILE, /* regular file */
	FDK_DIR,
	FDK_NETNS,	 /* nsfs, NS_GET_NSTYPE == CLONE_NEWNET */
	FDK_USERFAULTFD, /* anon_inode:[userfaultfd] */
	FDK_TAP,	 /* /dev/net/tun */
	FDK_SEQPACKET,	 /* AF_UNIX SOCK_SEQPACKET socket */
	FDK_SOCKET,	 /* any socket */
	FDK_USERNS,	 /* nsfs, NS_GET_NSTYPE == CLONE_NEWUSER */
	FDK_MEMFD,	 /* a memfd (shmem file that takes seals) */
};

enum proto_op {
	OP_PING,
	OP_STATUS,
	OP_VERSION,
	/* launcher <-> supervisor */
	OP_SPAWN,
	OP_READY,
	OP_SHUTDOWN,
	/* client -> supervisor: disks (no fds on the client's stream) */
	OP_DISK_CREATE,
	OP_DISK_CLONE,
	OP_DISK_REMOVE,
	OP_DISK_LIST,
	/* supervisor -> stored: the same acts; create/clone answer with the disk's fd */
	OP_STORE_CREATE,
	OP_STORE_CLONE,
	OP_STORE_REMOVE,
	OP_STORE_LIST,
	/* base images: client ops, and stored's (import carries the image's bytes as an fd) */
	OP_IMAGE_IMPORT,
	OP_IMAGE_LIST,
	OP_IMAGE_REMOVE,
	OP_STORE_IMAGE_IMPORT,
	OP_STORE_IMAGE_LIST,
	OP_STORE_IMAGE_REMOVE,
	/* supervisor -> launcher: start one VMM process with its fds (supervisor/launcher_vmm.c) */
	OP_VMM_SPAWN,
	OP_VMM_SPAWN_NET, /* the same with the VM's tap as the last fd */
	/* supervisor -> netd: a VM's network (docs/networking.md); the tap, netns and userns
	 * come back as fds */
	OP_NET_CREATE,
	OP_NET_DESTROY,
	/* supervisor -> launcher: pasta for a rootless VM network, tied to its VMM's life */
	OP_PASTA_SPAWN,
	/* supervisor <-> guest agent, on the VM's byte stream (docs/agent-protocol.md); the
	 * proc_* events also travel between a client and the supervisor for that client's session */
	OP_AGENT_HELLO,
	OP_AGENT_HEALTH,
	OP_AGENT_SHUTDOWN,
	OP_PROC_START,
	OP_PROC_INPUT,
	OP_PROC_RESIZE,
	OP_PROC_SIGNAL,
	OP_PROC_OUTPUT,
	OP_PROC_ACK,
	OP_PROC_EXIT,
	OP_PROC_RELEASE,
	/* client -> supervisor: VMs */
	OP_VM_RUN,
	OP_VM_EXEC,
	OP_VM_LIST,
	OP_VM_STOP,
	OP_VM_REMOVE,
	OP_VM_LOGS,
	/* appended, so that the agent's op numbers stay as the guest assets have them */
	OP_VMM_RESTORE, /* a clone from a snapshot */
	OP_VMM_RESTORE_NET,
	/* client -> supervisor: snapshots and clones (docs/snapshots.md) */
	OP_SNAPSHOT_CREATE,
	OP_SNAPSHOT_RUN,
	OP_SNAPSHOT_LIST,
	OP_SNAPSHOT_REMOVE,
	/* supervisor -> stored: snapshots/TAG, built in steps while the VM is paused */
	OP_STORE_SNAP_BEGIN,  /* answers with the device state's file, to be written by QEMU */
	OP_STORE_SNAP_COMMIT, /* the RAM and the image as fds, the disk by name: publish */
	OP_STORE_SNAP_ABORT,
	OP_STORE_SNAP_OPEN, /* a clone's template RAM, state, own disk and image */
	OP_STORE_SNAP_LIST,
	OP_STORE_SNAP_REMOVE,
	/* supervisor -> agent: a clone's first request, before any other (docs/snapshots.md) */
	OP_AGENT_RESTORE,

	OP_SNAPSHOT_PRUNE, /* the caller's startup-cache entries (supervisor/startup_cache.c) */
	OP_CONTAINER_HELD, /* agent -> supervisor: the container waits before its process starts */
	OP_CONTAINER_GO,   /* supervisor -> agent: let it start */
	/* supervisor -> uffdd: serve a clone's memory over userfaultfd (docs/uffdd.md) */
	OP_UFFD_SERVE, /* its listening socket and the snapshot's memory file as fds */
	OP_UFFD_STOP,
	OP_UFFD_STATS,
	OP__COUNT
};

struct op_def {
	enum proto_op id;
	const char *name;
	struct record_def req;
	struct record_def rep;
	uint8_t nfds_req; /* exact number of fds beside a request */
	enum fd_kind fdk_req[PROTO_MAX_FDS];
	uint8_t nfds_rep; /* exact number of fds beside a successful reply */
	enum fd_kind fdk_rep[PROTO_MAX_FDS];
};

const struct op_def *proto_op(enum proto_op id);
const struct op_def *proto_op_by_name(const char *name, size_t len);

/* ---- decoded / to-be-encoded values ---- */

struct precord;

struct pval {
	union {
		uint64_t u;
		int64_t i;
		bool b;
		struct {
			const char *p;
			uint32_t n;
		} s; /* FT_STR (NUL-terminated copy), FT_BIN */
		struct {
			const char **v;
			uint32_t n;
		} list; /* FT_STRLIST */
		struct {
			struct precord *v;
			uint32_t n;
		} recs; /* FT_RECORDS */
	};
};

struct precord {
	const struct record_def *def;
	uint32_t present; /* bit i set: def->fields[i] has a value */
	struct pval v[PROTO_MAX_FIELDS];
};

/* Bump allocator owned by a message; bounded (strings and records of one message). */
struct parena {
	unsigned char *buf;
	size_t used, cap;
};

struct pmsg {
	uint8_t kind;
	const struct op_def *op;
	uint32_t id;
	int32_t err_code;    /* replies: PE_OK or an error */
	const char *err_msg; /* replies with err_code != PE_OK */
	struct precord body; /* def = op->req for requests/events, op->rep for replies */
	int fds[PROTO_MAX_FDS];
	uint8_t nfds; /* owned by the message: closed by pmsg_free unless taken */
	struct parena arena;
};

/* Initialise a message to build. Returns 0, or -1 (unknown op). */
int pmsg_init(struct pmsg *m, enum proto_kind kind, enum proto_op op, uint32_t id);
/* Initialise a reply to req (same op and id; ping's op when req's op was unknown, for the
 * error reply that is all such a request can get). */
void pmsg_init_reply(struct pmsg *reply, const struct pmsg *req);
/* Make m an error reply (clears body). printf-style message, truncated to PROTO_MAX_STR. */
void pmsg_set_error(struct pmsg *m, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pmsg_free(struct pmsg *m); /* closes owned fds, frees arena; m may be re-initialised */
/* pmsg_init_reply then pmsg_set_error: rep becomes the error reply to req (proto/reply.c).
 * Whoever refuses still logs or audits it; this only builds the message. */
void pmsg_refuse(struct pmsg *rep, const struct pmsg *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pmsg_vrefuse(struct pmsg *rep, const struct pmsg *req, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* The protocol code for a negative errno: EEXIST/EADDRINUSE -> exists, ENOENT -> not-found,
 * ENOSPC/EDQUOT -> no-space, EINVAL/ENAMETOOLONG/EADDRNOTAVAIL -> invalid, EBUSY -> busy,
 * ELOOP/EXDEV/EPERM/EACCES -> denied, anything else -> internal. */
int proto_code_from_errno(int neg_errno);

/* Attach an fd (ownership passes to the message). Returns 0 or -1 if full. */
int pmsg_add_fd(struct pmsg *m, int fd);
/* Take fd i out of the message (caller owns it; the message will not close it). */
int pmsg_take_fd(struct pmsg *m, unsigned i);

/* Setters: look the field up by name in r->def; copy data into m's arena.
 * Return 0, or -1 if the field does not exist / has another type / arena full.
 * Bounds are checked at encode time, not here. */
int prec_set_str(struct pmsg *m, struct precord *r, const char *field, const char *s);
int prec_set_bin(struct pmsg *m, struct precord *r, const char *field, const void *p, size_t n);
int prec_set_uint(struct pmsg *m, struct precord *r, const char *field, uint64_t v);
int prec_set_int(struct pmsg *m, struct precord *r, const char *field, int64_t v);
int prec_set_bool(struct pmsg *m, struct precord *r, const char *field, bool v);
int prec_add_str(struct pmsg *m, struct precord *r, const char *field, const char *s); /* FT_STRLIST append */
struct precord *prec_add_record(struct pmsg *m, struct precord *r, const char *field); /* FT_RECORDS append */

/* Copy every field src has into dst, by field name (dst's definition must name them:
 * e.g. a request relayed under another op with the same fields). 0, or -1. */
int prec_copy(struct pmsg *m, struct precord *dst, const struct precord *src);
/* The same for the fields of src named in names only. 0, or -1. */
int prec_copy_fields(struct pmsg *m, struct precord *dst, const struct precord *src, const char *const *names,
		     size_t n);

/* Getters: NULL/false if absent or of another type. */
const char *prec_str(const struct precord *r, const char *field);
const void *prec_bin(const struct precord *r, const char *field, size_t *n);
bool prec_uint(const struct precord *r, const char *field, uint64_t *out);
bool prec_bool(const struct precord *r, const char *field, bool *out);
const struct pval *prec_get(const struct precord *r, const char *field); /* any type */
bool prec_has(const struct precord *r, const char *field);

/* Why a message was refused, for error replies and logs. */
struct perr {
	int code; /* enum proto_err */
	char msg[256];
};

/* Encode m into buf (validating it against its schema first).
 * Returns PE_OK and *len, or PE_INVALID (schema violation; e->msg says which field) or
 * PE_NO_SPACE (buffer too small). */
int pmsg_encode(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e);

/* pmsg_encode for senders: 0, -EMSGSIZE (does not fit cap) or -EINVAL (schema; e says why). */
int pmsg_encode_frame(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e);

/* Decode and validate one frame into m (initialised here; pmsg_free it afterwards, on
 * success or failure). Returns:
 *   PE_OK;
 *   PE_MALFORMED  - bytes are not a valid envelope, or break a hard limit: close the channel;
 *   PE_VERSION    - envelope fine but another protocol version;
 *   PE_UNKNOWN_OP - envelope fine, op unknown (m->kind and m->id are set so a reply can go back);
 *   PE_INVALID    - op known (m->op set), body does not fit the schema.
 * fds are not touched (see proto_attach_fds). */
int pmsg_decode(struct pmsg *m, const void *buf, size_t len, struct perr *e);

/* Check received fds against what m's op declares (count and kinds, for its kind and error
 * state), and move them into m. On mismatch every fd is closed and PE_INVALID returned. */
int proto_attach_fds(struct pmsg *m, int *fds, size_t nfds, struct perr *e);

/* Pre-scan raw msgpack bytes against the hard limits (depth, counts, lengths, exact size).
 * Returns 0 if the buffer holds exactly one well-formed object within the limits. */
int proto_prescan(const void *buf, size_t len);

/* ---- helpers shared inside proto/ (usable by callers too) ---- */

/* Do the n bytes at p fit string class cls (no NUL byte in any class)? */
bool proto_str_ok(const char *p, size_t n, enum str_class cls);

/* Check fds against what m's op declares for m's kind and error state; closes nothing.
 * Returns PE_OK, or PE_INVALID with e->msg saying why (e may be NULL). */
int proto_check_fds(const struct pmsg *m, const int *fds, size_t nfds, struct perr *e);

/* n zeroed bytes from a message's arena (16-byte aligned); NULL once the arena's bound
 * (4 * PROTO_MAX_FRAME bytes per message) would be passed. */
void *parena_alloc(struct parena *a, size_t n);

/* Elements allocated for an FT_STRLIST/FT_RECORDS value: the field's maximum count (at most
 * PROTO_MAX_ARRAY), or n if that is more. Setters append up to the field's maximum only, so
 * a record returned by prec_add_record never moves. */
size_t proto_list_cap(const struct field_def *f, size_t n);

#endif
