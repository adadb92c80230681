/* common/apt_sources.c: the Debian mirror and proxy `fcvm setup` takes from apt's files, read
 * here from sample files under a temp root. */
#include <limits.h>

#include "common/apt_sources.h"
#include "common/util.h"
#include "tests/unit/check.h"

static char root[] = "/tmp/fcvm-apt-test.XXXXXX";

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX], dir[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	*strrchr(dir, '/') = 0;
	CHECK(mkdir_p(dir, 0755) == 0);
	FILE *f = fopen(p, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
}

static void fresh(void)
{
	CHECK(mkdtemp(root));
	unsetenv("http_proxy");
}

static void done(void)
{
	CHECK_EQ(check_sh("rm -rf %s", root), 0);
}

/* m.from relative to the root */
static const char *from(const struct apt_mirror *m)
{
	size_t l = strlen(root);
	return strncmp(m->from, root, l) == 0 ? m->from + l : m->from;
}

TEST(one_line_format)
{
	struct apt_mirror m;
	fresh();
	put("etc/apt/sources.list", "# deb http://commented.example/debian bookworm main\n"
				    "\n"
				    "deb-src http://src.example/debian bookworm main\n"
				    "deb http://security.debian.org/debian-security bookworm-security main\n"
				    "deb http://contrib.example/debian bookworm contrib non-free\n"
				    "deb cdrom:[Debian 12]/ bookworm main\n"
				    "  deb\thttp://ftp.example.org/debian/\tbookworm main contrib # a comment\n"
				    "deb http://later.example/debian bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://ftp.example.org/debian"); /* trailing '/' dropped */
	CHECK_STR(m.suite, "bookworm");
	CHECK_STR(from(&m), "/etc/apt/sources.list");
	done();
}

TEST(options_in_brackets)
{
	struct apt_mirror m;
	fresh();
	put("etc/apt/sources.list",
	    "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] https://m.example/debian "
	    "bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "https://m.example/debian");
	put("etc/apt/sources.list", "deb [ arch=amd64 ] http://spaced.example/debian bookworm main\n"
				    "deb [arch=amd64 http://unclosed.example/debian bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://spaced.example/debian");
	put("etc/apt/sources.list", "deb [arch=amd64 http://unclosed.example/debian bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), -ENOENT);
	done();
}

TEST(deb822_format)
{
	struct apt_mirror m;
	fresh();
	/* as Debian 12 installs it: the security stanza may come first */
	put("etc/apt/sources.list.d/debian.sources",
	    "Types: deb\n"
	    "URIs: http://deb.debian.org/debian-security\n"
	    "Suites: bookworm-security\n"
	    "Components: main\n"
	    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
	    "\n"
	    "# a comment inside a stanza does not end it\n"
	    "Types: deb-src\n"
	    "URIs: http://src.example/debian\n"
	    "Suites: bookworm\n"
	    "Components: main\n"
	    "\n"
	    "Types: deb\n"
	    "URIs: http://off.example/debian\n"
	    "Suites: bookworm\n"
	    "Components: main\n"
	    "Enabled: no\n"
	    "\n"
	    "types: deb deb-src\n"
	    "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
	    "URIs: mirror+file:/etc/apt/mirrors.txt\n"
	    "  http://deb.example.net/debian/\n"
	    "Suites: bookworm-updates\n"
	    "        bookworm\n"
	    "Components: contrib main\n"
	    "Signed-By:\n"
	    " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
	    " .\n"
	    " mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w\n"
	    " -----END PGP PUBLIC KEY BLOCK-----\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://deb.example.net/debian");
	CHECK_STR(m.suite, "bookworm"); /* the plain suite, though -updates is listed first */
	CHECK_STR(from(&m), "/etc/apt/sources.list.d/debian.sources");
	CHECK(strstr(m.files, "debian.sources"));
	done();
}

TEST(file_order_and_names)
{
	struct apt_mirror m;
	fresh();
	put("etc/apt/sources.list", "deb http://other.example/debian sid main\n");
	put("etc/apt/sources.list.d/a.list.disabled", "deb http://disabled.example/debian bookworm main\n");
	put("etc/apt/sources.list.d/a.save", "deb http://save.example/debian bookworm main\n");
	put("etc/apt/sources.list.d/b.sources", "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\n"
						"Components: main\n");
	put("etc/apt/sources.list.d/c.list", "deb http://c.example/debian bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://b.example/debian");
	/* a .list file is one-line format, a .sources file deb822: not the other way round */
	put("etc/apt/sources.list.d/b.sources", "deb http://b.example/debian bookworm main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://c.example/debian");
	done();
}

TEST(security_skipped)
{
	struct apt_mirror m;
	fresh();
	put("etc/apt/sources.list", "deb http://security.debian.org/debian-security bookworm-security main\n"
				    "deb http://u.example/debian bookworm-updates main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://u.example/debian"); /* no plain bookworm: -updates is the same archive */
	CHECK_STR(m.suite, "bookworm-updates");
	put("etc/apt/sources.list", "deb http://security.debian.org/debian-security bookworm-security main\n"
				    "deb http://security.debian.org/ bookworm/updates main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), -ENOENT);
	done();
}

TEST(host_release)
{
	struct apt_mirror m;
	fresh();
	put("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_CODENAME=trixie\n");
	put("etc/apt/sources.list", "deb http://u.example/debian bookworm-updates main\n"
				    "deb http://t.example/debian trixie main\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://t.example/debian"); /* a Debian archive serves every current suite */
	CHECK_STR(m.suite, "trixie");
	put("etc/os-release", "ID=ubuntu\nVERSION_CODENAME=trixie\n"); /* a derivative's archive: no */
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), 0);
	CHECK_STR(m.uri, "http://u.example/debian");
	done();
}

TEST(nothing_usable)
{
	struct apt_mirror m;
	fresh();
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), -ENOENT);
	CHECK_STR(m.files, "");
	put("etc/apt/sources.list", "# nothing\n");
	put("etc/apt/sources.list.d/x.sources", "Types: deb\nURIs: http://x.example/debian\nSuites: bookworm\n"
						"Components: contrib\n");
	CHECK_EQ(apt_find_mirror(root, "bookworm", &m), -ENOENT);
	char want[3 * PATH_MAX];
	snprintf(want, sizeof(want), "%s/etc/apt/sources.list, %s/etc/apt/sources.list.d/x.sources", root, root);
	CHECK_STR(m.files, want);
	done();
}

TEST(proxy)
{
	char p[256];
	fresh();
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 0);
	CHECK_STR(p, "");
	setenv("http_proxy", "http://env:8080", 1);
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 1); /* no apt setting: the environment */
	CHECK_STR(p, "http://env:8080");
	put("etc/apt/apt.conf.d/01proxy", "// Acquire::http::Proxy \"http://commented:1\";\n"
					  "Acquire::http::Proxy \"http://p1:3142\";\n");
	put("etc/apt/apt.conf.d/02host", "Acquire::http::Proxy::deb.example \"DIRECT\";\n");
	put("etc/apt/apt.conf.d/03x.disabled", "Acquire::http::Proxy \"http://ignored:1\";\n");
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 1); /* apt's setting beats the environment */
	CHECK_STR(p, "http://p1:3142");
	put("etc/apt/apt.conf.d/50proxy.conf", "  acquire::http::proxy   \"http://p2:3128/\" ;\n");
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 1); /* the last one read wins; names are case-blind */
	CHECK_STR(p, "http://p2:3128/");
	put("etc/apt/apt.conf", "Acquire::http::Proxy \"http://main:3\";\n");
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 1); /* apt.conf is read after apt.conf.d */
	CHECK_STR(p, "http://main:3");
	CHECK_EQ(apt_find_proxy(root, p, 8), -ENAMETOOLONG);
	put("etc/apt/apt.conf", "Acquire::http::Proxy \"DIRECT\";\n");
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 0); /* none, whatever the environment says */
	CHECK_STR(p, "");
	put("etc/apt/apt.conf", "Acquire::http::Proxy \"\";\n");
	CHECK_EQ(apt_find_proxy(root, p, sizeof(p)), 1); /* empty: no setting */
	CHECK_STR(p, "http://env:8080");
	done();
}
