/* Stage 3b and Landlock (policy/sandbox_root.c), each in a throwaway process: the empty root
 * shows exactly its binds and is read-only, as root (system mode, CAP_SYS_ADMIN) and as an
 * unprivileged user (a user namespace of its own first); Landlock keeps every path access
 * beneath one directory. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/sandbox.h"
#include "tests/unit/check.h"

#define NOBODY 65534

static void become_nobody(void)
{
	if (geteuid() == 0)
		CHECK(setresgid(NOBODY, NOBODY, NOBODY) == 0 && setresuid(NOBODY, NOBODY, NOBODY) == 0);
}

/* What / holds, sorted, space-separated. */
static void list_root(char *out, size_t len)
{
	struct dirent **names;
	int n = scandir("/", &names, NULL, alphasort);
	CHECK(n >= 0);
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		int k = names[i]->d_name[0] == '.' ? 0 : snprintf(out + used, len - used, "%s ", names[i]->d_name);
		if (k > 0 && (size_t)k < len - used)
			used += (size_t)k;
		free(names[i]);
	}
	free(names);
}

static const struct sandbox_bind binds[] = {{"/proc", true}, {"/dev/null", false}};
static const struct sandbox_policy rooted = {.name = "rooted", .empty_root = true, .binds = binds, .nbinds = 2};

static void check_empty_root(void)
{
	char ls[256];
	const char *const ro[] = {"/usr/share", "/nonexistent/path"}; /* a missing one is left out */
	struct sandbox_opts o = {.binds_ro = ro, .nbinds_ro = 2};
	CHECK_EQ(sandbox_empty_root(&rooted, &o), 0);
	list_root(ls, sizeof(ls));
	CHECK_STR(ls, "dev proc usr ");
	CHECK(access("/etc/passwd", F_OK) < 0 && errno == ENOENT);
	CHECK(access("/proc/self/status", R_OK) == 0);
	CHECK(access("/usr/share", R_OK) == 0);
	CHECK(mkdir("/x", 0700) < 0 && errno == EROFS); /* the root itself is read-only */
	CHECK(open("/usr/share/fcvm-test", O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS);
	int fd = open("/dev/null", O_WRONLY);
	CHECK(fd >= 0);
	close(fd);
}

TEST(empty_root_as_root)
{
	if (geteuid() != 0)
		SKIP("needs root");
	check_empty_root();
}

TEST(empty_root_unprivileged_in_a_user_namespace_of_its_own)
{
	become_nobody();
	check_empty_root();
	CHECK_EQ(getuid(), geteuid()); /* still itself, in there */
}

/* in a child, so that the test itself can remove the directory afterwards */
static int landlocked(const char *dir, const char *inside)
{
	int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d < 0 || sandbox_no_new_privs() < 0)
		return 1;
	int rc = sandbox_landlock_beneath(d);
	if (rc == -EOPNOTSUPP)
		return CHECK_EXIT_SKIP;
	int fd = open(inside, O_WRONLY | O_CREAT | O_CLOEXEC, 0600); /* beneath it: allowed */
	if (rc < 0 || fd < 0)
		return 2;
	close(fd);
	if (open("/etc/passwd", O_RDONLY) >= 0 || errno != EACCES)
		return 3;
	if (open("/tmp/fcvm-landlock-outside", O_WRONLY | O_CREAT, 0600) >= 0 || errno != EACCES)
		return 4;
	return 0;
}

TEST(landlock_keeps_paths_beneath_one_directory)
{
	char dir[] = "/tmp/fcvm-landlock.XXXXXX", inside[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(inside, sizeof(inside), "%s/inside", dir);
	pid_t pid = fork();
	if (pid == 0)
		_exit(landlocked(dir, inside));
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	unlink(inside);
	rmdir(dir);
	if (WIFEXITED(st) && WEXITSTATUS(st) == CHECK_EXIT_SKIP)
		SKIP("no Landlock in this kernel");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "landlocked child: status %#x\n", st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
