/* common/assets.c: the asset directory rule and the manifest reader. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "common/assets.h"
#include "tests/unit/check.h"

static void touch(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
}

TEST(dir_default)
{
	char buf[PATH_MAX];
	setenv(FCVM_ENV_ASSETS, "/x/y", 1);
	CHECK_EQ(assets_dir_default(buf, sizeof(buf)), 0);
	CHECK_STR(buf, "/x/y");
	CHECK(assets_dir_default(buf, 3) < 0);
	unsetenv(FCVM_ENV_ASSETS);
	setenv("XDG_CACHE_HOME", "/c", 1);
	CHECK_EQ(assets_dir_default(buf, sizeof(buf)), 0);
	if (geteuid() == 0 || access(FCVM_SYSTEM_ASSETS_DIR "/" FCVM_ASSETS_MANIFEST, R_OK) == 0)
		CHECK_STR(buf, FCVM_SYSTEM_ASSETS_DIR); /* root, or the system's assets */
	else
		CHECK_STR(buf, "/c/fcvm/assets");
}

TEST(load)
{
	char dir[] = "/tmp/fcvm-assets-test.XXXXXX", err[512], want[PATH_MAX];
	struct assets a;
	CHECK(mkdtemp(dir));
	CHECK(assets_load(dir, &a, err, sizeof(err)) < 0);
	CHECK(strstr(err, "fcvm setup") && strstr(err, dir));
	touch(dir, FCVM_ASSETS_MANIFEST,
	      "{\"format\":1,\"kernel\":\"k.vmlinux\",\"initramfs\":\"i.cpio\",\"rootfs\":\"r.ext4\","
	      "\"demo_image\":\"d.tar\",\"demo_ref\":\"localhost/x:latest\",\"kernel_version\":\"6.1.0-9-amd64\"}");
	CHECK(assets_load(dir, &a, err, sizeof(err)) < 0); /* parts missing */
	CHECK(strstr(err, "k.vmlinux"));
	touch(dir, "k.vmlinux", "");
	touch(dir, "i.cpio", "");
	touch(dir, "r.ext4", "");
	touch(dir, "d.tar", "");
	CHECK_EQ(assets_load(dir, &a, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/r.ext4", dir);
	CHECK_STR(a.rootfs, want);
	CHECK_STR(a.demo_ref, "localhost/x:latest");
	CHECK_STR(a.kernel_version, "6.1.0-9-amd64");
	touch(dir, FCVM_ASSETS_MANIFEST, "{\"format\":1,\"kernel\":\"../etc/passwd\"}");
	CHECK(assets_load(dir, &a, err, sizeof(err)) < 0);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}
