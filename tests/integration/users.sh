# Two unprivileged users on the system instance (`fcvm supervise --system`, here in a private
# directory): its socket is for the fcvm-users group; names are each user's own (both may
# have 'web', neither sees, stops or learns of the other's); root sees both with their owners
# and names one by its ID when the name is ambiguous. Snapshot tags likewise.
. "$(dirname "$0")/lib.sh"

if ! t_is_root; then
	t_skip users "needs root: the system instance and two other users"
	exit 0
fi
t_need_vm || exit 0
A=fcvm-test B=fcvm-test2
for u in $A $B; do
	if ! id -nG "$u" 2>/dev/null | grep -qw fcvm-users; then
		t_skip users "$u is not a member of fcvm-users (tests/run makes it one)"
		exit 0
	fi
done

S=$(t_state_dir)
t_supervise "$S" --system
t_result system_instance_up
[ "$(stat -c '%a %G' "$S/fcvm.sock")" = "660 fcvm-users" ]
t_result "socket_for_the_group ($(stat -c '%a %U:%G' "$S/fcvm.sock"))"
as() {
	local u=$1
	shift
	timeout 300 runuser -u "$u" -- env -i PATH="$PATH" HOME=/tmp FCVM_NO_SNAPSHOT=1 FCVM_QUIET=1 "$FCVM" --state-dir "$S" "$@"
}
out=$T_ROOT/out

runuser -u nobody -- "$FCVM" --state-dir "$S" status >"$out" 2>&1
[ $? -eq 4 ]
t_result "outside_the_group_refused ($(head -c 200 "$out"))"
as $A status >/dev/null
t_result member_served

healthy() { [ "$(as "$1" ls --json | jq -r '.[] | select(.name == "web") | .health')" = healthy ]; }
as $A podman run --network none -d --name web demo sleep 600 >/dev/null && t_wait_until 120 healthy $A
t_result a_runs_web
as $B podman run --network none -d --name web demo sleep 600 >"$out" 2>&1 && t_wait_until 120 healthy $B
t_result "b_runs_web_too ($(head -c 200 "$out"))"
[ "$(as $A ls --json | jq -r '[.[].owner | tostring] | unique | join(",")')" = "$(id -u $A)" ] &&
	[ "$(as $B ls --json | jq -r '[.[].owner | tostring] | unique | join(",")')" = "$(id -u $B)" ]
t_result each_lists_only_their_own
[ "$(f ls --json | jq -r '[.[] | select(.name == "web") | .owner | tostring] | sort | join(",")')" = \
	"$(printf '%s\n' "$(id -u $A)" "$(id -u $B)" | sort | paste -sd,)" ]
t_result root_lists_both_with_owners

# snapshot tags are per user too: both may have 's1', each sees and removes only their own;
# root sees both by their full names (uUID.TAG) and removes one by it
snaps() { as "$1" snapshot ls --json | jq -r '[.[] | select(.kind == "user") | "\(.tag):\(.owner)"] | sort | join(",")'; }
as $A snapshot create web --tag s1 >/dev/null
t_result a_snapshots_s1
as $B snapshot create web --tag s1 >"$out" 2>&1
t_result "b_snapshots_s1_too ($(head -c 200 "$out"))"
[ "$(snaps $A)" = "s1:$(id -u $A)" ] && [ "$(snaps $B)" = "s1:$(id -u $B)" ]
t_result "each_lists_only_their_own_snapshot ($(snaps $A) / $(snaps $B))"
root_snaps=$(f snapshot ls --json | jq -r '[.[] | select(.kind == "user") | .tag] | sort | join(",")')
[ "$root_snaps" = "$(printf 'u%s.s1\n' "$(id -u $A)" "$(id -u $B)" | sort | paste -sd,)" ]
t_result "root_sees_both_by_full_name ($root_snaps)"
as $B snapshot rm s1 >/dev/null && [ -z "$(snaps $B)" ] && [ "$(snaps $A)" = "s1:$(id -u $A)" ]
t_result b_removes_only_its_own_snapshot
as $B snapshot rm s1 >"$out" 2>&1
[ $? -ne 0 ] && grep -q "no snapshot tagged 's1'" "$out"
t_result "b_cannot_reach_a_s_snapshot ($(head -c 200 "$out"))"
f snapshot rm "u$(id -u $A).s1" >/dev/null && [ -z "$(snaps $A)" ]
t_result root_removes_a_s_by_full_name

# nothing answers differently for a name another user has: no oracle, no squatting
as $A podman run --network none -d --name aonly demo sleep 600 >/dev/null
t_result a_runs_aonly
as $B stop aonly >"$out" 2>&1
[ $? -ne 0 ] && grep -q "no VM named 'aonly'" "$out"
t_result "b_cannot_stop_a_s ($(head -c 200 "$out"))"
as $B podman run --name aonly --network bogus demo true >"$out" 2>&1
! grep -q "exists" "$out"
t_result "b_s_run_does_not_learn_of_a_s_name ($(head -c 200 "$out"))"
as $B exec aonly true >"$out" 2>&1
[ $? -ne 0 ] && grep -q "no VM named 'aonly'" "$out"
t_result b_cannot_exec_in_a_s

# A stops its web: B's runs on
as $A stop web >/dev/null && t_wait_until 60 sh -c "[ \"\$(runuser -u $A -- env -i PATH=\"\$PATH\" HOME=/tmp \"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"web\") | .status')\" = stopped ]"
t_result a_stopped_its_web
healthy $B && [ "$(as $B exec web echo mine)" = mine ]
t_result b_s_web_runs_on

# root: an ambiguous name is refused, the ID names one
f stop web >"$out" 2>&1
[ $? -ne 0 ] && grep -q "2 users have a VM named 'web': name it by its ID" "$out"
t_result "root_ambiguous_name_refused ($(head -c 200 "$out"))"
idb=$(as $B ls --json | jq -r '.[] | select(.name == "web") | .id')
f stop "${idb:0:12}" >/dev/null && t_wait_until 60 sh -c "[ \"\$(runuser -u $B -- env -i PATH=\"\$PATH\" HOME=/tmp \"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"web\") | .status')\" = stopped ]"
t_result root_stops_b_s_by_id

as $A stop aonly >/dev/null
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq '[.[] | select(.status != \"stopped\")] | length')\" = 0 ]"
t_result all_stopped
as $A rm web >/dev/null && as $A rm aonly >/dev/null && as $B rm web >/dev/null &&
	[ "$(f ls --json | jq length)" = 0 ] && [ -z "$(ls "$S/vms")" ]
t_result removed_leaving_nothing
f shutdown >/dev/null
t_result shutdown
