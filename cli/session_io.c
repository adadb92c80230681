/* The client side of a session (a container run, an exec, logs): the process's output to
 * our stdout and stderr byte for byte, our stdin to it (with -i), the terminal in raw mode
 * and its size (with -t), and signals: for a run, the first SIGINT/SIGTERM asks the
 * supervisor to stop the VM (it then reports the container's end), a second leaves; for an
 * exec they are passed on to the process, and the third leaves (as docker's client does). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "proto/stream.h"

#define EXEC_SIGNALS_TO_LEAVE 3

#define CHUNK 4096

static int write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void send_event(int fd, struct pmsg *ev)
{
	struct perr e;
	stream_send_msg(fd, ev, &e);
	pmsg_free(ev);
}

static void send_stop(int fd, const char *vm)
{
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_VM_STOP, 99);
	prec_set_str(&req, &req.body, "name", vm);
	send_event(fd, &req);
}

static void send_winsize(int fd, uint32_t sid)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
		return;
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_PROC_RESIZE, 0);
	prec_set_uint(&ev, &ev.body, "session", sid);
	prec_set_uint(&ev, &ev.body, "rows", ws.ws_row);
	prec_set_uint(&ev, &ev.body, "cols", ws.ws_col);
	send_event(fd, &ev);
}

bool cli_term_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	if (!isatty(0) || ioctl(0, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
		return false;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return true;
}

/* Forward a chunk of our stdin; false at EOF (after telling the process). */
static bool forward_stdin(int fd, uint32_t sid)
{
	unsigned char buf[CHUNK];
	ssize_t n = read(0, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_PROC_INPUT, 0);
	prec_set_uint(&ev, &ev.body, "session", sid);
	if (n > 0)
		prec_set_bin(&ev, &ev.body, "data", buf, (size_t)n);
	else
		prec_set_bool(&ev, &ev.body, "eof", true);
	send_event(fd, &ev);
	return n > 0;
}

int cli_session(int fd, const struct cli_session *s)
{
	struct termios saved;
	bool raw = false;
	sigset_t mask, old;
	int code = EXIT_FAIL;
	bool stdin_open = s->stdin_open;
	int stop_sig = 0; /* a run stopped by our signal ends with 128 + it, as podman's would */
	int exec_signals = 0;

	if (s->tty && isatty(0) && tcgetattr(0, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(0, TCSANOW, &t) == 0;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	for (;;) {
		struct pollfd pf[3] = {
		    {.fd = fd, .events = POLLIN},
		    {.fd = sfd, .events = POLLIN},
		    {.fd = stdin_open ? 0 : -1, .events = POLLIN},
		};
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGWINCH) {
					if (s->tty)
						send_winsize(fd, s->sid);
				} else if (s->vm && !stop_sig) {
					/* a run: stop the VM; its end arrives as the session's exit */
					stop_sig = (int)si.ssi_signo;
					send_stop(fd, s->vm);
				} else if (s->vm || s->logs) {
					code = 128 + (int)si.ssi_signo; /* a second one: leave now */
					goto out;
				} else if (++exec_signals >= EXEC_SIGNALS_TO_LEAVE) {
					/* the process takes no notice, or its VM cannot pass them on */
					fprintf(stderr,
						"\r\nfcvm: %d signals and the process has not ended: leaving "
						"(it may still run)\n",
						exec_signals);
					code = 128 + (int)si.ssi_signo;
					goto out;
				} else {
					struct pmsg ev;
					pmsg_init(&ev, PK_EVENT, OP_PROC_SIGNAL, 0);
					prec_set_uint(&ev, &ev.body, "session", s->sid);
					prec_set_uint(&ev, &ev.body, "signal", si.ssi_signo);
					send_event(fd, &ev);
				}
			}
		}
		if (pf[2].revents & (POLLIN | POLLHUP | POLLERR))
			stdin_open = forward_stdin(fd, s->sid);
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		struct pmsg m;
		struct perr e = {0};
		int rc = stream_recv_msg(fd, &m, &e);
		if (rc <= 0) {
			fprintf(stderr, "\r\nfcvm: lost the connection to the supervisor\n");
			pmsg_free(&m);
			break;
		}
		if (e.code != PE_OK || m.kind != PK_EVENT) {
			/* the reply to our vm_stop, or something we do not know: nothing to do */
			if (m.kind == PK_REPLY && m.err_code != PE_OK && m.err_msg)
				fprintf(stderr, "fcvm: %s\n", m.err_msg);
			pmsg_free(&m);
			continue;
		}
		uint64_t sid = 0, v = 0;
		prec_uint(&m.body, "session", &sid);
		if (sid != s->sid) {
			pmsg_free(&m);
			continue;
		}
		if (m.op->id == OP_PROC_OUTPUT) {
			size_t n;
			const void *data = prec_bin(&m.body, "data", &n);
			prec_uint(&m.body, "stream", &v);
			if (data && write_all(v == 2 ? 2 : 1, data, n) < 0 && errno == EPIPE)
				stdin_open = false;
		} else if (m.op->id == OP_PROC_EXIT) {
			prec_uint(&m.body, "code", &v);
			code = stop_sig ? 128 + stop_sig : (int)v;
			pmsg_free(&m);
			break;
		}
		pmsg_free(&m);
	}
out:
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return code;
}

void cli_set_stdio(struct pmsg *req, bool tty, bool in)
{
	unsigned rows, cols;
	prec_set_bool(req, &req->body, "tty", tty);
	prec_set_bool(req, &req->body, "stdin", in);
	if (tty && cli_term_size(&rows, &cols)) {
		prec_set_uint(req, &req->body, "rows", rows);
		prec_set_uint(req, &req->body, "cols", cols);
	}
}

int cli_call_session(struct cli_opts *o, struct pmsg *req, struct cli_session *s)
{
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	struct pmsg rep;
	uint64_t sid = 0;
	if (fd < 0) {
		pmsg_free(req);
		return code;
	}
	code = cli_call(fd, req, &rep);
	pmsg_free(req);
	if (code == EXIT_OK && !prec_uint(&rep.body, "session", &sid))
		code = EXIT_FAIL;
	pmsg_free(&rep);
	if (code != EXIT_OK)
		return code;
	s->sid = (uint32_t)sid;
	return cli_session(fd, s);
}

int cli_started(int fd, enum proto_op op, bool detach, bool tty, bool in)
{
	struct pmsg rep;
	int code = cli_reply(fd, op, &rep);
	if (code != EXIT_OK) {
		pmsg_free(&rep);
		return code;
	}
	const char *warning = prec_str(&rep.body, "warning");
	if (warning && !getenv("FCVM_QUIET"))
		fprintf(stderr, "fcvm: warning: %s\n", warning);
	char name[80];
	snprintf(name, sizeof(name), "%s", prec_str(&rep.body, "name"));
	uint64_t sid = 0;
	bool attached = prec_uint(&rep.body, "session", &sid);
	pmsg_free(&rep);
	if (detach || !attached) {
		printf("%s\n", name);
		return EXIT_OK;
	}
	struct cli_session s = {.sid = (uint32_t)sid, .vm = name, .tty = tty, .stdin_open = in};
	return cli_session(fd, &s);
}
