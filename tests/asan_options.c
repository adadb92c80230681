/* Linked only into the ASan+UBSan builds of the helpers ($(BUILD)/asan-bin, run by the
 * integration group of tests/run). Two problems of a sanitizer in a sandboxed helper:
 *  - the spawner execs every program with an empty environment, so ASAN_OPTIONS and
 *    UBSAN_OPTIONS cannot reach them: the options are compiled in here;
 *  - once sandboxed, a helper may make only the calls its seccomp filter allows, and the
 *    filter kills on anything else, so a report must not need a call the helper never makes.
 * Hence:
 *   detect_leaks=0          LeakSanitizer's exit-time scan ptrace()s the process from a
 *                           clone()d task
 *   symbolize=0             symbolizing opens the binary (or forks llvm-symbolizer): frames
 *                           are module+offset (addr2line -e BINARY OFFSET)
 *   fast_unwind_on_fatal=1  the slow unwinder (libgcc) initializes with pthread_once: futex
 *   print_stacktrace=0      (UBSan) its unwinder asks glibc for the main thread's stack
 *                           bounds: /proc/self/maps; UBSan's report names file:line anyway
 * and, before main() (so before the sandbox), a constructor that does what a report would
 * otherwise do first: ASan's list of loaded modules (it reads /proc/self/maps with open(2)),
 * and UBSan's late initialization (sigaltstack, readlink /proc/self/exe, /proc/self/cmdline
 * and environ), by way of one recoverable UB whose report goes to /dev/null (this file alone
 * is built with -fsanitize-recover=shift).
 * What a sandboxed helper still cannot do: a UBSan report (the handlers are noreturn, and
 * ASan's __asan_handle_no_return before any noreturn call -- _exit, the UBSan handlers --
 * queries sigaltstack(NULL, &old), which no helper's filter allows): the helper dies of
 * SIGSYS, status 159 in the state dir's supervisor.log, which tests/asan_it.sh counts as a
 * failure. An ASan report is written out in full, and the helper exits 1. */
#include <fcntl.h>
#include <unistd.h>
#include <sanitizer/common_interface_defs.h>

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void)
{
	return "detect_leaks=0:symbolize=0:fast_unwind_on_fatal=1:abort_on_error=0";
}

const char *__ubsan_default_options(void)
{
	return "print_stacktrace=0:symbolize=0:abort_on_error=0";
}

/* 40: too far for an int, deliberately (read at run time, as the sanitizer sees it) */
volatile int ubsan_wake_shift = 40;

__attribute__((constructor)) static void sanitizers_before_the_sandbox(void)
{
	char module[256];
	void *offset;
	__sanitizer_get_module_and_offset_for_pc((void *)sanitizers_before_the_sandbox, module, sizeof(module),
						 &offset);
	int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && null >= 0 && dup2(null, 2) == 2) {
		volatile int v = 1 << ubsan_wake_shift; /* UBSan initializes here, reporting to /dev/null */
		(void)v;
		dup2(saved, 2);
	}
	if (saved >= 0)
		close(saved);
	if (null >= 0)
		close(null);
}
