/* Disk clone: stored's store_clone_disk vs `cp --reflink=always` vs `btrfs subvolume
 * snapshot`, on a clean 1 GiB image and on a fragmented one (~100k extents), all in the
 * same run on the same filesystem. Usage: store_clone DATA_DIR (a btrfs mount, empty).
 * The two commands include a fork+exec, measured here too so it can be taken off. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "helpers/stored/store.h"

#define RUNS 5

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *ns)
{
	const size_t mid = RUNS / 2;
	qsort(ns, RUNS, sizeof(*ns), cmp_u64);
	return (double)ns[mid] / 1e6;
}

static int run(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Fill a disk: contiguously, or as ~n_extents separate extents (even blocks written and
 * synced first, then the odd ones). */
static void fill(int fd, uint64_t size, bool fragmented)
{
	static char block[1 << 20];
	memset(block, 0x5a, sizeof(block));
	if (!fragmented) {
		for (uint64_t off = 0; off < size; off += sizeof(block))
			if (pwrite(fd, block, sizeof(block), (off_t)off) < 0)
				exit(1);
	} else {
		for (int pass = 0; pass < 2; pass++) {
			for (uint64_t off = (uint64_t)pass * 4096; off < size; off += 8192)
				if (pwrite(fd, block, 4096, (off_t)off) < 0)
					exit(1);
			fsync(fd);
		}
	}
	fsync(fd);
}

static void measure(struct store *s, const char *data, const char *name, uint64_t size, bool fragmented)
{
	uint64_t t_store[RUNS], t_cp[RUNS], t_snap[RUNS], t_exec[RUNS];
	char src[4200], dst[4200], sub[4200], snap[4200], clone[64];
	int fd = -1;
	if (store_create_disk(s, name, size, NULL, &fd) < 0) {
		fprintf(stderr, "store_clone: cannot create %s\n", name);
		exit(1);
	}
	fill(fd, size, fragmented);
	close(fd);
	snprintf(src, sizeof(src), "%s/disks/%s/disk.img", data, name);
	snprintf(sub, sizeof(sub), "%s/disks/%s", data, name);
	for (int i = 0; i < RUNS; i++) {
		snprintf(clone, sizeof(clone), "%s-c%d", name, i);
		uint64_t t = now_mono_ns();
		if (store_clone_disk(s, name, clone, &fd) < 0)
			exit(1);
		t_store[i] = now_mono_ns() - t;
		close(fd);

		snprintf(dst, sizeof(dst), "%s/cp-%s-%d.img", data, name, i);
		char *cp[] = {"cp", "--reflink=always", src, dst, NULL};
		t = now_mono_ns();
		if (run(cp) < 0)
			exit(1);
		t_cp[i] = now_mono_ns() - t;

		snprintf(snap, sizeof(snap), "%s/snap-%s-%d", data, name, i);
		char *sn[] = {"btrfs", "-q", "subvolume", "snapshot", sub, snap, NULL};
		t = now_mono_ns();
		if (run(sn) < 0)
			exit(1);
		t_snap[i] = now_mono_ns() - t;

		char *tr[] = {"true", NULL};
		t = now_mono_ns();
		run(tr);
		t_exec[i] = now_mono_ns() - t;
	}
	double st = median_ms(t_store), cp = median_ms(t_cp), sn = median_ms(t_snap), ex = median_ms(t_exec);
	printf("%-22s %12.2f %12.2f %12.2f %10.2f %10.2f\n", name, st, cp, sn, ex, (cp - ex) / st);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct store s;
	if (argc != 2) {
		fprintf(stderr, "usage: store_clone DATA_DIR (an empty btrfs directory)\n");
		return 2;
	}
	int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || store_open(&s, root) < 0 || s.backend != STORE_BTRFS) {
		fprintf(stderr, "store_clone: %s is not an usable btrfs data directory\n", argv[1]);
		return 1;
	}
	printf("median of %d, milliseconds (cp and btrfs include one fork+exec, shown as 'exec')\n", RUNS);
	printf("%-22s %12s %12s %12s %10s %10s\n", "image", "stored", "cp --reflink", "btrfs snap", "exec",
	       "cp-exec/stored");
	measure(&s, argv[1], "clean-1GiB", 1ull << 30, false);
	measure(&s, argv[1], "fragmented-100k-ext", 400ull << 20, true); /* 4 KiB extents: 102,400 */
	return 0;
}
