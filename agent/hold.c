/* Holding the container just before its process starts (proc_start's hold, the host's
 * startup cache). podman run gets --hooks-dir=HOLD_DIR, whose one hook (createRuntime: crun
 * runs it once the container's namespaces exist, before its process is started) is this
 * agent again: `fcvm-agent --hold SOCKET` connects here, says 'h' and waits for a byte. The
 * agent tells the host (container_held); the host snapshots the guest, then sends
 * container_go. A clone of that snapshot is let go by its agent_restore instead.
 *
 * The hook never fails the container: any error and it returns at once (exit 0), and the
 * agent lets it go after HOLD_MAX_MS whatever the host does. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

#define HOLD_DIR    "/run/fcvm-hooks"
#define HOLD_SOCKET "/run/fcvm-hold.sock"
#define HOLD_MAX_MS 30000

static struct {
	int listen_fd, conn_fd;
	uint32_t session;
	bool held;	   /* the hook said 'h': the host was told */
	uint64_t since_ms; /* when the hook connected */
} hold = {.listen_fd = -1, .conn_fd = -1};

static int write_all(int fd, const char *s)
{
	size_t n = strlen(s);
	return write(fd, s, n) == (ssize_t)n ? 0 : -1;
}

/* HOLD_DIR/hold.json: the hook, run as /proc/PID/exe (the agent's binary lives in the
 * initramfs, beneath the root it switched to). */
static int write_hook(void)
{
	char json[512];
	snprintf(json, sizeof(json),
		 "{\"version\":\"1.0.0\",\"hook\":{\"path\":\"/proc/%d/"
		 "exe\",\"args\":[\"fcvm-agent\",\"--hold\",\"" HOLD_SOCKET
		 "\"]},\"when\":{\"always\":true},\"stages\":[\"createRuntime\"]}\n",
		 (int)getpid());
	if (mkdir(HOLD_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(HOLD_DIR "/hold.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, json) < 0 ? -EIO : 0;
	close(fd);
	return rc;
}

const char *hold_prepare(uint32_t session)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (hold.listen_fd >= 0 || write_hook() < 0)
		return NULL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", HOLD_SOCKET);
	unlink(HOLD_SOCKET);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(HOLD_SOCKET, 0600) < 0 ||
	    listen(fd, 1) < 0) {
		aerr("hold: %s: %s", HOLD_SOCKET, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	hold.listen_fd = fd;
	hold.session = session;
	return "--hooks-dir=" HOLD_DIR;
}

void hold_release(const char *why)
{
	if (hold.conn_fd >= 0) {
		if (write(hold.conn_fd, "g", 1) != 1)
			aerr("hold: release: %s", strerror(errno));
		alog("container let go (%s)", why);
	}
	close_fdp(&hold.conn_fd);
	close_fdp(&hold.listen_fd);
	unlink(HOLD_SOCKET);
	hold.held = false;
}

int hold_pollfds(struct pollfd *p, uint64_t now, int *timeout)
{
	int n = 0;
	if (hold.listen_fd >= 0 && hold.conn_fd < 0)
		p[n++] = (struct pollfd){.fd = hold.listen_fd, .events = POLLIN};
	if (hold.conn_fd >= 0) {
		p[n++] = (struct pollfd){.fd = hold.conn_fd, .events = POLLIN};
		uint64_t end = hold.since_ms + HOLD_MAX_MS;
		int left = end > now ? (int)(end - now) : 0;
		if (*timeout < 0 || left < *timeout)
			*timeout = left;
	}
	return n;
}

static void tell_host(void)
{
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_CONTAINER_HELD, 0);
	prec_set_uint(&ev, &ev.body, "session", hold.session);
	host_send(&ev);
	pmsg_free(&ev);
	alog("container held before its start");
}

void hold_events(const struct pollfd *p, int n, uint64_t now)
{
	for (int i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		if (p[i].fd == hold.listen_fd && hold.conn_fd < 0) {
			hold.conn_fd = accept4(hold.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			hold.since_ms = now;
		} else if (p[i].fd == hold.conn_fd) {
			char c;
			ssize_t r = read(hold.conn_fd, &c, 1);
			if (r == 1 && c == 'h' && !hold.held) {
				hold.held = true;
				tell_host();
			} else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				hold_release("the hook went away"); /* crun gave up on it: nothing to hold */
			}
		}
	}
	if (hold.conn_fd >= 0 && now >= hold.since_ms + HOLD_MAX_MS)
		hold_release("nobody let it go in time");
}

static void on_alarm(int sig)
{
	(void)sig;
	_exit(0);
}

/* The hook's side. crun passes the container's state on stdin: not needed. */
int hold_client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char c;
	signal(SIGALRM, on_alarm);
	alarm(HOLD_MAX_MS / 1000 + 10); /* whatever happens, the container goes on */
	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, "h", 1) != 1)
		return 0;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return 0;
}
