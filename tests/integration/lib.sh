# Shared by the integration tests. Each test gets a private state dir, removed (with anything
# still running in it stopped) on exit, pass or fail.
set -u
FCVM=${FCVM:-$PWD/build/fcvm}
BUILD=${BUILD:-build}
T_NAME=$(basename "$0" .sh)
# One private root per test, made here in the test's own shell: state dirs made later inside
# $(...) subshells live beneath it, so cleanup finds them all.
T_ROOT=$(mktemp -d "/tmp/fcvm-it-$T_NAME.XXXXXX")
chmod 0755 "$T_ROOT"

t_pass() { echo "PASS: $T_NAME:$1"; }
t_fail() { echo "FAIL: $T_NAME:$1${2:+ ($2)}"; }
t_skip() { echo "SKIP: $T_NAME:$1${2:+ ($2)}"; }
# t_check NAME CMD...: PASS if CMD succeeds
t_check() {
	local name=$1
	shift
	if "$@"; then t_pass "$name"; else t_fail "$name"; fi
}

# cond; t_result NAME: PASS if the previous command succeeded. NAME may say why with $(...):
# its expansion would set $? before t_result reads it, so the status is the one the DEBUG
# trap kept just before the t_result command ran (set -T: in functions too; not t_result's
# own commands, nor those of what it calls).
set -T
T_LAST=0
trap 'case "${FUNCNAME[0]:-}" in t_result | t_pass | t_fail) ;; *) T_LAST=$? ;; esac' DEBUG
t_result() {
	if [ "$T_LAST" -eq 0 ]; then t_pass "$1"; else t_fail "$1"; fi
}

t_cleanup() {
	local sock
	# a supervisor left running (test failed half-way): stop it, bounded
	for sock in "$T_ROOT"/*/fcvm.sock "$T_ROOT"/*/*/fcvm.sock; do
		[ -S "$sock" ] && timeout 10 "$FCVM" --state-dir "$(dirname "$sock")" shutdown >/dev/null 2>&1
	done
	if [ -n "${T_KEEP_LOGS:-}" ]; then
		find "$T_ROOT" -name supervisor.log -exec cp {} "/tmp/$T_NAME.$$.log" \;
	fi
	rm -rf "$T_ROOT"
}
trap t_cleanup EXIT

# A fresh private state dir, world-traversable so other-uid tests can reach the socket.
t_state_dir() {
	local d
	d=$(mktemp -d "$T_ROOT/state.XXXXXX")
	chmod 0755 "$d"
	echo "$d"
}

# t_wait_until SECONDS CMD...: poll CMD every 20 ms until it succeeds; fail after SECONDS.
t_wait_until() {
	local limit=$1 start now
	shift
	start=$(date +%s%N)
	while ! "$@" >/dev/null 2>&1; do
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -ge $((limit * 1000)) ] && return 1
		sleep 0.02
	done
}

# t_supervise DIR [SUPERVISE-OPTIONS...]: a private supervisor for DIR in the background (its pid in T_SUP, its
# output in $T_ROOT/supervise.out); true once it answers a ping, within 20 s.
t_supervise() {
	"$FCVM" supervise --state-dir "$@" >>"$T_ROOT/supervise.out" 2>&1 &
	T_SUP=$!
	t_wait_until 20 test -S "$1/fcvm.sock" && t_wait_until 20 "$FCVM" --state-dir "$1" ping
}

# t_same_as_oracle NAME DIR CODE ORACLE_CODE: PASS if fcvm's DIR/f.out and DIR/f.err are the
# bytes of real podman's DIR/p.out and DIR/p.err and the exit codes match. With SORTED=1
# stdout is compared sorted: podman builds the environment from a Go map, in no fixed order.
t_same_as_oracle() {
	local name=$1 d=$2 why=
	if [ -n "${SORTED:-}" ]; then
		sort -o "$d/f.out" "$d/f.out"
		sort -o "$d/p.out" "$d/p.out"
	fi
	cmp -s "$d/f.out" "$d/p.out" ||
		why="stdout differs: '$(head -c 300 "$d/f.out" | tr '\n\r' '|~')' vs '$(head -c 300 "$d/p.out" | tr '\n\r' '|~')'"
	cmp -s "$d/f.err" "$d/p.err" ||
		why="$why stderr differs: '$(head -c 300 "$d/f.err" | tr '\n' '|')' vs '$(head -c 300 "$d/p.err" | tr '\n' '|')'"
	[ "$3" = "$4" ] || why="$why exit $3 vs $4"
	if [ -z "$why" ]; then t_pass "$name"; else t_fail "$name" "$why"; fi
}

# With S set to the test's state dir: f runs the CLI against it (bounded: a hung VM fails,
# never hangs the test), field NAME KEY reads one of VM NAME's `ls --json` fields, and
# healthy NAME is true once it runs and its health says so. A script may define its own.
f() { timeout 300 "$FCVM" --state-dir "$S" "$@"; }
field() { f ls --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
healthy() { [ "$(field "$1" health)" = healthy ] && [ "$(field "$1" status)" = running ]; }

t_is_root() { [ "$(id -u)" -eq 0 ]; }
t_mode() { if t_is_root; then echo system; else echo rootless; fi; }

# CapEff / Seccomp / NoNewPrivs of a pid from /proc
t_proc_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# For VM tests: QEMU and current guest assets ($FCVM_TEST_ASSETS, else the host's cache),
# exported as FCVM_ASSETS; otherwise a SKIP line and false (the caller exits).
t_need_vm() {
	local assets=${FCVM_TEST_ASSETS:-/var/cache/fcvm/assets}
	if ! command -v qemu-system-x86_64 >/dev/null; then
		t_skip "$T_NAME" "qemu-system-x86_64 is not installed"
		return 1
	fi
	if ! "$FCVM" setup --check --assets "$assets" >/dev/null 2>&1; then
		t_skip "$T_NAME" "no current guest assets in $assets (run: sudo build/fcvm setup)"
		return 1
	fi
	export FCVM_ASSETS=$assets FCVM_QUIET=1
	# every run boots, as the tests were written for: startup_cache.sh alone turns the cache on
	export FCVM_NO_SNAPSHOT=${FCVM_NO_SNAPSHOT-1}
}
