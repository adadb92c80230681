# `fcvm podman run` against real `podman run` in a guest, the oracle: each case is a VM of
# its own through fcvm, and the same podman run (same options, the same demo image) inside
# one oracle VM; stdout, stderr and the exit code must be the same bytes. Podman options that
# make no sense here are refused with their reason, never ignored.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
D=$(mktemp -d "$T_ROOT/out.XXXXXX")
t_supervise "$S"
t_result supervisor_up

f podman run -d --network none --name oracle demo sleep 3600 >/dev/null
t_result oracle_up
REF=localhost/fcvm-demo:latest

# cmp_run NAME [RUN OPTIONS...] -- CMD...: fcvm podman run --rm against podman run --rm in
# the oracle (stdin from $IN, default /dev/null; SORTED=1: see t_same_as_oracle)
cmp_run() {
	local name=$1 outer=() opts=() a b
	shift
	while [ "$1" != -- ]; do
		opts+=("$1")
		case $1 in -i | -t) outer+=("$1") ;; esac
		shift
	done
	shift
	f podman run --rm --network none "${opts[@]}" demo "$@" <"${IN:-/dev/null}" >"$D/f.out" 2>"$D/f.err"
	a=$?
	f exec --vm "${outer[@]}" oracle -- podman run --rm --network=none "${opts[@]}" "$REF" "$@" \
		<"${IN:-/dev/null}" >"$D/p.out" 2>"$D/p.err"
	b=$?
	t_same_as_oracle "$name" "$D" "$a" "$b"
}

cmp_run exit_7 -- sh -c 'echo out; echo err >&2; exit 7'
cmp_run not_found_127 -- nosuch-command
cmp_run not_executable_126 -- /etc
cmp_run sigkill_137 -- sh -c 'sh -c "kill -9 \$\$"'
cmp_run all_256_bytes -- sh -c 'i=0; while [ $i -lt 256 ]; do printf "\\$(printf %o $i)"; i=$((i + 1)); done'
head -c 1048576 /dev/urandom >"$D/mib"
IN=$D/mib cmp_run stdin_1mib -i -- cat
SORTED=1 cmp_run env_and_hostname --hostname h1 -e A=1 -e HOME=/x -- env
cmp_run workdir_user -w /tmp -u nobody -- sh -c 'pwd; id; echo "home=$HOME"'
cmp_run entrypoint --entrypoint /bin/echo -- one two
cmp_run read_only_tmpfs --read-only --tmpfs /data -- sh -c 'echo x > /data/f && cat /data/f; echo y > /f'
status_lines='while read -r k v; do case $k in Cap* | Seccomp* | NoNewPrivs*) echo "$k $v" ;; esac; done </proc/self/status'
cmp_run caps_dropped --cap-drop ALL --cap-add NET_RAW -- sh -c "$status_lines"
cmp_run privileged --privileged -- sh -c "$status_lines"
cmp_run tty_newlines -t -- sh -c 'echo a; echo b'

# refused, with the reason
out=$(f podman run --rm --volume /tmp:/tmp demo true 2>&1)
rc=$?
[ "$rc" = 2 ] && [[ "$out" == *"--volume is not supported: host directories"* ]]
t_result volume_refused_with_reason
out=$(f podman run --rm --restart always demo true 2>&1)
rc=$?
[ "$rc" = 2 ] && [[ "$out" == *"--restart always is not supported"* ]]
t_result restart_refused_with_reason

# --health-cmd: fcvm's health follows the check (run by the agent: the guest has no systemd)
f podman run -d --network none --name hc --health-cmd 'test -e /tmp/ok' --health-interval 1 --health-retries 2 \
	demo sleep 3600 >/dev/null
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"hc\") | .health')\" = unhealthy ]"
t_result health_cmd_failing_is_unhealthy
f exec hc sh -c ': > /tmp/ok'
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"hc\") | .health')\" = healthy ]"
t_result health_cmd_passing_is_healthy

for vm in oracle hc; do
	f stop "$vm" >/dev/null 2>&1
	t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"$vm\") | .status')\" = stopped ]" &&
		f rm "$vm"
	t_result "removed_$vm"
done
f shutdown >/dev/null 2>&1
t_wait_until 60 sh -c "! kill -0 $T_SUP 2>/dev/null"
t_result shutdown
