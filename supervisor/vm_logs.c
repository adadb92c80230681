/* `fcvm logs [-f]`: the container's log (output.log, records of [stream u8][len u32 BE][bytes])
 * streamed to each reader from the file, never from memory: a reader gets records while its
 * connection's output buffer is below CLIENT_HIGH_WATER and resumes when it drains, so a
 * reader that never reads costs one buffer, whatever the log's size. A follower, at the end
 * of the file, waits for the next record; once the VM has ended it finishes the file and gets
 * its exit. Each reader has its own fd of the log: it outlives the VM's removal. The log
 * rotates (vm_io.c): a reader starts at output.log.1, if there is one, then goes on to
 * output.log; a follower at the end of a file the VM has rotated away moves on to the new one. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/vm.h"

struct log_reader {
	struct client *c;
	uint32_t sid;
	int fd;
	int next_fd;   /* output.log, while fd is output.log.1 */
	unsigned gen;  /* the VM's log_gen that the last of its files (fd or next_fd) is */
	off_t pos;     /* the next record in the file */
	uint64_t out;  /* output bytes sent: the session's offset */
	struct vm *vm; /* following it; NULL: to the end of the file, then the exit */
	TAILQ_ENTRY(log_reader) link;
};
TAILQ_HEAD(log_reader_list, log_reader);
static struct log_reader_list readers = TAILQ_HEAD_INITIALIZER(readers);

static bool room(const struct client *c)
{
	return c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) <= CLIENT_HIGH_WATER;
}

static void reader_free(struct log_reader *r)
{
	TAILQ_REMOVE(&readers, r, link);
	close_fdp(&r->fd);
	close_fdp(&r->next_fd);
	free(r);
}

/* As much as the reader's connection takes now; at the end of a log no longer followed, the
 * exit, and the reader is freed. */
static void pump(struct log_reader *r)
{
	static unsigned char buf[CHUNK_MAX_LOG];
	unsigned char hdr[5];
	while (room(r->c)) {
		uint32_t be, n = 0;
		bool whole = r->fd >= 0 && pread(r->fd, hdr, sizeof(hdr), r->pos) == (ssize_t)sizeof(hdr);
		if (whole) {
			memcpy(&be, hdr + 1, 4);
			n = ntohl(be);
			whole = n > 0 && n <= CHUNK_MAX_LOG && pread(r->fd, buf, n, r->pos + 5) == (ssize_t)n;
		}
		if (!whole && r->next_fd >= 0) { /* output.log.1 read: output.log */
			close_fdp(&r->fd);
			r->fd = r->next_fd;
			r->next_fd = -1;
			r->pos = 0;
			continue;
		}
		if (!whole && r->vm && r->gen != r->vm->log_gen && r->vm->log_fd >= 0) { /* rotated away */
			close_fdp(&r->fd);
			r->fd = fcntl(r->vm->log_fd, F_DUPFD_CLOEXEC, 3);
			r->gen = r->vm->log_gen;
			r->pos = 0;
			continue;
		}
		if (!whole) { /* the end of the file (or of what is whole of it) */
			if (r->vm)
				return; /* following: more comes */
			vm_send_exit(r->c, r->sid, 0, 0, r->out);
			reader_free(r);
			return;
		}
		vm_send_output(r->c, r->sid, hdr[0] == 2 ? 2 : 1, r->out, buf, n);
		r->pos += 5 + (off_t)n;
		r->out += n;
	}
}

void vm_logs_start(struct vm *vm, struct client *c, uint32_t sid, bool follow)
{
	struct log_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		vm_send_exit(c, sid, 0, 0, 0);
		return;
	}
	r->c = c;
	r->sid = sid;
	r->fd = vm->log_fd < 0 ? -1 : fcntl(vm->log_fd, F_DUPFD_CLOEXEC, 3);
	r->next_fd = -1;
	r->gen = vm->log_gen;
	int older = vm->dirfd < 0 ? -1 : openat(vm->dirfd, "output.log.1", O_RDONLY | O_CLOEXEC);
	if (older >= 0) {
		r->next_fd = r->fd;
		r->fd = older;
	}
	r->vm = follow && (vm->status == VM_CREATING || vm->status == VM_BOOTING || vm->status == VM_RUNNING ||
			   vm->status == VM_STOPPING)
		    ? vm
		    : NULL;
	TAILQ_INSERT_TAIL(&readers, r, link);
	pump(r);
}

/* ACT on every reader following VM, or of client C (the other NULL); ACT may free it. */
static void visit(const struct vm *vm, const struct client *c, void (*act)(struct log_reader *r))
{
	struct log_reader *r, *next;
	for (r = TAILQ_FIRST(&readers); r; r = next) {
		next = TAILQ_NEXT(r, link);
		if ((vm && r->vm == vm) || (c && r->c == c))
			act(r);
	}
}

static void stop_following(struct log_reader *r)
{
	r->vm = NULL;
	pump(r);
}

void vm_logs_appended(struct vm *vm)
{
	visit(vm, NULL, pump);
}

void vm_logs_vm_ended(struct vm *vm)
{
	visit(vm, NULL, stop_following);
}

void vm_logs_client_drained(struct client *c)
{
	visit(NULL, c, pump);
}

void vm_logs_client_gone(struct client *c)
{
	visit(NULL, c, reader_free);
}

bool vm_logs_client_reads(const struct client *c)
{
	struct log_reader *r;
	TAILQ_FOREACH (r, &readers, link)
		if (r->c == c)
			return true;
	return false;
}
