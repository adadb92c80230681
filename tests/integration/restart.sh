# A helper killed with SIGKILL is restarted and answers again; a request in flight to it fails
# cleanly instead of hanging; the other helpers are not disturbed.
. "$(dirname "$0")/lib.sh"

d=$(t_state_dir)
"$FCVM" supervise --state-dir "$d" >/dev/null 2>&1 &
sup=$!
if ! t_wait_until 10 "$FCVM" --state-dir "$d" ping netd; then
	t_fail started "supervisor did not come up; log: $(tail -5 "$d/supervisor.log" 2>/dev/null)"
	exit 1
fi
f() { "$FCVM" --state-dir "$d" "$@"; }
pid_of() { f status --json | jq -r ".processes[] | select(.name == \"$1\") | .$2"; }
# signal only a real process: pid 0 or empty would hit our own process group
sig() { [[ "$2" =~ ^[1-9][0-9]*$ ]] && kill "-$1" "$2"; }

old=$(pid_of netd pid)
stored_old=$(pid_of stored pid)
sig KILL "$old"
start=$(date +%s%N)
# restarted: a new pid answers a ping that travels through the supervisor to netd
back() {
	local p
	p=$(f ping --json netd | jq -r .pid) && [[ "$p" =~ ^[1-9][0-9]*$ ]] && [ "$p" != "$old" ]
}
if t_wait_until 2 back; then
	ms=$((($(date +%s%N) - start) / 1000000))
	t_pass "netd_back_within_2s (${ms} ms)"
else
	t_fail netd_back_within_2s "$(tail -5 "$d/supervisor.log")"
fi
t_check restart_counted [ "$(pid_of netd restarts)" = 1 ]
t_check netd_up_again [ "$(pid_of netd state)" = up ]
[ "$(pid_of stored pid)" = "$stored_old" ] && [ "$(pid_of stored restarts)" = 0 ]
t_result others_untouched
t_check restart_logged grep -q 'netd (pid '"$old"') is gone' "$d/supervisor.log"

# A request in flight when the helper dies: stop netd, ask it, kill it. The answer must be a
# clean "unavailable" (exit 5) or, if it raced past the restart, a normal reply: never a hang.
cur=$(pid_of netd pid)
sig STOP "$cur"
f ping netd >"$d/inflight.out" 2>&1 &
asker=$!
sig KILL "$cur"
if t_wait_until 5 bash -c "! kill -0 $asker"; then
	wait "$asker"
	rc=$?
	{ [ "$rc" -eq 5 ] && grep -q 'netd' "$d/inflight.out"; } || [ "$rc" -eq 0 ]
	t_result inflight_fails_cleanly
else
	kill "$asker"
	t_fail inflight_fails_cleanly "request hung"
fi
t_check answers_after_second_restart t_wait_until 3 f ping netd

# A hung helper (stopped, channel still open): requests to it fail after the call timeout
# instead of hanging, and status still answers, naming it.
cur=$(pid_of uffdd pid)
sig STOP "$cur"
out=$(timeout 20 "$FCVM" --state-dir "$d" ping uffdd 2>&1)
rc=$?
[ "$rc" -eq 5 ] && [[ "$out" == *"uffdd did not answer within"* ]]
t_result hung_helper_times_out
t_check status_names_unresponsive [ "$(timeout 20 "$FCVM" --state-dir "$d" status --json | jq -r '.processes[3].state')" = unresponsive ]
sig CONT "$cur"
t_check hung_helper_answers_again t_wait_until 3 f ping uffdd
[ "$(pid_of uffdd pid)" = "$cur" ]
t_result "hung_helper_is_the_same_process (was $cur, now $(pid_of uffdd pid): its filter lets its poll resume)"

# kill every helper at once: all return
for h in netd stored uffdd; do sig KILL "$(pid_of $h pid)"; done
all_up() { [ "$(f status --json | jq -r '[.processes[].state] | unique | join(",")')" = up ]; }
t_check all_helpers_return t_wait_until 5 all_up

f shutdown
wait "$sup"
t_check clean_exit [ $? -eq 0 ]
