#!/bin/bash
# Usage: FCVM=$BUILD/asan-bin/fcvm bash tests/asan_it.sh tests/integration/NAME.sh
# Runs an integration script against the helpers built with ASan+UBSan (tests/run: asan/NAME)
# and adds one check, NAME:no_sanitizer_reports. A helper that a report ended is restarted by
# the supervisor, so the script's own checks may well pass: this is what catches it. Helpers
# write to the state dir's supervisor.log, which lib.sh removes with the test's private root
# on exit; so the script is sourced here with lib.sh's `trap t_cleanup EXIT` turned into one
# that first scans every log under $T_ROOT.
set -u
script=${1:?usage: tests/asan_it.sh tests/integration/NAME.sh}

# A sanitizer report in any log of the test, or a helper killed by its seccomp filter (SIGSYS,
# "exited with status 159": what a UBSan report in a sandboxed helper comes to, see
# tests/asan_options.c).
T_ASAN_PATTERN='ERROR: [A-Za-z]+Sanitizer|runtime error: |SUMMARY: [A-Za-z]+Sanitizer|\) exited with status 159'
t_asan_scan() {
	local hits f
	hits=$(grep -rIlE "$T_ASAN_PATTERN" "$T_ROOT" 2>/dev/null)
	if [ -z "$hits" ]; then
		echo "PASS: $T_NAME:no_sanitizer_reports"
		return
	fi
	echo "FAIL: $T_NAME:no_sanitizer_reports (in ${hits//$'\n'/ })"
	for f in $hits; do
		echo "---- $f" >&2
		grep -E -B2 -A30 "$T_ASAN_PATTERN" "$f" | head -n 80 >&2
	done
}

# lib.sh's `trap t_cleanup EXIT` becomes "scan, then clean up"; every other trap is the builtin's
trap() {
	if [ $# -eq 2 ] && [ "$1" = t_cleanup ] && [ "$2" = EXIT ]; then
		builtin trap 't_asan_scan; t_cleanup' EXIT
	else
		# shellcheck disable=SC2064 # passed through as given
		builtin trap "$@"
	fi
}

# $0 is the script's path, as when bash runs it (lib.sh and T_NAME come from it)
BASH_ARGV0=$script
# shellcheck source=/dev/null
. "$script"
