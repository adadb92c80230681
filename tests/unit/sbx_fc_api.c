/* The Firecracker backend's API client (supervisor/fc_api.c, fc_http.c), run as the supervisor
 * runs it: in its event loop, under the supervisor's own seccomp filter. No Firecracker binary
 * can be installed on this machine, so the other end is a test double: a server that speaks
 * HTTP/1.1 on a Unix socket exactly as Firecracker's µhttp does (reference/vmm-protocols.md
 * §1.1: "HTTP/1.1 204 \r\n" with an empty reason phrase, Server and Connection: keep-alive,
 * 400 with {"fault_message": ...}) and records every request. What was sent is checked field
 * by field against the API's definitions as the swagger gives them (reference §1.2–§1.5):
 * required fields there, no field it does not define (Firecracker refuses unknown ones),
 * types, enums, path ids equal to body ids; and the HTTP itself: Content-Type
 * application/json, Content-Length, never chunked, no Expect: 100-continue. */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/util.h"
#include "common/vmconfig.h"
#include "policy/sandbox.h"
#include "supervisor/fc_api.h"
#include "supervisor/fc_http.h"
#include "tests/unit/check.h"

/* ---- the API's definitions, as Firecracker's swagger describes them ---- */

struct field {
	const char *name;
	char type; /* s string, i integer, b boolean, o object, a array */
	bool required;
	const char *enums; /* "A|B|C", or NULL */
};

struct def {
	const char *method, *path; /* path: exact, or a prefix ending in '/' for /drives/{id} */
	const char *id_field;	   /* the body field that must equal the path's id */
	struct field f[12];
};

static const struct def defs[] = {
    {"PUT",
     "/machine-config",
     NULL,
     {{"vcpu_count", 'i', true, NULL},
      {"mem_size_mib", 'i', true, NULL},
      {"smt", 'b', false, NULL},
      {"track_dirty_pages", 'b', false, NULL},
      {"huge_pages", 's', false, "None|2M"},
      {"cpu_template", 's', false, "C3|T2|T2S|T2CL|T2A|V1N1|None"}}},
    {"PUT",
     "/boot-source",
     NULL,
     {{"kernel_image_path", 's', true, NULL}, {"boot_args", 's', false, NULL}, {"initrd_path", 's', false, NULL}}},
    {"PUT",
     "/drives/",
     "drive_id",
     {{"drive_id", 's', true, NULL},
      {"is_root_device", 'b', true, NULL},
      {"path_on_host", 's', false, NULL},
      {"is_read_only", 'b', false, NULL},
      {"partuuid", 's', false, NULL},
      {"cache_type", 's', false, "Unsafe|Writeback"},
      {"io_engine", 's', false, "Sync|Async"},
      {"rate_limiter", 'o', false, NULL},
      {"socket", 's', false, NULL}}},
    {"PUT",
     "/network-interfaces/",
     "iface_id",
     {{"iface_id", 's', true, NULL},
      {"host_dev_name", 's', true, NULL},
      {"guest_mac", 's', false, NULL},
      {"rx_rate_limiter", 'o', false, NULL},
      {"tx_rate_limiter", 'o', false, NULL}}},
    {"PUT", "/vsock", NULL, {{"guest_cid", 'i', true, NULL}, {"uds_path", 's', true, NULL}}},
    {"PUT", "/actions", NULL, {{"action_type", 's', true, "InstanceStart|FlushMetrics|SendCtrlAltDel"}}},
    {"PATCH", "/vm", NULL, {{"state", 's', true, "Paused|Resumed"}}},
    {"PUT",
     "/snapshot/create",
     NULL,
     {{"snapshot_type", 's', false, "Full|Diff"},
      {"snapshot_path", 's', true, NULL},
      {"mem_file_path", 's', true, NULL}}},
    {"PUT",
     "/snapshot/load",
     NULL,
     {{"snapshot_path", 's', true, NULL},
      {"mem_backend", 'o', false, NULL},
      {"mem_file_path", 's', false, NULL},
      {"enable_diff_snapshots", 'b', false, NULL},
      {"resume_vm", 'b', false, NULL}}},
};

static bool type_ok(json_t *v, char t)
{
	switch (t) {
	case 's':
		return json_is_string(v);
	case 'i':
		return json_is_integer(v);
	case 'b':
		return json_is_boolean(v);
	case 'o':
		return json_is_object(v);
	default:
		return json_is_array(v);
	}
}

static bool in_enum(const char *s, const char *enums)
{
	size_t n = strlen(s);
	for (const char *p = enums; *p;) {
		size_t len = strcspn(p, "|");
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		p += len + (p[len] == '|');
	}
	return false;
}

/* Why body does not fit its definition, or NULL. */
static const char *misfit(const char *method, const char *path, json_t *body, char *why, size_t len)
{
	const struct def *d = NULL;
	for (size_t i = 0; i < ARRAY_LEN(defs) && !d; i++) {
		size_t n = strlen(defs[i].path);
		bool prefix = defs[i].path[n - 1] == '/';
		if (!strcmp(defs[i].method, method) &&
		    (prefix ? !strncmp(path, defs[i].path, n) && path[n] : !strcmp(path, defs[i].path)))
			d = &defs[i];
	}
	if (!d)
		return snprintf(why, len, "%s %s: not in the API", method, path), why;
	if (!json_is_object(body))
		return snprintf(why, len, "%s %s: the body is not a JSON object", method, path), why;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		const struct field *f = NULL;
		for (size_t i = 0; i < ARRAY_LEN(d->f) && d->f[i].name && !f; i++)
			if (!strcmp(d->f[i].name, k))
				f = &d->f[i];
		if (!f)
			return snprintf(why, len, "%s %s: '%s' is not a field of it", method, path, k), why;
		if (!type_ok(v, f->type))
			return snprintf(why, len, "%s %s: '%s' has the wrong type", method, path, k), why;
		if (f->enums && !in_enum(json_string_value(v), f->enums))
			return snprintf(why, len, "%s %s: '%s' is not one of %s", method, path, k, f->enums), why;
	}
	for (size_t i = 0; i < ARRAY_LEN(d->f) && d->f[i].name; i++)
		if (d->f[i].required && !json_object_get(body, d->f[i].name))
			return snprintf(why, len, "%s %s: '%s' is required", method, path, d->f[i].name), why;
	if (d->id_field && strcmp(json_string_value(json_object_get(body, d->id_field)), path + strlen(d->path)) != 0)
		return snprintf(why, len, "%s %s: '%s' is not the path's id", method, path, d->id_field), why;
	if (!strcmp(d->path, "/snapshot/load")) {
		json_t *mb = json_object_get(body, "mem_backend");
		if (!mb == !json_object_get(body, "mem_file_path"))
			return snprintf(why, len, "snapshot/load: exactly one of mem_backend, mem_file_path"), why;
		if (mb && (!json_is_string(json_object_get(mb, "backend_path")) ||
			   !in_enum(json_string_value(json_object_get(mb, "backend_type")) ?: "", "File|Uffd") ||
			   json_object_size(mb) != 2))
			return snprintf(why, len,
					"snapshot/load: mem_backend is {backend_type File|Uffd, backend_path}"),
			       why;
	}
	return NULL;
}

/* ---- the double: Firecracker's HTTP, recording ---- */

static char dir[64], sock[96], record[96];

enum mode { ANSWER, FAIL_ONE, NEVER_ANSWER };

static void answer(int c, int code, const char *body)
{
	char head[256];
	int n = body ? snprintf(head, sizeof(head),
				"HTTP/1.1 %d \r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: "
				"application/json\r\nContent-Length: %zu\r\n\r\n",
				code, strlen(body))
		     : snprintf(head, sizeof(head),
				"HTTP/1.1 %d \r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n", code);
	CHECK(write(c, head, (size_t)n) == n);
	if (body)
		CHECK(write(c, body, strlen(body)) == (ssize_t)strlen(body));
}

static const char *header(const char *head, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			v += strspn(v, " ");
			snprintf(out, len, "%.*s", (int)strcspn(v, "\r"), v);
			return out;
		}
	return NULL;
}

/* One connection: requests until it closes; each recorded as a JSON line. */
static void serve_conn(int c, enum mode mode, const char *fail_path, FILE *rec)
{
	static char buf[65536];
	size_t have = 0;
	for (;;) {
		char *end;
		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				return;
			have += (size_t)n;
		}
		*end = '\0';
		char method[16] = "", path[128] = "", ct[64] = "", cl[16] = "", te[32] = "", expect[32] = "";
		sscanf(buf, "%15s %127s", method, path);
		bool has_cl = header(buf, "Content-Length", cl, sizeof(cl)) != NULL;
		header(buf, "Content-Type", ct, sizeof(ct));
		header(buf, "Transfer-Encoding", te, sizeof(te));
		header(buf, "Expect", expect, sizeof(expect));
		size_t body_len = has_cl ? strtoul(cl, NULL, 10) : 0, off = (size_t)(end + 4 - buf);
		while (have - off < body_len) {
			ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				return;
			have += (size_t)n;
		}
		json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s#}", "method", method, "path", path, "ct", ct,
				      "has_cl", has_cl, "te", te, "expect", expect, "body", buf + off, (int)body_len);
		char *line = json_dumps(j, JSON_COMPACT);
		fprintf(rec, "%s\n", line);
		fflush(rec);
		free(line);
		json_decref(j);
		memmove(buf, buf + off + body_len, have - off - body_len);
		have -= off + body_len;
		if (mode == NEVER_ANSWER)
			continue;
		if (mode == FAIL_ONE && !strcmp(path, fail_path))
			answer(c, 400,
			       "{\"fault_message\":\"The requested operation is not supported after starting the "
			       "microVM.\"}");
		else if (!strcmp(method, "GET"))
			answer(c, 200,
			       "{\"app_name\":\"Firecracker\",\"id\":\"anonymous-instance\",\"state\":\"Not "
			       "started\",\"vmm_version\":\"1.12.0\"}");
		else
			answer(c, 204, NULL);
	}
}

static pid_t double_start(enum mode mode, const char *fail_path)
{
	snprintf(dir, sizeof(dir), "/tmp/sbx_fc_api.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	snprintf(record, sizeof(record), "%s/record", dir);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 8) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* ends with the test, whatever happens to it */
		FILE *rec = fopen(record, "w");
		CHECK(rec);
		for (;;) {
			int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				_exit(1);
			serve_conn(c, mode, fail_path, rec);
			close(c);
		}
	}
	close(l);
	return pid;
}

static void double_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock);
	unlink(record);
	rmdir(dir);
}

/* The recorded requests, one JSON object each. */
static json_t *recorded(void)
{
	json_t *all = json_array();
	char line[70000];
	FILE *f = fopen(record, "r");
	while (f && fgets(line, sizeof(line), f))
		json_array_append_new(all, json_loads(line, 0, NULL));
	if (f)
		fclose(f);
	return all;
}

/* ---- the client, as the supervisor runs it ---- */

struct outcome {
	bool done;
	long status;
	char what[96], fault[512];
};

static void on_done(void *arg, long status, const char *what, const char *fault)
{
	struct outcome *o = arg;
	o->done = true;
	o->status = status;
	snprintf(o->what, sizeof(o->what), "%s", what ? what : "");
	snprintf(o->fault, sizeof(o->fault), "%s", fault ? fault : "");
}

/* In a child under the supervisor's filter: send reqs, write the outcome to fd out. */
static void run_filtered(const struct fc_request *reqs, size_t n, unsigned timeout_ms, int out)
{
	CHECK_EQ(sandbox_no_new_privs(), 0);
	CHECK_EQ(sandbox_seccomp(&policy_supervisor), 0);
	struct event_base *base = event_base_new();
	struct fc_http *h = fc_http_new(base, sock);
	struct outcome o = {0};
	CHECK(base && h);
	CHECK_EQ(fc_http_run(h, reqs, n, timeout_ms, on_done, &o), 0);
	CHECK_EQ(fc_http_run(h, reqs, n, timeout_ms, on_done, &o), -EBUSY); /* one sequence at a time */
	while (!o.done)
		CHECK(event_base_loop(base, EVLOOP_ONCE) == 0);
	fc_http_free(h);
	event_base_free(base);
	CHECK(write(out, &o, sizeof(o)) == (ssize_t)sizeof(o));
	_exit(0);
}

static struct outcome send_all(const struct fc_request *reqs, size_t n, unsigned timeout_ms)
{
	int p[2];
	struct outcome o = {0};
	CHECK(pipe(p) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		run_filtered(reqs, n, timeout_ms, p[1]);
	}
	close(p[1]);
	ssize_t got = read(p[0], &o, sizeof(o));
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (WIFSIGNALED(st))
		fprintf(stderr, "the client died of signal %d%s\n", WTERMSIG(st),
			WTERMSIG(st) == SIGSYS ? " (SIGSYS: a syscall the supervisor's filter does not allow)" : "");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == (ssize_t)sizeof(o));
	close(p[0]);
	return o;
}

/* Every recorded request as Firecracker's HTTP layer and API want it; their "METHOD PATH"s. */
static void check_recorded(json_t *all, char *seq, size_t len)
{
	char why[256];
	size_t i, off = 0;
	json_t *r;
	seq[0] = '\0';
	json_array_foreach(all, i, r)
	{
		const char *m = json_string_value(json_object_get(r, "method")),
			   *p = json_string_value(json_object_get(r, "path"));
		const char *b = json_string_value(json_object_get(r, "body"));
		off += (size_t)snprintf(seq + off, len - off, "%s%s %s", i ? "," : "", m, p);
		if (strcmp(m, "GET") == 0)
			continue;
		if (strcmp(json_string_value(json_object_get(r, "ct")), "application/json") != 0 ||
		    !json_is_true(json_object_get(r, "has_cl")) || *json_string_value(json_object_get(r, "te")) ||
		    *json_string_value(json_object_get(r, "expect"))) {
			fprintf(stderr, "%s %s: headers Firecracker refuses: %s\n", m, p, json_dumps(r, 0));
			CHECK(0);
		}
		json_t *body = json_loads(b, 0, NULL);
		const char *bad = misfit(m, p, body, why, sizeof(why));
		if (bad)
			fprintf(stderr, "%s (body %s)\n", bad, b);
		CHECK(!bad);
		json_decref(body);
	}
}

static const struct vm_config net_config = {
    .cpus = 2,
    .mem_mib = 256,
    .accel = ACCEL_KVM,
    .net = {.on = true, .addr = "10.254.254.2", .prefix = 30, .gw = "10.254.254.1", .mac = "02:fc:00:00:00:02"},
};

static int boot_of(struct fc_request *reqs, const struct vm_config *c)
{
	struct fc_vm vm = {.config = c,
			   .kernel = "/proc/self/fd/5",
			   .initrd = "/proc/self/fd/6",
			   .drive = {{"rootfs", "/proc/self/fd/7", true},
				     {"state", "/proc/self/fd/8", false},
				     {"image", "/proc/self/fd/9", true}},
			   .ndrives = 3,
			   .tap = "tap0",
			   .vsock_cid = 3,
			   .vsock_uds = "/v.sock"};
	return fc_boot_requests(&vm, reqs, FC_REQUESTS_MAX);
}

static void free_all(struct fc_request *reqs, int n)
{
	for (int i = 0; i < n; i++)
		fc_request_free(&reqs[i]);
}

TEST(boot_sequence_as_the_api_defines_it)
{
	struct fc_request reqs[FC_REQUESTS_MAX];
	int n = boot_of(reqs, &net_config);
	CHECK_EQ(n, 8);
	pid_t srv = double_start(ANSWER, NULL);
	struct outcome o = send_all(reqs, (size_t)n, 5000);
	CHECK(o.done && o.status == 204 && !o.what[0]);
	char seq[1024];
	json_t *all = recorded();
	check_recorded(all, seq, sizeof(seq));
	CHECK_STR(seq, "PUT /machine-config,PUT /boot-source,PUT /drives/rootfs,PUT /drives/state,PUT /drives/image,"
		       "PUT /network-interfaces/eth0,PUT /vsock,PUT /actions");
	/* what the VM is: its size, its kernel's arguments (reboot=k: the i8042 reset ends Firecracker) */
	json_t *mc = json_loads(json_string_value(json_object_get(json_array_get(all, 0), "body")), 0, NULL);
	CHECK_EQ(json_integer_value(json_object_get(mc, "vcpu_count")), 2);
	CHECK_EQ(json_integer_value(json_object_get(mc, "mem_size_mib")), 256);
	json_t *bs = json_loads(json_string_value(json_object_get(json_array_get(all, 1), "body")), 0, NULL);
	const char *args = json_string_value(json_object_get(bs, "boot_args"));
	CHECK(strstr(args, "reboot=k") && strstr(args, "fcvm.net=10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02") &&
	      !strstr(args, "i8042.nokbd"));
	json_decref(mc);
	json_decref(bs);
	json_decref(all);
	double_stop(srv);
	free_all(reqs, n);
}

TEST(no_network_no_interface)
{
	struct fc_request reqs[FC_REQUESTS_MAX];
	struct vm_config c = net_config;
	c.net.on = false;
	int n = boot_of(reqs, &c);
	CHECK_EQ(n, 7);
	for (int i = 0; i < n; i++)
		CHECK(strncmp(reqs[i].path, "/network-interfaces", 19) != 0);
	free_all(reqs, n);
}

TEST(snapshot_pause_create_resume_and_load)
{
	struct fc_request reqs[6];
	CHECK_EQ(fc_pause_request(true, &reqs[0]), 0);
	CHECK_EQ(fc_snapshot_create_request("/state", "/mem", &reqs[1]), 0);
	CHECK_EQ(fc_pause_request(false, &reqs[2]), 0);
	CHECK_EQ(fc_snapshot_load_request("/state", "/uffd.sock", true, &reqs[3]), 0);
	CHECK_EQ(fc_snapshot_load_request("/state", "/mem", false, &reqs[4]), 0);
	reqs[5] = (struct fc_request){.method = "GET", .path = "/", .body = NULL};
	pid_t srv = double_start(ANSWER, NULL);
	struct outcome o = send_all(reqs, 6, 5000);
	CHECK(o.done && o.status == 200);
	char seq[512];
	json_t *all = recorded();
	check_recorded(all, seq, sizeof(seq));
	CHECK_STR(seq, "PATCH /vm,PUT /snapshot/create,PATCH /vm,PUT /snapshot/load,PUT /snapshot/load,GET /");
	json_t *load = json_loads(json_string_value(json_object_get(json_array_get(all, 3), "body")), 0, NULL);
	CHECK_STR(json_string_value(json_object_get(json_object_get(load, "mem_backend"), "backend_type")), "Uffd");
	CHECK(json_is_true(json_object_get(load, "resume_vm")));
	json_decref(load);
	json_decref(all);
	double_stop(srv);
	free_all(reqs, 5);
}

TEST(a_fault_ends_the_sequence_with_its_message)
{
	struct fc_request reqs[FC_REQUESTS_MAX];
	int n = boot_of(reqs, &net_config);
	pid_t srv = double_start(FAIL_ONE, "/drives/state");
	struct outcome o = send_all(reqs, (size_t)n, 5000);
	CHECK(o.done && o.status == 400);
	CHECK_STR(o.what, "PUT /drives/state");
	CHECK_STR(o.fault, "The requested operation is not supported after starting the microVM.");
	char seq[1024];
	json_t *all = recorded();
	check_recorded(all, seq, sizeof(seq));
	CHECK_STR(seq, "PUT /machine-config,PUT /boot-source,PUT /drives/rootfs,PUT /drives/state"); /* nothing after */
	json_decref(all);
	double_stop(srv);
	free_all(reqs, n);
}

TEST(no_firecracker_behind_the_socket)
{
	struct fc_request r;
	CHECK_EQ(fc_pause_request(true, &r), 0);
	snprintf(dir, sizeof(dir), "/tmp/sbx_fc_api.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/none.sock", dir);
	struct outcome o = send_all(&r, 1, 2000);
	CHECK(o.done && o.status == 0 && !strcmp(o.what, "PATCH /vm") && o.fault[0]);
	fc_request_free(&r);
	rmdir(dir);
}

TEST(an_unanswered_request_times_out)
{
	struct fc_request r;
	CHECK_EQ(fc_pause_request(true, &r), 0);
	pid_t srv = double_start(NEVER_ANSWER, NULL);
	struct outcome o = send_all(&r, 1, 500);
	CHECK(o.done && o.status == 0 && !strcmp(o.what, "PATCH /vm"));
	CHECK(strstr(o.fault, "imeout") || strstr(o.fault, "timed out"));
	double_stop(srv);
	fc_request_free(&r);
}

TEST(malformed_vms_refused)
{
	struct fc_request reqs[FC_REQUESTS_MAX];
	struct fc_vm vm = {
	    .config = &net_config, .kernel = "/k", .drive = {{"bad-id", "/d", false}}, .ndrives = 1, .tap = "t"};
	CHECK_EQ(fc_boot_requests(&vm, reqs, FC_REQUESTS_MAX), -1); /* '-': Firecracker's ids are [A-Za-z0-9_] */
	vm.drive[0].id = "ok";
	vm.tap = NULL;
	CHECK_EQ(fc_boot_requests(&vm, reqs, FC_REQUESTS_MAX), -1); /* a network without its tap */
	vm.tap = "t";
	vm.kernel = NULL;
	CHECK_EQ(fc_boot_requests(&vm, reqs, FC_REQUESTS_MAX), -1);
	CHECK(fc_id_ok("rootfs") && fc_id_ok("eth_0") && !fc_id_ok("") && !fc_id_ok("a/b") && !fc_id_ok("a.b"));
}
