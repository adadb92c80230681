# `fcvm exec` against real `podman exec` in the same guest, the oracle: for a table of cases
# (exit codes, a command not found or not executable, signals, all 256 byte values, the two
# streams, 1 MiB through stdin, -e, --env-file, -w, -u, -t, the default environment) stdout,
# stderr and the exit code must be the same bytes. Also Podman's start semantics: an exec
# sent while the VM boots waits for its container, and `podman run -d` answers once the
# container runs (an exec right after it works).
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
D=$(mktemp -d "$T_ROOT/out.XXXXXX")
t_supervise "$S"
t_result supervisor_up

# run -d in the background; an exec sent while it boots waits, then runs
f podman run -d --network none --name px demo sleep 3600 >"$D/run.out" 2>"$D/run.err" &
run_pid=$!
t_wait_until 60 sh -c "[ -n \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"px\") | .status')\" ]"
st=$(field px status)
h=$(field px health)
out=$(f exec px echo waited)
[ "$out" = waited ] && { [ "$st" = booting ] || [ "$h" != healthy ]; }
t_result exec_while_booting_waits
wait "$run_pid"
[ "$(cat "$D/run.out")" = px ] && [ "$(field px health)" = healthy ]
t_result run_detached_answers_once_running
f exec px true
t_result exec_right_after_run

# cmp_exec NAME [EXEC OPTIONS...] -- CMD...: the same through fcvm exec and podman exec
# (stdin from $IN, default /dev/null; SORTED=1: see t_same_as_oracle; podman's options from
# the array P_OPTS when set: a file of the host's is not there for the guest's podman)
cmp_exec() {
	local name=$1 outer=() opts=() popts=() a b
	shift
	while [ "$1" != -- ]; do
		opts+=("$1")
		case $1 in -i | -t | -it | -ti) outer+=("$1") ;; esac
		shift
	done
	shift
	popts=("${opts[@]}")
	[ -n "${P_OPTS+set}" ] && popts=("${P_OPTS[@]}")
	f exec "${opts[@]}" px "$@" <"${IN:-/dev/null}" >"$D/f.out" 2>"$D/f.err"
	a=$?
	f exec --vm "${outer[@]}" px -- podman exec "${popts[@]}" fcvm "$@" <"${IN:-/dev/null}" >"$D/p.out" 2>"$D/p.err"
	b=$?
	t_same_as_oracle "$name" "$D" "$a" "$b"
}

cmp_exec exit_0 -- true
cmp_exec exit_1 -- false
cmp_exec exit_7 -- sh -c 'exit 7'
cmp_exec not_executable_126 -- /etc/passwd
cmp_exec directory_126 -- /etc
cmp_exec not_found_127 -- nosuch-command
cmp_exec not_found_path_127 -- /nosuch/cmd
cmp_exec sigkill_137 -- sh -c 'kill -9 $$'
cmp_exec sigterm_143 -- sh -c 'kill -15 $$'
cmp_exec all_256_bytes -- sh -c 'i=0; while [ $i -lt 256 ]; do printf "\\$(printf %o $i)"; i=$((i + 1)); done'
cmp_exec streams_apart -- sh -c 'echo out1; echo err1 >&2; printf out2; printf err2 >&2'
head -c 1048576 /dev/urandom >"$D/mib"
IN=$D/mib cmp_exec stdin_1mib -i -- cat
IN=$D/mib cmp_exec stdin_1mib_dd -i -- dd of=/dev/null bs=4096
SORTED=1 cmp_exec default_env -- env
SORTED=1 cmp_exec env_set -e A=1 -e HOME=/x -- env
SORTED=1 cmp_exec env_replaces_path -e PATH=/bin -- env
printf '# a comment\n\nB=2\nC=with space\n' >"$D/envfile"
P_OPTS=(-e B=2 -e "C=with space")
SORTED=1 cmp_exec env_file --env-file "$D/envfile" -- env
unset P_OPTS
cmp_exec workdir -w /tmp -- sh -c 'pwd; echo x > f; ls'
cmp_exec workdir_missing -w /nosuch -- true
SORTED=1 cmp_exec user_name -u nobody -- sh -c 'id; env'
cmp_exec user_uid -u 1234 -- sh -c 'id; echo "home=$HOME"'
cmp_exec user_uid_gid -u 1234:5 -- id
cmp_exec user_names -u nobody:nogroup -- id
cmp_exec user_unknown -u nosuch -- id
# the demo image has no grep: the shell picks the lines
status_lines='while read -r k v; do case $k in Cap* | Seccomp* | NoNewPrivs* | Groups* | Uid* | Gid*) echo "$k $v" ;; esac; done </proc/self/status'
cmp_exec caps_and_filter -- sh -c "$status_lines"
cmp_exec caps_as_user -u nobody -- sh -c "$status_lines"
cmp_exec limits_umask_host -- sh -c 'ulimit -a; umask; hostname; cat /proc/self/cgroup'
cmp_exec namespaces_mounts -- cat /proc/self/mountinfo
cmp_exec tty_newlines -t -- sh -c 'echo a; echo b; tty'
cmp_exec privileged --privileged -- sh -c "$status_lines"

# options after NAME belong to the command, as with podman exec
[ "$(f exec px echo -i -- x)" = "-i -- x" ]
t_result options_after_name_are_the_command

f rm px >/dev/null 2>&1
f stop px >/dev/null 2>&1
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"px\") | .status')\" = stopped ]"
f rm px
t_result removed
f shutdown >/dev/null 2>&1
t_wait_until 60 sh -c "! kill -0 $T_SUP 2>/dev/null"
t_result shutdown
