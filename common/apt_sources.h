/* The Debian mirror and the proxy apt is configured with, read from apt's own files (a subset
 * of apt's syntax): where `fcvm setup` gets the archive debootstrap fetches from. root is the
 * directory the files are under: "" (or "/") for the host, a test's temp dir otherwise. */
#ifndef FCVM_APT_SOURCES_H
#define FCVM_APT_SOURCES_H

#include <limits.h>
#include <stddef.h>

struct apt_mirror {
	char uri[512];	     /* as listed, without a trailing '/' */
	char suite[64];	     /* the suite it was listed for */
	char from[PATH_MAX]; /* the file that listed it */
	char files[1024];    /* every sources file read, ", "-separated (for an error message) */
};

/* The first `deb` source of Debian's `main` component for suite, in the order apt reads them:
 * ROOT/etc/apt/sources.list (one-line "deb [options] URI SUITE COMPONENT..."), then
 * ROOT/etc/apt/sources.list.d/ *.list (one-line) and *.sources (deb822 stanzas: Types, URIs,
 * Suites, Components, Enabled), by name. Comments, deb-src, disabled stanzas and URIs
 * debootstrap cannot fetch (only http, https, ftp and file are taken) are skipped. Preferred, in
 * this order: an entry for suite itself; one for the host's own Debian release
 * (VERSION_CODENAME in ROOT/etc/os-release, when ID=debian); one for suite-updates,
 * suite-backports and the like (the same archive). Never SUITE-security: a different archive.
 * 0, or -ENOENT when nothing fits (m->files then names what was read, "" for no file). */
int apt_find_mirror(const char *root, const char *suite, struct apt_mirror *m);

/* The HTTP proxy: apt's Acquire::http::Proxy from ROOT/etc/apt/apt.conf.d/ * (by name, the
 * files apt reads: no extension or .conf) then ROOT/etc/apt/apt.conf, the last setting winning
 * as in apt (one `Acquire::http::Proxy "URL";` per line; the nested `Acquire { http { ... } }`
 * form is not read); else $http_proxy. 1 with the URL in out; 0 for none, out "" (apt's
 * "DIRECT" means none whatever the environment says); -ENAMETOOLONG if it does not fit. */
int apt_find_proxy(const char *root, char *out, size_t n);

#endif
