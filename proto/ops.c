/* The schema: every operation declared once. Encoding and decoding both validate against
 * this table (proto/codec.c), so a field's bounds live here and nowhere else. */
#include <string.h>

#include "proto/proto.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define REC(f)                                                                                                         \
	{                                                                                                              \
		.fields = (f), .nfields = ARRAY_LEN(f)                                                                 \
	}
#define REC_EMPTY                                                                                                      \
	{                                                                                                              \
		.fields = NULL, .nfields = 0                                                                           \
	}

#define F_STR(n, req, lo, hi, c)                                                                                       \
	{                                                                                                              \
		.name = (n), .type = FT_STR, .required = (req), .min = (lo), .max = (hi), .cls = (c)                   \
	}
#define F_UINT(n, req, lo, hi)                                                                                         \
	{                                                                                                              \
		.name = (n), .type = FT_UINT, .required = (req), .min = (lo), .max = (hi)                              \
	}
#define F_BOOL(n, req)                                                                                                 \
	{                                                                                                              \
		.name = (n), .type = FT_BOOL, .required = (req)                                                        \
	}
#define F_STRLIST(n, req, maxn, elem, c)                                                                               \
	{                                                                                                              \
		.name = (n), .type = FT_STRLIST, .required = (req), .min = 0, .max = (maxn), .elem_max = (elem),       \
		.cls = (c)                                                                                             \
	}
#define F_RECORDS(n, req, maxn, r)                                                                                     \
	{                                                                                                              \
		.name = (n), .type = FT_RECORDS, .required = (req), .min = 0, .max = (maxn), .rec = (r)                \
	}

#define HELPER_NAME_MAX 16

/* Identity of one fcvm process, as it reports itself (and as the supervisor adds to it). */
static const struct field_def proc_info_fields[] = {
    F_STR("name", true, 1, HELPER_NAME_MAX, SC_IDENT),
    F_UINT("pid", true, 0, INT32_MAX),
    F_UINT("uid", true, 0, UINT32_MAX),
    F_UINT("gid", true, 0, UINT32_MAX),
    F_UINT("capeff", true, 0, UINT64_MAX),	/* effective capability mask */
    F_STRLIST("caps", false, 64, 32, SC_IDENT), /* the same, as names (absent: none) */
    F_UINT("seccomp", true, 0, 2),		/* 0 off, 1 strict, 2 filter */
    F_BOOL("no_new_privs", true),
    F_BOOL("dumpable", true),
    F_STR("mode", true, 1, 16, SC_IDENT),      /* system | rootless */
    F_UINT("started_ms", true, 0, UINT64_MAX), /* CLOCK_REALTIME, milliseconds */
    F_UINT("uptime_ms", false, 0, UINT64_MAX), /* filled by the supervisor */
    F_UINT("restarts", false, 0, UINT32_MAX),  /* filled by the supervisor */
    F_STR("state", false, 1, 16, SC_IDENT),    /* up | down | starting */
};
static const struct record_def proc_info = REC(proc_info_fields);

/* ping: to a helper, it answers with its identity. To the supervisor with "helper" set, the
 * supervisor forwards the ping to that helper (a full client -> supervisor -> helper trip). */
static const struct field_def ping_req[] = {
    F_STR("helper", false, 1, HELPER_NAME_MAX, SC_IDENT),
};

static const struct field_def status_rep[] = {
    F_STR("version", true, 1, 64, SC_TEXT),	 F_STR("mode", true, 1, 16, SC_IDENT),
    F_STR("state_dir", true, 1, 4096, SC_ANY),	 F_STR("socket", true, 1, 4096, SC_ANY),
    F_UINT("owner_uid", true, 0, UINT32_MAX),	 F_RECORDS("processes", true, 8, &proc_info),
    F_RECORDS("launcher", false, 1, &proc_info),
};

static const struct field_def version_rep[] = {
    F_STR("version", true, 1, 64, SC_TEXT),
    F_UINT("protocol", true, 0, UINT32_MAX),
};

/* spawn: supervisor asks the launcher to (re)start one helper; the reply carries the
 * supervisor's end of the new channel. */
static const struct field_def spawn_req[] = {
    F_STR("helper", true, 1, HELPER_NAME_MAX, SC_IDENT),
};
static const struct field_def spawn_rep[] = {
    F_UINT("pid", true, 1, INT32_MAX),
};

static const struct field_def shutdown_req[] = {
    F_STR("reason", false, 1, 256, SC_TEXT),
};

/* Disks. Names are identifiers (never paths); sizes are bytes, 1 MiB .. 16 TiB. */
#define DISK_NAME_MAX 64
#define DISK_SIZE_MIN (1ull << 20)
#define DISK_SIZE_MAX (16ull << 40)

static const struct field_def disk_create_req[] = {
    F_STR("name", true, 1, DISK_NAME_MAX, SC_IDENT), F_UINT("size", true, DISK_SIZE_MIN, DISK_SIZE_MAX),
    F_STR("base", false, 1, DISK_NAME_MAX, SC_IDENT), /* a registered base image */
};
static const struct field_def disk_clone_req[] = {
    F_STR("src", true, 1, DISK_NAME_MAX, SC_IDENT),
    F_STR("dst", true, 1, DISK_NAME_MAX, SC_IDENT),
};
static const struct field_def disk_name_req[] = {
    F_STR("name", true, 1, DISK_NAME_MAX, SC_IDENT),
};
/* what a create or clone made */
static const struct field_def disk_made_rep[] = {
    F_STR("name", true, 1, DISK_NAME_MAX, SC_IDENT),
    F_STR("backend", true, 1, 16, SC_IDENT), /* btrfs | reflink | copy */
    F_UINT("size", true, 0, UINT64_MAX),
};
static const struct field_def disk_info_fields[] = {
    F_STR("name", true, 1, DISK_NAME_MAX, SC_IDENT), F_UINT("logical", true, 0, UINT64_MAX), /* apparent size */
    F_UINT("allocated", true, 0, UINT64_MAX),  /* blocks in use, shared extents included */
    F_UINT("exclusive", false, 0, UINT64_MAX), /* extent bytes used by this disk alone */
    F_UINT("shared", false, 0, UINT64_MAX),    /* extent bytes shared with clones or images */
};
static const struct record_def disk_info = REC(disk_info_fields);
static const struct field_def disk_list_rep[] = {
    F_STR("backend", true, 1, 16, SC_IDENT),
    F_UINT("free", true, 0, UINT64_MAX), /* bytes available to stored */
    F_RECORDS("disks", false, PROTO_MAX_ARRAY, &disk_info),
};

static const struct op_def ops[OP__COUNT] = {
    [OP_PING] = {.id = OP_PING, .name = "ping", .req = REC(ping_req), .rep = REC(proc_info_fields)},
    [OP_STATUS] = {.id = OP_STATUS, .name = "status", .req = REC_EMPTY, .rep = REC(status_rep)},
    [OP_VERSION] = {.id = OP_VERSION, .name = "version", .req = REC_EMPTY, .rep = REC(version_rep)},
    [OP_SPAWN] = {.id = OP_SPAWN,
		  .name = "spawn",
		  .req = REC(spawn_req),
		  .rep = REC(spawn_rep),
		  .nfds_rep = 1,
		  .fdk_rep = {FDK_SEQPACKET}},
    [OP_READY] = {.id = OP_READY, .name = "ready", .req = REC_EMPTY, .rep = REC_EMPTY},
    [OP_SHUTDOWN] = {.id = OP_SHUTDOWN, .name = "shutdown", .req = REC(shutdown_req), .rep = REC_EMPTY},
    [OP_DISK_CREATE] = {.id = OP_DISK_CREATE,
			.name = "disk_create",
			.req = REC(disk_create_req),
			.rep = REC(disk_made_rep)},
    [OP_DISK_CLONE] = {.id = OP_DISK_CLONE,
		       .name = "disk_clone",
		       .req = REC(disk_clone_req),
		       .rep = REC(disk_made_rep)},
    [OP_DISK_REMOVE] = {.id = OP_DISK_REMOVE, .name = "disk_remove", .req = REC(disk_name_req), .rep = REC_EMPTY},
    [OP_DISK_LIST] = {.id = OP_DISK_LIST, .name = "disk_list", .req = REC_EMPTY, .rep = REC(disk_list_rep)},
    [OP_STORE_CREATE] = {.id = OP_STORE_CREATE,
			 .name = "store_create",
			 .req = REC(disk_create_req),
			 .rep = REC(disk_made_rep),
			 .nfds_rep = 1,
			 .fdk_rep = {FDK_FILE}},
    [OP_STORE_CLONE] = {.id = OP_STORE_CLONE,
			.name = "store_clone",
			.req = REC(disk_clone_req),
			.rep = REC(disk_made_rep),
			.nfds_rep = 1,
			.fdk_rep = {FDK_FILE}},
    [OP_STORE_REMOVE] = {.id = OP_STORE_REMOVE, .name = "store_remove", .req = REC(disk_name_req), .rep = REC_EMPTY},
    [OP_STORE_LIST] = {.id = OP_STORE_LIST, .name = "store_list", .req = REC_EMPTY, .rep = REC(disk_list_rep)},
};

const struct op_def *proto_op(enum proto_op id)
{
	if ((unsigned)id >= OP__COUNT)
		return NULL;
	return &ops[id];
}

const struct op_def *proto_op_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < OP__COUNT; i++)
		if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0)
			return &ops[i];
	return NULL;
}
