# The container's output log is bounded (--log-opt max-size, podman's spelling): past the
# size output.log becomes output.log.1 and a new one begins; `fcvm logs` gives both, in order;
# a follower moves on across rotations without a gap; bad values are refused.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
out=$T_ROOT/out

f podman run --log-opt max-size=-1 --network none --rm demo true >"$out" 2>&1
[ $? -eq 2 ] && grep -q "unlimited logs are not kept" "$out"
t_result unlimited_refused
f podman run --log-opt tag=x --network none --rm demo true >"$out" 2>&1
[ $? -eq 2 ] && grep -q "log-opt tag is not supported" "$out"
t_result other_log_opts_refused

N=20000
f podman run -d --name seq --network none --log-opt max-size=16k demo \
	sh -c "i=0; while [ \$i -lt $N ]; do i=\$((i + 1)); echo \$i; done; exec sleep 600" >/dev/null
t_result started
timeout 300 "$FCVM" --state-dir "$S" logs -f seq >"$T_ROOT/follow.out" 2>&1 &
follower=$!
t_wait_until 240 sh -c "tail -n 1 '$T_ROOT/follow.out' | grep -qx $N"
t_result "follower_reached_the_end ($(tail -n 1 "$T_ROOT/follow.out"))"
# consecutive from wherever it started (it began after some output) to N: no gap, no repeat
awk -v n=$N 'NR == 1 { prev = $1; next } $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad || prev != n }' \
	"$T_ROOT/follow.out"
t_result "follower_saw_no_gap ($(head -n 1 "$T_ROOT/follow.out")..$(tail -n 1 "$T_ROOT/follow.out"), $(wc -l <"$T_ROOT/follow.out") lines)"

id=$(field seq id)
d=$S/vms/$id
s0=$(stat -c %s "$d/output.log" 2>/dev/null) s1=$(stat -c %s "$d/output.log.1" 2>/dev/null)
[ -n "$s0" ] && [ -n "$s1" ] && [ "$s0" -le 16384 ] && [ "$s1" -le 16384 ] && [ "$s1" -gt 8192 ]
t_result "files_bounded (output.log $s0, output.log.1 $s1 bytes)"
f logs seq >"$out"
awk -v n=$N 'NR == 1 { prev = $1; next } $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad || prev != n }' "$out" &&
	[ "$(wc -c <"$out")" -le 32768 ] && [ "$(wc -c <"$out")" -gt 8192 ]
t_result "logs_give_what_is_kept_in_order ($(head -n 1 "$out")..$(tail -n 1 "$out"), $(wc -c <"$out") bytes)"

f stop seq >/dev/null
t_wait_until 60 sh -c "! kill -0 $follower 2>/dev/null"
t_result follower_ends_with_the_vm
wait "$follower"
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"seq\") | .status')\" = stopped ]" &&
	f rm seq >/dev/null && [ ! -e "$d" ]
t_result removed_with_both_files
f shutdown >/dev/null
t_result shutdown
