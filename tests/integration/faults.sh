# No leaks under faults: `fcvm rm` with stored killed under it answers success only once the
# disk is gone (else the VM is kept, with its disk, and says so); a foreground --rm VM whose
# supervisor died is stopped and removed by the next one; SIGTERM to the instance's whole
# process group (what `timeout` sends) cleans up as SIGTERM to the launcher does; after the
# supervisor's crash-loop limit ends the instance, the next start still knows every VM and its
# disk goes with `fcvm rm`.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0
out=$T_ROOT/out

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
status_is() { [ "$(f ls --json | jq -r ".[] | select(.name == \"$1\") | .status")" = "$2" ]; }
proc_pid() { f status --json | jq -r ".processes[] | select(.name == \"$1\") | .pid"; }
disks() { ls "$S/data/disks" 2>/dev/null | grep -c '^vm-'; }

# 1. rm while stored dies under it, three times
lies=0 why=
for i in 1 2 3; do
	f podman run --network none -d --name "gone$i" demo true >/dev/null
	t_wait_until 120 status_is "gone$i" stopped || why="$why gone$i did not stop;"
	id=$(field "gone$i" id)
	pid=$(proc_pid stored)
	[ -n "$pid" ] && kill -KILL "$pid"
	f rm "gone$i" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && [ -e "$S/data/disks/vm-$id" ]; then
		lies=$((lies + 1))
		why="$why gone$i: rm said yes, its disk stayed;"
	elif [ $rc -ne 0 ] && { [ -z "$(field "gone$i" name)" ] || [ ! -e "$S/data/disks/vm-$id" ]; }; then
		why="$why gone$i: rm failed but the VM or its disk went;"
	fi
	t_wait_until 30 sh -c "[ -n \"\$(\"$FCVM\" --state-dir '$S' status --json | jq -r '.processes[] | select(.name == \"stored\" and .state == \"up\") | .pid')\" ]"
done
[ "$lies" = 0 ] && [ -z "$why" ]
t_result "rm_answers_only_what_is_true ($lies;$why)"
# a VM kept by a failed rm goes with the next rm (stored back: asked again, bounded)
for i in 1 2 3; do
	t_wait_until 60 sh -c "\"$FCVM\" --state-dir '$S' rm gone$i >/dev/null 2>&1; [ -z \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"gone$i\") | .name')\" ]"
done
[ -z "$(f ls --json | jq -r '.[].name')" ] && [ "$(disks)" = 0 ]
t_result "all_removed_in_the_end (disks: $(disks), listed: $(f ls --json | jq -c '[.[] | {name, status}]'))"

# 1b. a second rm while the first waits for the disk (stored stopped): refused, not a false yes;
# the first answers once the disk is gone
f podman run --network none -d --name twice demo true >/dev/null && t_wait_until 120 status_is twice stopped
id=$(field twice id)
pid=$(proc_pid stored)
kill -STOP "$pid"
f rm twice >"$T_ROOT/rm1" 2>&1 &
rm1=$!
t_wait_until 10 sh -c "[ -z \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"twice\") | .name')\" ]"
f rm twice >"$out" 2>&1
rc2=$?
kill -CONT "$pid"
wait $rm1
rc1=$?
[ $rc2 -ne 0 ] && grep -q "being removed already" "$out" && [ $rc1 -eq 0 ] && [ ! -e "$S/data/disks/vm-$id" ]
t_result "second_rm_says_no_false_yes (first rc=$rc1 $(head -c 150 "$T_ROOT/rm1"), second rc=$rc2 $(head -c 150 "$out"))"

# 2. a foreground --rm run whose supervisor dies: the next one stops and removes it
"$FCVM" --state-dir "$S" podman run --network none --rm --name fg demo sleep 600 >/dev/null 2>&1 &
cli=$!
t_wait_until 120 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"fg\") | .health')\" = healthy ]"
t_result foreground_running
old=$(proc_pid supervisor)
kill -KILL "$old"
t_wait_until 30 sh -c "! kill -0 $cli 2>/dev/null"
t_result foreground_client_ended
t_wait_until 90 sh -c "[ -z \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"fg\") | .name')\" ]" &&
	[ "$(disks)" = 0 ]
t_result "foreground_rm_vm_removed_by_the_next_supervisor ($(f ls --json | jq -c '.[] | {name, status}'))"
f shutdown >/dev/null
t_result first_instance_shutdown

# 3. SIGTERM to the whole process group
S=$(t_state_dir)
setsid "$FCVM" supervise --state-dir "$S" >>"$T_ROOT/supervise.out" 2>&1 &
grp=$!
t_wait_until 20 "$FCVM" --state-dir "$S" ping
t_result group_instance_up
f podman run --network none -d --name held demo sleep 600 >/dev/null && t_wait_until 120 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"held\") | .health')\" = healthy ]"
t_result group_vm_running
kill -TERM -- "-$grp"
t_wait_until 60 sh -c "! kill -0 $grp 2>/dev/null"
t_result group_instance_ended
[ "$(disks)" = 0 ] && [ -z "$(ls -A "$S/vms" 2>/dev/null)" ]
t_result "group_sigterm_leaves_nothing (disks $(disks), vms: $(ls "$S/vms" 2>/dev/null | tr '\n' ' '))"

# 4. the crash-loop limit: the instance ends, the next start knows the VM, rm removes its disk
S=$(t_state_dir)
t_supervise "$S"
f podman run --network none -d --name survivor demo sleep 600 >/dev/null && t_wait_until 120 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"survivor\") | .health')\" = healthy ]"
t_result crash_loop_vm_running
sup=$T_SUP
for i in 1 2 3 4 5 6 7; do
	p=$(proc_pid supervisor 2>/dev/null)
	[ -n "$p" ] && kill -KILL "$p"
	t_wait_until 20 sh -c "p=\$(\"$FCVM\" --state-dir '$S' status --json 2>/dev/null | jq -r '.processes[] | select(.name == \"supervisor\") | .pid'); [ -n \"\$p\" ] && [ \"\$p\" != '$p' ]" || break
done
t_wait_until 60 sh -c "! kill -0 $sup 2>/dev/null"
t_result "crash_loop_ends_the_instance"
grep -q "died .* times within" "$S/supervisor.log"
t_result crash_loop_logged
t_supervise "$S"
t_result restarted
[ "$(field survivor name)" = survivor ] && [ "$(disks)" = 1 ]
t_result "vm_known_after_the_restart ($(f ls --json | jq -c '.[] | {name, status}'), disks $(disks))"
t_wait_until 60 sh -c "s=\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"survivor\") | .status'); [ \"\$s\" = stopped ] || [ \"\$s\" = lost ]"
f rm survivor >/dev/null && [ "$(disks)" = 0 ] && [ -z "$(ls -A "$S/vms")" ]
t_result "rm_after_the_crash_loop_leaves_nothing (disks $(disks), vms/: $(ls -A "$S/vms" | tr '\n' ' ') $(ls -A "$S"/vms/* 2>/dev/null | tr '\n' ' '))"
f shutdown >/dev/null
t_result shutdown
