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
#define F_BIN(n, req, lo, hi)                                                                                          \
	{                                                                                                              \
		.name = (n), .type = FT_BIN, .required = (req), .min = (lo), .max = (hi)                               \
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

/* A VM's VMM in a status reply: who it runs as. */
static const struct field_def vmm_proc_fields[] = {
    F_STR("vm", true, 1, 64, SC_IDENT),
    F_UINT("pid", true, 1, INT32_MAX),
    F_UINT("uid", true, 0, UINT32_MAX),
};
static const struct record_def vmm_proc = REC(vmm_proc_fields);

/* One of the caller's quotas in a status reply: what they hold, what they may (no limit:
 * unlimited; no used: not known just now). */
static const struct field_def quota_fields[] = {
    F_STR("name", true, 1, 32, SC_IDENT),
    F_UINT("used", false, 0, UINT64_MAX),
    F_UINT("limit", false, 0, UINT64_MAX),
};
static const struct record_def quota_rec = REC(quota_fields);

static const struct field_def status_rep[] = {
    F_STR("version", true, 1, 64, SC_TEXT),
    F_STR("mode", true, 1, 16, SC_IDENT),
    F_STR("state_dir", true, 1, 4096, SC_ANY),
    F_STR("socket", true, 1, 4096, SC_ANY),
    F_UINT("owner_uid", true, 0, UINT32_MAX),
    F_RECORDS("processes", true, 8, &proc_info),
    F_RECORDS("launcher", false, 1, &proc_info),
    F_RECORDS("vmms", false, PROTO_MAX_ARRAY, &vmm_proc), /* the caller's VMs' (every VM's, for root) */
    F_RECORDS("quota", false, 16, &quota_rec),		  /* the caller's */
    F_STR("vm_limits", false, 1, 400, SC_TEXT),		  /* how VMMs are held on this host */
};

/* ready: the launcher answers with how it holds VMMs to their resources. */
static const struct field_def ready_rep[] = {
    F_STR("vm_limits", false, 1, 400, SC_TEXT), F_BOOL("firecracker", false), /* a firecracker binary is installed */
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

/* Base images (images/NAME/disk.img, read-only): imported from an fd the client opened. */
static const struct field_def image_made_rep[] = {
    F_STR("name", true, 1, DISK_NAME_MAX, SC_IDENT),
    F_UINT("size", true, 0, UINT64_MAX),
};
static const struct record_def image_info = REC(image_made_rep);
static const struct field_def image_list_rep[] = {
    F_RECORDS("images", false, PROTO_MAX_ARRAY, &image_info),
};

/* vmm_spawn: the supervisor asks the launcher to start a VMM from a typed configuration
 * (common/vmconfig.h): the launcher checks it against its policy and builds QEMU's command
 * line itself; the fds' kinds are checked here, their roles are fixed by position. */
#define VM_NAME_MAX 64
static const struct field_def vmm_spawn_req[] = {
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT),
    F_UINT("cpus", true, 1, 64),
    F_UINT("mem", true, 64, 1u << 20),		/* MiB; the launcher's policy bounds it further */
    F_STR("accel", true, 3, 3, SC_IDENT),	/* kvm | tcg */
    F_BOOL("debug", false),			/* kernel messages on the console */
    F_BOOL("restore", false),			/* vmm_restore: a clone of a snapshot */
    F_BOOL("disk_overlay", false),		/* vmm_restore: the disk is qcow2 over the snapshot's */
    F_STR("guest_addr", false, 7, 15, SC_TEXT), /* vmm_spawn_net only: parsed again as IPv4 */
    F_UINT("guest_prefix", false, 1, 32),
    F_STR("guest_gw", false, 7, 15, SC_TEXT),
    F_STR("guest_mac", false, 17, 17, SC_TEXT),
    F_STR("dns", false, 7, 15, SC_TEXT),
};
static const struct field_def vmm_spawn_rep[] = {
    F_UINT("pid", true, 1, INT32_MAX),
    F_UINT("uid", false, 0, UINT32_MAX),     /* vmm_spawn: the VM's own uid, as the spawner ran it */
    F_STR("limits", false, 1, 400, SC_TEXT), /* its host resource limits (launcher/vmm_cgroup.h) */
};

/* ---- netd (docs/networking.md) ---- */
#define NET_PORTS_MAX 16
#define IPV4_STR_MAX  15 /* dotted quad; netd parses it again */
static const struct field_def net_port_fields[] = {
    F_STR("host_ip", false, 7, IPV4_STR_MAX, SC_TEXT), /* absent: every address of the host */
    F_UINT("host_port", true, 1, 65535), F_UINT("guest_port", true, 1, 65535),
    F_STR("proto", true, 3, 3, SC_IDENT), /* tcp | udp */
};
static const struct record_def net_port = REC(net_port_fields);
static const struct field_def net_create_req[] = {
    F_STR("vm", true, 1, 32, SC_IDENT),	  /* the VM's id: recorded with what netd makes */
    F_STR("mode", true, 1, 16, SC_IDENT), /* bridged | rootless */
    F_RECORDS("ports", false, NET_PORTS_MAX, &net_port),
};
static const struct field_def net_create_rep[] = {
    F_STR("host_if", false, 1, 15, SC_IDENT),		 /* bridged: the host end of the veth */
    F_STR("host_addr", false, 7, IPV4_STR_MAX, SC_TEXT), /* bridged: its address */
    F_STR("ns_addr", false, 7, IPV4_STR_MAX, SC_TEXT),	 /* bridged: the namespace's end */
    F_STR("guest_addr", true, 7, IPV4_STR_MAX, SC_TEXT),
    F_UINT("guest_prefix", true, 8, 30),
    F_STR("guest_gw", true, 7, IPV4_STR_MAX, SC_TEXT),
    F_STR("guest_mac", true, 17, 17, SC_TEXT),
    F_STR("dns", false, 7, IPV4_STR_MAX, SC_TEXT),
};
static const struct field_def net_destroy_req[] = {
    F_STR("vm", true, 1, 32, SC_IDENT), F_STR("host_if", false, 1, 15, SC_IDENT), /* bridged */
};
static const struct field_def pasta_spawn_req[] = {
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT),
    F_UINT("vmm_pid", true, 1, INT32_MAX), /* pasta is stopped when this VMM exits */
    F_RECORDS("ports", false, NET_PORTS_MAX, &net_port),
};

/* ---- guest agent (docs/agent-protocol.md) ---- */
#define SESSION_MAX UINT32_MAX
#define ARGV_MAX    64	 /* arguments of a command */
#define ARG_LEN_MAX 4096 /* bytes in one argument or environment entry (all of them fit one frame) */
#define CHUNK_MAX   4096 /* bytes of stdio in one frame */
static const struct field_def agent_hello_rep[] = {
    F_STR("version", true, 1, 64, SC_TEXT), F_UINT("uptime_ms", true, 0, UINT64_MAX), /* guest's CLOCK_BOOTTIME */
    F_UINT("ready_ms", true, 0, UINT64_MAX),   /* guest uptime when the agent became ready */
    F_STR("container", true, 1, 16, SC_IDENT), /* none | loading | running | exited */
};
static const struct field_def agent_health_rep[] = {
    F_STR("container", true, 1, 16, SC_IDENT),
    F_STR("health", false, 1, 16, SC_IDENT), /* with --health-cmd: starting | healthy | unhealthy */
    F_UINT("exit_code", false, 0, 255),	     /* when exited */
    F_UINT("uptime_ms", true, 0, UINT64_MAX),
};
/* kind: run (the container: podman load + podman run; once per VM), exec (podman exec in
 * it), vm (a command in the guest itself). An empty argv with run keeps the image's command. */
static const struct field_def proc_start_req[] = {
    F_UINT("session", true, 1, SESSION_MAX),
    F_STR("kind", true, 1, 8, SC_IDENT),
    F_STRLIST("argv", false, ARGV_MAX, ARG_LEN_MAX, SC_ANY), /* absent: the image's command (run) */
    F_STRLIST("env", false, ARGV_MAX, ARG_LEN_MAX, SC_ANY),  /* KEY=VALUE */
    F_BOOL("tty", false),
    F_BOOL("stdin", false),
    F_UINT("rows", false, 1, 4096),
    F_UINT("cols", false, 1, 4096),
    F_STR("image", false, 1, 256, SC_TEXT),   /* run: a reference already in the guest's store: no load */
    F_STR("workdir", false, 1, 4096, SC_ANY), /* -w (exec) */
    F_STR("user", false, 1, 256, SC_TEXT),    /* -u USER[:GROUP] (exec) */
    F_BOOL("privileged", false),	      /* exec --privileged */
    F_BOOL("detach", false),		      /* exec -d: podman exec's own */
    /* run: podman run's options, each passed as --NAME=VALUE (never a separate argument) */
    F_STR("hostname", false, 1, 64, SC_IDENT),
    F_STR("entrypoint", false, 1, ARG_LEN_MAX, SC_ANY), /* a command, or a JSON array of one */
    F_STRLIST("labels", false, 64, 256, SC_TEXT),	/* KEY=VALUE */
    F_BOOL("read_only", false),
    F_STRLIST("tmpfs", false, 16, 256, SC_TEXT), /* DIR[:OPTIONS] */
    F_STRLIST("cap_add", false, 64, 32, SC_IDENT),
    F_STRLIST("cap_drop", false, 64, 32, SC_IDENT),
    F_STR("health_cmd", false, 1, ARG_LEN_MAX, SC_ANY), /* run by the agent in the container (sh -c) */
    F_UINT("health_interval", false, 1, 86400),		/* seconds between health_cmd runs */
    F_UINT("health_retries", false, 1, 100),		/* failures in a row that make it unhealthy */
    /* run: hold the container just before its process starts, send container_held and wait
     * for container_go (the startup cache's snapshot is taken then) */
    F_BOOL("hold", false),
};
static const struct field_def proc_input_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX), F_BIN("data", false, 0, CHUNK_MAX),
    F_BOOL("eof", false), /* close the process's stdin after data */
};
static const struct field_def proc_resize_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX),
    F_UINT("rows", true, 1, 4096),
    F_UINT("cols", true, 1, 4096),
};
static const struct field_def proc_signal_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX),
    F_UINT("signal", true, 1, 64),
};
/* Output: offset counts every output byte of the session (stdout and stderr together) in
 * the order the agent read them; the agent keeps what is not acknowledged and sends it
 * again after a new hello. */
static const struct field_def proc_output_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX),
    F_UINT("stream", true, 1, 2), /* 1 stdout, 2 stderr */
    F_UINT("offset", true, 0, UINT64_MAX),
    F_BIN("data", true, 1, CHUNK_MAX),
};
static const struct field_def proc_ack_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX),
    F_UINT("offset", true, 0, UINT64_MAX), /* every byte before this one is consumed */
};
static const struct field_def proc_exit_ev[] = {
    F_UINT("session", true, 1, SESSION_MAX), F_UINT("code", true, 0, 255), /* exit status, or 128 + signal */
    F_UINT("signal", false, 1, 64),					   /* set when a signal ended it */
    F_UINT("offset", true, 0, UINT64_MAX), /* total output bytes: the exit follows them */
};
static const struct field_def session_only[] = {
    F_UINT("session", true, 1, SESSION_MAX),
};

/* ---- client -> supervisor: VMs ---- */
/* vm_run comes with one fd: the image, an OCI archive the client opened (never a path the
 * supervisor would open for it). */
static const struct field_def vm_run_req[] = {
    F_STR("name", false, 1, VM_NAME_MAX, SC_IDENT),
    F_STR("image", true, 1, 256, SC_TEXT), /* as the user named it, for listings */
    F_STRLIST("argv", false, ARGV_MAX, ARG_LEN_MAX, SC_ANY), F_STRLIST("env", false, ARGV_MAX, ARG_LEN_MAX, SC_ANY),
    F_UINT("cpu", false, 1, 16), F_UINT("mem", false, 128, 65536), /* MiB */
    F_BOOL("tty", false), F_BOOL("stdin", false), F_BOOL("detach", false),
    F_BOOL("remove", false),				 /* --rm: remove when it stops */
    F_STR("network", false, 1, 16, SC_IDENT),		 /* bridged | rootless | none */
    F_RECORDS("ports", false, NET_PORTS_MAX, &net_port), /* --publish */
    F_STR("accel", false, 1, 8, SC_IDENT),		 /* auto | kvm | tcg */
    F_STR("vmm", false, 1, 16, SC_IDENT),		 /* auto | qemu | firecracker */
    F_UINT("rows", false, 1, 4096), F_UINT("cols", false, 1, 4096),
    F_BOOL("no_cache", false), /* --no-snapshot: neither from nor into the startup cache */
    /* podman run's options (proc_start says what each is) */
    F_STR("workdir", false, 1, 4096, SC_ANY), F_STR("user", false, 1, 256, SC_TEXT), F_BOOL("privileged", false),
    F_STR("hostname", false, 1, 64, SC_IDENT), F_STR("entrypoint", false, 1, ARG_LEN_MAX, SC_ANY),
    F_STRLIST("labels", false, 64, 256, SC_TEXT), F_BOOL("read_only", false),
    F_STRLIST("tmpfs", false, 16, 256, SC_TEXT), F_STRLIST("cap_add", false, 64, 32, SC_IDENT),
    F_STRLIST("cap_drop", false, 64, 32, SC_IDENT), F_STR("health_cmd", false, 1, ARG_LEN_MAX, SC_ANY),
    F_UINT("health_interval", false, 1, 86400), F_UINT("health_retries", false, 1, 100),
    F_UINT("log_max", false, 4096, 1ull << 30), /* --log-opt max-size: output.log rotates past it */
};
static const struct field_def vm_run_rep[] = {
    F_STR("name", true, 1, VM_NAME_MAX, SC_IDENT), F_STR("id", true, 1, 32, SC_IDENT),
    F_UINT("session", false, 1, SESSION_MAX), /* absent when detached */
    F_STR("accel", true, 1, 8, SC_IDENT),	   F_STR("warning", false, 1, 256, SC_TEXT),
};
static const struct field_def vm_exec_req[] = {
    F_STR("name", true, 1, VM_NAME_MAX, SC_IDENT),
    F_STRLIST("argv", true, ARGV_MAX, ARG_LEN_MAX, SC_ANY),
    F_STRLIST("env", false, ARGV_MAX, ARG_LEN_MAX, SC_ANY),
    F_BOOL("vm", false), /* in the guest rather than the container */
    F_BOOL("tty", false),
    F_BOOL("stdin", false),
    F_UINT("rows", false, 1, 4096),
    F_UINT("cols", false, 1, 4096),
    F_STR("workdir", false, 1, 4096, SC_ANY),
    F_STR("user", false, 1, 256, SC_TEXT),
    F_BOOL("privileged", false),
    F_BOOL("detach", false),
};
static const struct field_def vm_session_rep[] = {
    F_UINT("session", true, 1, SESSION_MAX),
};
static const struct field_def vm_info_fields[] = {
    F_STR("name", true, 1, VM_NAME_MAX, SC_IDENT),
    F_STR("id", true, 1, 32, SC_IDENT),
    F_STR("status", true, 1, 16, SC_IDENT), /* creating | booting | running | stopping | stopped | lost */
    F_STR("health", true, 1, 16, SC_IDENT), /* starting | healthy | unhealthy | unknown */
    F_STR("image", true, 1, 256, SC_TEXT),
    F_UINT("owner", true, 0, UINT32_MAX),
    F_UINT("created_ms", true, 0, UINT64_MAX),
    F_UINT("cpu", true, 1, 16),
    F_UINT("mem", true, 1, 65536),
    F_STR("accel", true, 1, 8, SC_IDENT),
    F_STR("network", true, 1, 16, SC_IDENT),
    F_UINT("pid", false, 1, INT32_MAX),	     /* the VMM's */
    F_UINT("exit_code", false, 0, 255),	     /* the container's, once it exited */
    F_UINT("boot_ms", false, 0, UINT64_MAX), /* VMM start to agent ready */
    F_STR("guest_ip", false, 7, IPV4_STR_MAX, SC_TEXT),
    F_STR("host_addr", false, 7, IPV4_STR_MAX, SC_TEXT),   /* bridged: the host end of the VM's veth */
    F_STRLIST("ports", false, NET_PORTS_MAX, 32, SC_TEXT), /* [IP:]HOST:GUEST/PROTO */
    F_STR("limits", false, 1, 400, SC_TEXT),		   /* its VMM's host resource limits */
};
static const struct record_def vm_info = REC(vm_info_fields);
static const struct field_def vm_list_rep[] = {
    F_RECORDS("vms", false, PROTO_MAX_ARRAY, &vm_info),
};
static const struct field_def vm_name_req[] = {
    F_STR("name", true, 1, VM_NAME_MAX, SC_IDENT),
};
static const struct field_def vm_logs_req[] = {
    F_STR("name", true, 1, VM_NAME_MAX, SC_IDENT),
    F_BOOL("follow", false),
};

/* Snapshots (docs/snapshots.md): snapshots/TAG in stored's data directory. */
#define SNAP_TAG_MAX 64
static const struct field_def snap_info_fields[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT), /* the VM it was taken of */
    F_STR("image", true, 1, 256, SC_TEXT),
    F_UINT("owner", true, 0, UINT32_MAX),
    F_UINT("created_ms", true, 0, UINT64_MAX),
    F_UINT("cpu", true, 1, 16),
    F_UINT("mem", true, 128, 65536), /* MiB: the guest's, as every clone gets */
    F_STR("accel", true, 1, 8, SC_IDENT),
    F_STR("assets", true, 1, 64, SC_IDENT),	 /* the kernel and rootfs it ran on: clones need them */
    F_STR("network", true, 1, 16, SC_IDENT),	 /* none, or its NIC's mode: a clone has the same devices */
    F_UINT("mem_bytes", false, 0, UINT64_MAX),	 /* allocated: the RAM the guest had touched */
    F_UINT("state_bytes", false, 0, UINT64_MAX), /* the device state */
    F_UINT("disk_bytes", false, 0, UINT64_MAX),	 /* allocated, extents shared with the VM included */
    F_UINT("size", false, 0, UINT64_MAX),	 /* all of it, allocated */
    F_UINT("clones", false, 0, UINT32_MAX),	 /* running clones (the supervisor's count) */
    F_STR("disk_format", false, 3, 5, SC_IDENT), /* store_snap_open: the clone's disk, raw | qcow2 */
    F_STR("kind", false, 1, 8, SC_IDENT),	 /* user (snapshot create) | cache (the startup cache) */
    F_UINT("used_ms", false, 0, UINT64_MAX),	 /* last cloned (realtime), else created_ms */
};
static const struct record_def snap_info = REC(snap_info_fields);
static const struct field_def snap_list_rep[] = {
    F_RECORDS("snapshots", false, PROTO_MAX_ARRAY, &snap_info),
};
static const struct field_def snap_tag_req[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
};
static const struct field_def snapshot_create_req[] = {
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT), F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_STR("vmm", false, 1, 16, SC_IDENT), /* auto | qemu | firecracker: the VMM its clones run on */
};
static const struct field_def snapshot_create_rep[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_UINT("pause_ms", true, 0, UINT64_MAX), /* stop to cont: what the VM lost */
    F_UINT("state_ms", true, 0, UINT64_MAX), /* of it: the device state written by QEMU */
    F_UINT("copy_ms", true, 0, UINT64_MAX),  /* of it: RAM, disk and image into the snapshot */
    F_UINT("mem_bytes", false, 0, UINT64_MAX),
    F_UINT("state_bytes", false, 0, UINT64_MAX),
    F_UINT("disk_bytes", false, 0, UINT64_MAX),
    F_UINT("size", false, 0, UINT64_MAX),
};
static const struct field_def snapshot_run_req[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_STR("name", false, 1, VM_NAME_MAX, SC_IDENT),
    F_UINT("cpu", false, 1, 16),      /* refused unless the snapshot's */
    F_UINT("mem", false, 128, 65536), /* refused unless the snapshot's */
    F_BOOL("tty", false),
    F_BOOL("stdin", false),
    F_BOOL("detach", false),
    F_BOOL("remove", false),
    F_STR("network", false, 1, 16, SC_IDENT),
    F_RECORDS("ports", false, NET_PORTS_MAX, &net_port),
    F_UINT("rows", false, 1, 4096),
    F_UINT("cols", false, 1, 4096),
};
/* stored's: the same fields as snap_info, as the supervisor vouches for them (owner, VM) */
static const struct field_def store_snap_commit_req[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_STR("disk", true, 1, DISK_NAME_MAX, SC_IDENT), /* the VM's disk, in disks/ */
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT),
    F_STR("image", true, 1, 256, SC_TEXT),
    F_UINT("owner", true, 0, UINT32_MAX),
    F_UINT("created_ms", true, 0, UINT64_MAX),
    F_UINT("cpu", true, 1, 16),
    F_UINT("mem", true, 128, 65536),
    F_STR("accel", true, 1, 8, SC_IDENT),
    F_STR("assets", true, 1, 64, SC_IDENT),
    F_STR("network", true, 1, 16, SC_IDENT),
    F_STR("kind", false, 1, 8, SC_IDENT), /* user (absent) | cache */
};
static const struct field_def store_snap_open_req[] = {
    F_STR("tag", true, 1, SNAP_TAG_MAX, SC_IDENT),
    F_STR("disk", true, 1, DISK_NAME_MAX, SC_IDENT), /* the clone's disk to make in disks/ */
};

/* A clone is not the VM it was snapshotted from: the wall clock, the kernel's entropy and
 * the hostname are set again, the neighbour cache flushed (its gateway is another tap). */
static const struct field_def agent_restore_req[] = {
    F_UINT("epoch", true, 1, UINT32_MAX),		/* restores of this guest so far, counting this one */
    F_UINT("time_ns", true, 0, UINT64_MAX),		/* the host's CLOCK_REALTIME as it sends this */
    F_BIN("entropy", true, 32, 256),			/* fresh bytes from the host's getrandom */
    F_STR("hostname", false, 1, VM_NAME_MAX, SC_IDENT), /* the clone's name (absent: kept) */
    F_BOOL("release", false), /* a container held before its start (proc_start hold): let it go */
};
static const struct field_def snapshot_prune_rep[] = {
    F_UINT("removed", true, 0, UINT32_MAX), F_UINT("bytes", true, 0, UINT64_MAX), /* allocated, freed */
    F_UINT("kept", true, 0, UINT32_MAX),					  /* entries a clone still runs from */
};
static const struct field_def agent_restore_rep[] = {
    F_UINT("uptime_ms", true, 0, UINT64_MAX),
    F_UINT("clock_step_ms", true, 0, UINT64_MAX), /* how far the guest's clock was behind */
};

/* uffdd (docs/uffdd.md): one clone's memory served from its snapshot's memory file. The
 * key names the snapshot (its working set is shared by the clones of one key); pid is the
 * VMM that must be the peer of the handshake. */
#define UFFD_KEY_MAX 128
static const struct field_def uffd_serve_req[] = {
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT),
    F_STR("key", true, 1, UFFD_KEY_MAX, SC_IDENT),
    F_UINT("pid", true, 1, INT32_MAX),
    F_UINT("record_ms", false, 0, 3600000), /* faults after the handshake that count into the working set (10 s) */
    F_BOOL("prefetch", false),		    /* the key's recorded working set, at once (true) */
};
static const struct field_def uffd_serve_rep[] = {
    F_UINT("pages", true, 0, UINT64_MAX),	/* in the memory file */
    F_UINT("working_set", true, 0, UINT64_MAX), /* of them, recorded for the key so far */
};
static const struct field_def uffd_vm_req[] = {
    F_STR("vm", true, 1, VM_NAME_MAX, SC_IDENT),
};
static const struct field_def uffd_stats_rep[] = {
    F_STR("state", true, 1, 16, SC_IDENT), /* listening | handshake | serving | gone | failed */
    F_UINT("pid", true, 1, INT32_MAX),
    F_UINT("faults", true, 0, UINT64_MAX),     /* fault events resolved */
    F_UINT("copied", true, 0, UINT64_MAX),     /* pages copied from the file for faults */
    F_UINT("zero", true, 0, UINT64_MAX),       /* zero pages (holes in the file, removed pages) */
    F_UINT("prefetched", true, 0, UINT64_MAX), /* pages placed before the guest asked */
    F_UINT("removes", true, 0, UINT64_MAX),    /* remove events (the balloon) */
    F_UINT("removed", true, 0, UINT64_MAX),    /* pages they covered */
    F_UINT("retries", true, 0, UINT64_MAX),    /* EAGAIN: placed again after a remove event */
    F_UINT("recorded", true, 0, UINT64_MAX),   /* pages this clone added to the key's working set */
    F_STR("why", false, 1, 256, SC_TEXT),      /* failed: the reason */
    F_BOOL("pending", false),		       /* uffd_stop: its VMM still runs, served until it is gone */
};

#define EVENT_OP(ID, NAME, FIELDS) [ID] = {.id = (ID), .name = (NAME), .req = REC(FIELDS), .rep = REC_EMPTY}

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
    [OP_READY] = {.id = OP_READY, .name = "ready", .req = REC_EMPTY, .rep = REC(ready_rep)},
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
    [OP_IMAGE_IMPORT] = {.id = OP_IMAGE_IMPORT,
			 .name = "image_import",
			 .req = REC(disk_name_req),
			 .rep = REC(image_made_rep),
			 .nfds_req = 1,
			 .fdk_req = {FDK_FILE}},
    [OP_IMAGE_LIST] = {.id = OP_IMAGE_LIST, .name = "image_list", .req = REC_EMPTY, .rep = REC(image_list_rep)},
    [OP_IMAGE_REMOVE] = {.id = OP_IMAGE_REMOVE, .name = "image_remove", .req = REC(disk_name_req), .rep = REC_EMPTY},
    [OP_STORE_IMAGE_IMPORT] = {.id = OP_STORE_IMAGE_IMPORT,
			       .name = "store_image_import",
			       .req = REC(disk_name_req),
			       .rep = REC(image_made_rep),
			       .nfds_req = 1,
			       .fdk_req = {FDK_FILE}},
    [OP_STORE_IMAGE_LIST] = {.id = OP_STORE_IMAGE_LIST,
			     .name = "store_image_list",
			     .req = REC_EMPTY,
			     .rep = REC(image_list_rep)},
    [OP_STORE_IMAGE_REMOVE] = {.id = OP_STORE_IMAGE_REMOVE,
			       .name = "store_image_remove",
			       .req = REC(disk_name_req),
			       .rep = REC_EMPTY},
    [OP_VMM_SPAWN] = {.id = OP_VMM_SPAWN,
		      .name = "vmm_spawn",
		      .req = REC(vmm_spawn_req),
		      .rep = REC(vmm_spawn_rep),
		      /* qmp listener, agent listener, kernel, initrd, rootfs, disk, image, console, RAM */
		      .nfds_req = 9,
		      .fdk_req = {FDK_SOCKET, FDK_SOCKET, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE,
				  FDK_MEMFD}},
    [OP_VMM_SPAWN_NET] = {.id = OP_VMM_SPAWN_NET,
			  .name = "vmm_spawn_net",
			  .req = REC(vmm_spawn_req),
			  .rep = REC(vmm_spawn_rep),
			  .nfds_req = 10,
			  .fdk_req = {FDK_SOCKET, FDK_SOCKET, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE,
				      FDK_FILE, FDK_MEMFD, FDK_TAP}},
    /* a clone: the same, RAM being the snapshot's sealed template; then its device state and
     * the snapshot's disk (read-only: a qcow2 clone disk's backing file) */
    [OP_VMM_RESTORE] = {.id = OP_VMM_RESTORE,
			.name = "vmm_restore",
			.req = REC(vmm_spawn_req),
			.rep = REC(vmm_spawn_rep),
			.nfds_req = 11,
			.fdk_req = {FDK_SOCKET, FDK_SOCKET, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE,
				    FDK_MEMFD, FDK_FILE, FDK_FILE}},
    [OP_VMM_RESTORE_NET] = {.id = OP_VMM_RESTORE_NET,
			    .name = "vmm_restore_net",
			    .req = REC(vmm_spawn_req),
			    .rep = REC(vmm_spawn_rep),
			    .nfds_req = 12,
			    .fdk_req = {FDK_SOCKET, FDK_SOCKET, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE,
					FDK_FILE, FDK_MEMFD, FDK_FILE, FDK_FILE, FDK_TAP}},
    [OP_NET_CREATE] = {.id = OP_NET_CREATE,
		       .name = "net_create",
		       .req = REC(net_create_req),
		       .rep = REC(net_create_rep),
		       .nfds_rep = 3,
		       .fdk_rep = {FDK_TAP, FDK_NETNS, FDK_USERNS}},
    [OP_NET_DESTROY] = {.id = OP_NET_DESTROY, .name = "net_destroy", .req = REC(net_destroy_req), .rep = REC_EMPTY},
    [OP_PASTA_SPAWN] = {.id = OP_PASTA_SPAWN,
			.name = "pasta_spawn",
			.req = REC(pasta_spawn_req),
			.rep = REC(vmm_spawn_rep),
			.nfds_req = 2,
			.fdk_req = {FDK_USERNS, FDK_NETNS}},
    [OP_AGENT_HELLO] = {.id = OP_AGENT_HELLO, .name = "agent_hello", .req = REC_EMPTY, .rep = REC(agent_hello_rep)},
    [OP_AGENT_HEALTH] = {.id = OP_AGENT_HEALTH, .name = "agent_health", .req = REC_EMPTY, .rep = REC(agent_health_rep)},
    [OP_AGENT_SHUTDOWN] = {.id = OP_AGENT_SHUTDOWN, .name = "agent_shutdown", .req = REC_EMPTY, .rep = REC_EMPTY},
    [OP_PROC_START] = {.id = OP_PROC_START, .name = "proc_start", .req = REC(proc_start_req), .rep = REC_EMPTY},
    EVENT_OP(OP_PROC_INPUT, "proc_input", proc_input_ev),
    EVENT_OP(OP_PROC_RESIZE, "proc_resize", proc_resize_ev),
    EVENT_OP(OP_PROC_SIGNAL, "proc_signal", proc_signal_ev),
    EVENT_OP(OP_PROC_OUTPUT, "proc_output", proc_output_ev),
    EVENT_OP(OP_PROC_ACK, "proc_ack", proc_ack_ev),
    EVENT_OP(OP_PROC_EXIT, "proc_exit", proc_exit_ev),
    EVENT_OP(OP_PROC_RELEASE, "proc_release", session_only),
    [OP_VM_RUN] = {.id = OP_VM_RUN,
		   .name = "vm_run",
		   .req = REC(vm_run_req),
		   .rep = REC(vm_run_rep),
		   .nfds_req = 1,
		   .fdk_req = {FDK_FILE}},
    [OP_VM_EXEC] = {.id = OP_VM_EXEC, .name = "vm_exec", .req = REC(vm_exec_req), .rep = REC(vm_session_rep)},
    [OP_VM_LIST] = {.id = OP_VM_LIST, .name = "vm_list", .req = REC_EMPTY, .rep = REC(vm_list_rep)},
    [OP_VM_STOP] = {.id = OP_VM_STOP, .name = "vm_stop", .req = REC(vm_name_req), .rep = REC_EMPTY},
    [OP_VM_REMOVE] = {.id = OP_VM_REMOVE, .name = "vm_remove", .req = REC(vm_name_req), .rep = REC_EMPTY},
    [OP_VM_LOGS] = {.id = OP_VM_LOGS, .name = "vm_logs", .req = REC(vm_logs_req), .rep = REC(vm_session_rep)},
    [OP_SNAPSHOT_CREATE] = {.id = OP_SNAPSHOT_CREATE,
			    .name = "snapshot_create",
			    .req = REC(snapshot_create_req),
			    .rep = REC(snapshot_create_rep)},
    [OP_SNAPSHOT_RUN] = {.id = OP_SNAPSHOT_RUN,
			 .name = "snapshot_run",
			 .req = REC(snapshot_run_req),
			 .rep = REC(vm_run_rep)},
    [OP_SNAPSHOT_LIST] = {.id = OP_SNAPSHOT_LIST, .name = "snapshot_list", .req = REC_EMPTY, .rep = REC(snap_list_rep)},
    [OP_SNAPSHOT_REMOVE] = {.id = OP_SNAPSHOT_REMOVE,
			    .name = "snapshot_remove",
			    .req = REC(snap_tag_req),
			    .rep = REC_EMPTY},
    [OP_STORE_SNAP_BEGIN] = {.id = OP_STORE_SNAP_BEGIN,
			     .name = "store_snap_begin",
			     .req = REC(snap_tag_req),
			     .rep = REC_EMPTY,
			     .nfds_rep = 1,
			     .fdk_rep = {FDK_FILE}},
    [OP_STORE_SNAP_COMMIT] = {.id = OP_STORE_SNAP_COMMIT,
			      .name = "store_snap_commit",
			      .req = REC(store_snap_commit_req),
			      .rep = REC(snap_info_fields),
			      .nfds_req = 2,
			      .fdk_req = {FDK_MEMFD, FDK_FILE}},
    [OP_STORE_SNAP_ABORT] = {.id = OP_STORE_SNAP_ABORT,
			     .name = "store_snap_abort",
			     .req = REC(snap_tag_req),
			     .rep = REC_EMPTY},
    [OP_STORE_SNAP_OPEN] = {.id = OP_STORE_SNAP_OPEN,
			    .name = "store_snap_open",
			    .req = REC(store_snap_open_req),
			    .rep = REC(snap_info_fields),
			    /* the sealed template RAM, the device state, the clone's disk, the image,
			     * the snapshot's disk (a qcow2 clone disk's backing file) */
			    .nfds_rep = 5,
			    .fdk_rep = {FDK_MEMFD, FDK_FILE, FDK_FILE, FDK_FILE, FDK_FILE}},
    [OP_STORE_SNAP_LIST] = {.id = OP_STORE_SNAP_LIST,
			    .name = "store_snap_list",
			    .req = REC_EMPTY,
			    .rep = REC(snap_list_rep)},
    [OP_AGENT_RESTORE] = {.id = OP_AGENT_RESTORE,
			  .name = "agent_restore",
			  .req = REC(agent_restore_req),
			  .rep = REC(agent_restore_rep)},
    [OP_STORE_SNAP_REMOVE] = {.id = OP_STORE_SNAP_REMOVE,
			      .name = "store_snap_remove",
			      .req = REC(snap_tag_req),
			      .rep = REC_EMPTY},
    [OP_SNAPSHOT_PRUNE] = {.id = OP_SNAPSHOT_PRUNE,
			   .name = "snapshot_prune",
			   .req = REC_EMPTY,
			   .rep = REC(snapshot_prune_rep)},
    EVENT_OP(OP_CONTAINER_HELD, "container_held", session_only),
    EVENT_OP(OP_CONTAINER_GO, "container_go", session_only),
    [OP_UFFD_SERVE] = {.id = OP_UFFD_SERVE,
		       .name = "uffd_serve",
		       .req = REC(uffd_serve_req),
		       .rep = REC(uffd_serve_rep),
		       .nfds_req = 2,
		       .fdk_req = {FDK_SOCKET, FDK_FILE}}, /* the listening socket, the memory file */
    [OP_UFFD_STOP] = {.id = OP_UFFD_STOP, .name = "uffd_stop", .req = REC(uffd_vm_req), .rep = REC(uffd_stats_rep)},
    [OP_UFFD_STATS] = {.id = OP_UFFD_STATS, .name = "uffd_stats", .req = REC(uffd_vm_req), .rep = REC(uffd_stats_rep)},
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
