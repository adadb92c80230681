/* helpers/stored/qcow2.c: overlays written into temp files, checked field by field and with
 * qemu-img (tests only; the product never runs qemu-img). Skips when qemu-img is missing. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/stored/qcow2.h"
#include "tests/unit/check.h"

static int have_qemu_img(void)
{
	return system("qemu-img --version >/dev/null 2>&1") == 0;
}

/* Runs CMD and returns its stdout (malloc'ed) and *RC its exit status. */
static char *run(const char *cmd, int *rc)
{
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	FILE *p = popen(cmd, "r");
	size_t n;

	CHECK(out && p);
	while ((n = fread(out + len, 1, cap - 1 - len, p)) > 0)
		len += n;
	*rc = pclose(p);
	return out;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int mktemp_file(char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/test_qcow2.XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	return fd;
}

/* Checks an overlay written to PATH with qemu-img info and check. */
static void qemu_checks(const char *path, uint64_t size, const char *backing)
{
	char cmd[2048], want[1200];
	char *out;
	int rc;

	snprintf(cmd, sizeof(cmd), "qemu-img info --output=json '%s'", path);
	out = run(cmd, &rc);
	CHECK_EQ(rc, 0);
	CHECK(strstr(out, "\"format\": \"qcow2\""));
	snprintf(want, sizeof(want), "\"virtual-size\": %llu,", (unsigned long long)size);
	CHECK(strstr(out, want));
	snprintf(want, sizeof(want), "\"backing-filename\": \"%s\"", backing);
	CHECK(strstr(out, want));
	CHECK(strstr(out, "\"backing-filename-format\": \"raw\""));
	CHECK(strstr(out, "\"cluster-size\": 65536"));
	free(out);
	/* the backing file (an fdset path) cannot be opened here: check the overlay alone */
	snprintf(cmd, sizeof(cmd),
		 "qemu-img check 'json:{\"driver\":\"qcow2\",\"backing\":null,"
		 "\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}' 2>&1",
		 path);
	out = run(cmd, &rc);
	if (rc != 0)
		fprintf(stderr, "%s", out);
	CHECK_EQ(rc, 0);
	CHECK(strstr(out, "No errors were found"));
	free(out);
}

static void overlay(uint64_t size, uint32_t want_l1)
{
	unsigned char h[512];
	char path[64];
	struct stat st;
	uint64_t got;
	int fd;

	if (!have_qemu_img())
		SKIP("qemu-img missing");
	fd = mktemp_file(path, sizeof(path));
	CHECK_EQ(qcow2_l1_entries(size), want_l1);
	CHECK_EQ(qcow2_write_overlay(fd, size, "/dev/fdset/7", "raw"), 0);
	CHECK_EQ(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK(!memcmp(h, "QFI\xfb", 4));
	CHECK_EQ(rd32(h + 4), 3);
	CHECK_EQ(rd32(h + 20), 16);
	CHECK_EQ(rd64(h + 24), size);
	CHECK_EQ(rd32(h + 36), want_l1);
	CHECK_EQ(rd32(h + 56), 1);
	CHECK_EQ(rd32(h + 96), 4);
	CHECK_EQ(rd32(h + 100), 104);
	CHECK_EQ(rd32(h + 16), strlen("/dev/fdset/7"));
	CHECK(!memcmp(h + rd64(h + 8), "/dev/fdset/7", 12));
	CHECK(fstat(fd, &st) == 0);
	/* header, refcount table, refcount block, L1 cluster(s) */
	CHECK_EQ(st.st_size, (3 + (want_l1 * 8 + 65535) / 65536) * 65536);
	CHECK_EQ(qcow2_read_size(fd, &got), 0);
	CHECK_EQ(got, size);
	close(fd);
	qemu_checks(path, size, "/dev/fdset/7");
	unlink(path);
}

TEST(overlay_1m)
{
	overlay(1ULL << 20, 1);
}

TEST(overlay_4g)
{
	overlay(4ULL << 30, 8);
}

TEST(overlay_1t)
{
	overlay(1ULL << 40, 2048);
}

/* 2 PiB: the largest QEMU accepts; 4 Mi L1 entries fill 512 clusters */
TEST(overlay_max)
{
	overlay(QCOW2_MAX_SIZE, 4U << 20);
}

TEST(overlay_odd_size_and_long_name)
{
	char name[QCOW2_BACKING_MAX + 1], path[64];
	uint64_t size = (512ULL << 20) + 512; /* just over one L2 table's reach */
	int fd;

	if (!have_qemu_img())
		SKIP("qemu-img missing");
	memset(name, 'a', QCOW2_BACKING_MAX);
	name[0] = '/';
	name[QCOW2_BACKING_MAX] = 0;
	fd = mktemp_file(path, sizeof(path));
	CHECK_EQ(qcow2_l1_entries(size), 2);
	CHECK_EQ(qcow2_write_overlay(fd, size, name, "raw"), 0);
	close(fd);
	qemu_checks(path, size, name);
	unlink(path);
}

TEST(refusals)
{
	char name[QCOW2_BACKING_MAX + 2], path[64];
	uint64_t got;
	int fd = mktemp_file(path, sizeof(path));

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	CHECK(!qcow2_backing_name_ok(name)); /* 1024 bytes */
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, name, "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "", "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, NULL, "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "/dev/fdset/7\n", "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "a\tb", "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "b\x80", "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "b", ""), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, (1 << 20) + 1, "b", "raw"), -EINVAL);
	CHECK_EQ(qcow2_write_overlay(fd, QCOW2_MAX_SIZE + 512, "b", "raw"), -EINVAL);
	CHECK_EQ(qcow2_read_size(fd, &got), -EINVAL); /* still empty */
	CHECK_EQ(write(fd, "x", 1), 1);
	CHECK_EQ(qcow2_write_overlay(fd, 1 << 20, "b", "raw"), -ENOTEMPTY);
	CHECK_EQ(qcow2_read_size(fd, &got), -EINVAL);
	close(fd);
	unlink(path);
}
