/* fcvm setup: hashing, running programs with progress, temp dirs, publishing. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/setup.h"
#include "common/util.h"

struct hasher {
	EVP_MD_CTX *md;
};

struct hasher *hasher_new(const char *domain)
{
	struct hasher *h = calloc(1, sizeof(*h));
	if (!h || !(h->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "fcvm setup: OpenSSL sha256 unavailable\n");
		exit(1);
	}
	hasher_add(h, domain);
	return h;
}

void hasher_add(struct hasher *h, const char *s)
{
	uint64_t n = strlen(s);
	EVP_DigestUpdate(h->md, &n, sizeof(n));
	EVP_DigestUpdate(h->md, s, n);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

void hasher_done(struct hasher *h, char out[SETUP_HASH_LEN + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	char full[2 * EVP_MAX_MD_SIZE + 1];
	unsigned n = 0;
	EVP_DigestFinal_ex(h->md, d, &n);
	hex(d, n, full);
	memcpy(out, full, SETUP_HASH_LEN);
	out[SETUP_HASH_LEN] = 0;
	EVP_MD_CTX_free(h->md);
	free(h);
}

int sha256_file(const char *path, char out[65])
{
	unsigned char buf[1 << 16], d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	ssize_t r;
	int fd AUTOCLOSE = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(md, buf, (size_t)r);
	int err = r < 0 ? -errno : 0;
	EVP_DigestFinal_ex(md, d, &n);
	EVP_MD_CTX_free(md);
	if (!err)
		hex(d, n, out);
	return err;
}

int setup_path(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int l = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return l < 0 || (size_t)l >= n ? -ENAMETOOLONG : 0;
}

int setup_fail(struct setup_ctx *c, const char *fix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err.what, sizeof(c->err.what), fmt, ap);
	va_end(ap);
	setup_path(c->err.fix, sizeof(c->err.fix), "%s", fix ? fix : "");
	return -1;
}

static long env_cols(void)
{
	struct winsize ws;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col < 500 ? ws.ws_col : 500;
	const char *env = getenv("COLUMNS");
	long v = env ? strtol(env, NULL, 10) : 0;
	return v > 20 && v < 500 ? v : 100;
}

void setup_progress(struct setup_ctx *c, const char *last)
{
	static uint64_t last_plain;
	uint64_t now = now_mono_ms(), secs = (now - c->step_start_ms) / 1000;
	if (c->tty) {
		char line[512];
		long cols = env_cols();
		snprintf(line, sizeof(line), "%s ... %llus  %s", c->step_label, (unsigned long long)secs,
			 last ? last : "");
		if ((long)strlen(line) > cols - 1)
			line[cols - 1] = 0;
		fprintf(stderr, "\r\033[K%s", line);
		fflush(stderr);
	} else if (now - last_plain >= 15000 && secs >= 15) {
		last_plain = now;
		fprintf(stderr, "%s ... %llus %s\n", c->step_label, (unsigned long long)secs, last ? last : "");
	}
}

/* A rolling window of the last bytes of output; its last complete line for progress. */
struct tailbuf {
	char buf[4096];
	size_t n;
};

static void tail_add(struct tailbuf *t, const char *p, size_t n)
{
	if (n >= sizeof(t->buf)) {
		p += n - sizeof(t->buf);
		n = sizeof(t->buf);
	}
	if (t->n + n > sizeof(t->buf)) {
		size_t drop = t->n + n - sizeof(t->buf);
		memmove(t->buf, t->buf + drop, t->n - drop);
		t->n -= drop;
	}
	memcpy(t->buf + t->n, p, n);
	t->n += n;
}

/* The last k lines (k=1: the last non-empty line) into out, indented. */
static void tail_lines(const struct tailbuf *t, int k, char *out, size_t outlen, const char *indent)
{
	size_t end = t->n, start;
	int lines = 0;
	while (end > 0 && (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0) {
		if (t->buf[start - 1] == '\n' && ++lines == k)
			break;
		start--;
	}
	size_t o = 0;
	out[0] = 0;
	for (size_t i = start; i < end && o + strlen(indent) + 2 < outlen; i++) {
		if (i == start || t->buf[i - 1] == '\n')
			o += (size_t)snprintf(out + o, outlen - o, "%s", indent);
		char ch = t->buf[i] == '\r' ? ' ' : t->buf[i];
		if ((unsigned char)ch < 32 && ch != '\n')
			ch = ' ';
		out[o++] = ch;
		out[o] = 0;
	}
}

int setup_run(struct setup_ctx *c, const char *const argv[], const struct run_opts *o)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	struct tailbuf tail = {.n = 0};
	size_t outn = 0, len = 0;
	char buf[4096];

	c->err.cmd[0] = 0;
	if (!argv[0])
		return setup_fail(c, NULL, "nothing to run");
	for (int i = 0; argv[i] && len < sizeof(c->err.cmd); i++)
		len += (size_t)snprintf(c->err.cmd + len, sizeof(c->err.cmd) - len, "%s%s", i ? " " : "", argv[i]);
	c->err.tail[0] = 0;
	if (pipe2(errp, O_CLOEXEC) < 0 || (o->out && pipe2(outp, O_CLOEXEC) < 0))
		return setup_fail(c, NULL, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return setup_fail(c, NULL, "fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(o->out ? outp[1] : errp[1], 1);
		dup2(errp[1], 2);
		if (o->cwd && chdir(o->cwd) < 0)
			_exit(126);
		setenv("LC_ALL", "C", 1);
		setenv("DEBIAN_FRONTEND", "noninteractive", 1);
		for (size_t i = 0; o->env && o->env[i]; i++) {
			const char *e = o->env[i], *eq = strchr(e, '=');
			char name[128];
			if (!eq)
				unsetenv(e);
			else if (snprintf(name, sizeof(name), "%.*s", (int)(eq - e), e) < (int)sizeof(name))
				setenv(name, eq + 1, 1);
		}
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(errp[1]);
	if (o->out) {
		close(outp[1]);
		o->out[0] = 0;
	}
	struct pollfd pf[2] = {{.fd = errp[0], .events = POLLIN}, {.fd = o->out ? outp[0] : -1, .events = POLLIN}};
	int open_fds = o->out ? 2 : 1;
	while (open_fds > 0) {
		int r = poll(pf, 2, 250);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && r > 0; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pf[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			} else if (i == 0) {
				tail_add(&tail, buf, (size_t)n);
			} else if (o->out && outn + 1 < o->outlen) {
				size_t k = (size_t)n < o->outlen - 1 - outn ? (size_t)n : o->outlen - 1 - outn;
				memcpy(o->out + outn, buf, k);
				outn += k;
				o->out[outn] = 0;
			}
		}
		if (o->progress) {
			char last[256];
			tail_lines(&tail, 1, last, sizeof(last), "");
			setup_progress(c, last);
		}
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (o->progress && c->tty)
		fprintf(stderr, "\r\033[K");
	tail_lines(&tail, 8, c->err.tail, sizeof(c->err.tail), "    ");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return setup_fail(c, NULL, "%s is not installed (or not in PATH)", argv[0]);
	if (WIFEXITED(st))
		return setup_fail(c, NULL, "%s exited with status %d", argv[0], WEXITSTATUS(st));
	return setup_fail(c, NULL, "%s was killed by signal %d", argv[0], WTERMSIG(st));
}

int setup_mktemp(struct setup_ctx *c, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/.tmp-XXXXXX", c->dir) >= n)
		return setup_fail(c, NULL, "%s: path too long", c->dir);
	if (!mkdtemp(out))
		return setup_fail(c, "check that the asset directory is writable (or pass --assets DIR)",
				  "mkdtemp %s: %s", out, strerror(errno));
	chmod(out, 0755);
	return 0;
}

/* Detach anything left mounted below path (a failed debootstrap may leave proc/sys). */
static void umount_below(const char *path)
{
	char line[8192], mnt[4096];
	size_t plen = strlen(path);
	for (int pass = 0; pass < 4; pass++) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		bool found = false;
		if (!f)
			return;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strncmp(mnt, path, plen) == 0 &&
			    (mnt[plen] == '/' || mnt[plen] == 0)) {
				found = umount2(mnt, MNT_DETACH) == 0 || found;
			}
		}
		fclose(f);
		if (!found)
			return;
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

void setup_rmtree(const char *path)
{
	if (!path || !*path)
		return;
	umount_below(path);
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int setup_publish(struct setup_ctx *c, const char *tmp, const char *name)
{
	char dst[PATH_MAX];
	struct stat st;
	setup_path(dst, sizeof(dst), "%s/%s", c->dir, name);
	if (stat(tmp, &st) == 0)
		chmod(tmp, S_ISDIR(st.st_mode) ? 0755 : 0644);
	if (rename(tmp, dst) < 0) {
		if ((errno == ENOTEMPTY || errno == EEXIST) && stat(dst, &st) == 0)
			return 0; /* someone else published the same content first */
		return setup_fail(c, NULL, "rename %s -> %s: %s", tmp, dst, strerror(errno));
	}
	return 0;
}

int setup_write_file(const char *path, const char *text, mode_t mode)
{
	int fd AUTOCLOSE = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t n = strlen(text);
	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n)
		return -EIO;
	fchmod(fd, mode);
	return 0;
}

bool setup_exists(const struct setup_ctx *c, const char *name)
{
	char p[PATH_MAX];
	setup_path(p, sizeof(p), "%s/%s", c->dir, name);
	return access(p, F_OK) == 0;
}
