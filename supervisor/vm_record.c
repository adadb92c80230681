/* Each VM's record, vms/NAME/vm.json, written atomically (a temporary file, then rename)
 * whenever what a restarted supervisor needs changes. A supervisor that starts while VMs
 * still run (its predecessor died; the launcher kept the VMMs) reads the records and
 * re-attaches: QMP and the agent's port answer again, the container's unacknowledged output
 * is sent again by the agent into the VM's log. A VM whose VMM is gone is marked lost. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"
#include "supervisor/vmm.h"

#define RECORD	   "vm.json"
#define RECORD_TMP "vm.json.tmp"

void vm_record_save(struct vm *vm)
{
	if (vm->dirfd < 0)
		return;
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:s, s:s, s:i, s:I, s:b, s:b, s:i, s:I, s:s}", "name",
		      vm->name, "id", vm->id, "image", vm->image, "owner", (json_int_t)vm->owner, "created_ms",
		      (json_int_t)vm->created_ms, "cpu", (int)vm->qc.cpus, "mem", (int)vm->qc.mem_mib, "accel",
		      accel_name(vm->qc.accel), "network", vm->network, "pid", (int)vm->pid, "vmm_uid",
		      (json_int_t)vm->vmm_uid, "remove", vm->remove_on_stop, "disk", vm->disk_made, "exit_code",
		      vm->exit_code, "boot_ms", (json_int_t)vm->boot_ms, "status", vm_status_name(vm->status));
	if (j) {
		json_object_set_new(j, "log_max", json_integer((json_int_t)vm->log_max));
		json_object_set_new(j, "foreground", json_boolean(vm->foreground));
		json_object_set_new(j, "limits", json_string(vm->limits));
		json_object_set_new(j, "identity_set", json_boolean(vm->identity_set));
	}
	if (!j)
		return;
	if (vm->clone_of[0])
		json_object_set_new(j, "clone_of", json_string(vm->clone_of));
	/* the network: what netd must be asked to remove once the VMM is gone, and the listing */
	json_t *ports = json_array();
	for (unsigned i = 0; i < vm->net.nports; i++)
		json_array_append_new(ports, json_string(vm->net.ports[i]));
	json_object_set_new(j, "net",
			    json_pack("{s:b, s:s, s:s, s:s, s:o}", "made", vm->net.made, "host_if", vm->net.host_if,
				      "host_addr", vm->net.host_addr, "guest_ip", vm->net.guest_ip, "ports", ports));
	int fd = openat(vm->dirfd, RECORD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : json_dumpfd(j, fd, JSON_COMPACT);
	if (fd >= 0)
		close(fd);
	json_decref(j);
	if (rc < 0 || renameat(vm->dirfd, RECORD_TMP, vm->dirfd, RECORD) < 0)
		log_err("%s: its record was not saved: %s", vm->name, strerror(errno));
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* One record into a VM (no events yet: the loop does not exist). NULL if unusable. */
static struct vm *load_one(struct supervisor *s, const char *dirname)
{
	size_t len = strlen(dirname);
	if (len >= sizeof(((struct vm *)0)->dirname))
		return NULL;
	int dirfd = openat(s->vms_dirfd, dirname, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0)
		return NULL;
	int fd = openat(dirfd, RECORD, O_RDONLY | O_CLOEXEC);
	json_error_t jerr;
	json_t *j = fd < 0 ? NULL : json_loadfd(fd, 0, &jerr);
	if (fd >= 0)
		close(fd);
	struct vm *vm = j ? calloc(1, sizeof(*vm)) : NULL;
	const char *name = j ? jstr(j, "name") : "";
	/* the directory is the VM's id (a record of an older supervisor: its name) */
	if (!vm || !name[0] || strlen(name) >= sizeof(vm->name) ||
	    (strcmp(jstr(j, "id"), dirname) != 0 && strcmp(name, dirname) != 0)) {
		log_err("vms/%s: no usable record; left alone", dirname);
		json_decref(j);
		free(vm);
		close(dirfd);
		return NULL;
	}
	vm->sup = s;
	vm->dirfd = dirfd;
	vm->ram_fd = -1; /* the predecessor's: gone with it (such a VM cannot be snapshotted) */
	vm->image_fd = -1;
	snprintf(vm->clone_of, sizeof(vm->clone_of), "%s", jstr(j, "clone_of"));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	memcpy(vm->dirname, dirname, len + 1);
	snprintf(vm->id, sizeof(vm->id), "%s", jstr(j, "id"));
	snprintf(vm->image, sizeof(vm->image), "%s", jstr(j, "image"));
	snprintf(vm->network, sizeof(vm->network), "%s", jstr(j, "network"));
	snprintf(vm->health, sizeof(vm->health), "unknown");
	snprintf(vm->limits, sizeof(vm->limits), "%s", jstr(j, "limits"));
	vm->owner = (uid_t)jint(j, "owner");
	vm->created_ms = (uint64_t)jint(j, "created_ms");
	vm->qc.cpus = (unsigned)jint(j, "cpu");
	vm->qc.mem_mib = (unsigned)jint(j, "mem");
	vm->qc.accel = strcmp(jstr(j, "accel"), "kvm") == 0 ? ACCEL_KVM : ACCEL_TCG;
	vm->pid = (pid_t)jint(j, "pid");
	vm->vmm_uid = (uid_t)jint(j, "vmm_uid");
	vm->remove_on_stop = json_is_true(json_object_get(j, "remove"));
	vm->disk_made = json_is_true(json_object_get(j, "disk"));
	vm->foreground = json_is_true(json_object_get(j, "foreground"));
	vm->identity_set = json_is_true(json_object_get(j, "identity_set"));
	vm->exit_code = (int)jint(j, "exit_code");
	vm->boot_ms = (uint64_t)jint(j, "boot_ms");
	json_t *net = json_object_get(j, "net");
	if (json_is_object(net)) {
		vm->net.made = json_is_true(json_object_get(net, "made"));
		snprintf(vm->net.host_if, sizeof(vm->net.host_if), "%s", jstr(net, "host_if"));
		snprintf(vm->net.host_addr, sizeof(vm->net.host_addr), "%s", jstr(net, "host_addr"));
		snprintf(vm->net.guest_ip, sizeof(vm->net.guest_ip), "%s", jstr(net, "guest_ip"));
		json_t *ports = json_object_get(net, "ports");
		for (size_t i = 0; i < json_array_size(ports) && vm->net.nports < VM_PORTS_MAX; i++)
			if (json_is_string(json_array_get(ports, i)))
				snprintf(vm->net.ports[vm->net.nports++], sizeof(vm->net.ports[0]), "%s",
					 json_string_value(json_array_get(ports, i)));
	}
	const char *st = jstr(j, "status");
	vm->status = strcmp(st, "running") == 0 || strcmp(st, "booting") == 0 ? VM_BOOTING : VM_STOPPED;
	vm->run_started = true; /* the container was started by the predecessor: never again */
	vm->reattached = true;
	vm->log_fd = openat(dirfd, "output.log", O_RDWR | O_APPEND | O_CLOEXEC);
	vm->log_max = jint(j, "log_max") > 0 ? (uint64_t)jint(j, "log_max") : VM_LOG_MAX_DEFAULT;
	struct stat lst;
	vm->log_size = vm->log_fd >= 0 && fstat(vm->log_fd, &lst) == 0 ? (uint64_t)lst.st_size : 0;
	vm->next_sid = 1000; /* above what the predecessor handed out */
	TAILQ_INIT(&vm->sessions);
	TAILQ_INIT(&vm->waiters);
	json_decref(j);
	return vm;
}

int vm_records_load(struct supervisor *s)
{
	int fd = openat(s->vms_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	int n = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct vm *vm = load_one(s, de->d_name);
		if (vm) {
			TAILQ_INSERT_TAIL(&s->vms, vm, link);
			n++;
		}
	}
	closedir(d);
	return n;
}

void vm_records_attach(struct supervisor *s)
{
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		vm->timer = vm_timer_new(vm);
		if (vm->status != VM_BOOTING)
			continue;
		/* the container's session, with nobody attached: its output goes to the log */
		struct vm_session *run = vm_session_new(vm, NULL, true);
		if (run) {
			run->sid = 1;
			run->resync = true;
		}
		int rc;
		if ((rc = vmm_of(vm)->attach(vm)) < 0 || (rc = agent_link_open(vm)) < 0) {
			log_err("%s: its VMM (pid %d) is gone (%s); marked lost", vm->name, vm->pid, strerror(-rc));
			vmm_of(vm)->detach(vm);
			agent_link_close(vm);
			vm->status = VM_LOST;
			vm->pid = 0;
			vm_record_save(vm);
			continue;
		}
		log_info("%s: re-attaching to VMM pid %d", vm->name, vm->pid);
		vm_boot_deadline(vm);
	}
}
