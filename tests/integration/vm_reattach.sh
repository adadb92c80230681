# The supervisor dies (SIGKILL) while a VM runs: the launcher starts a new one, which finds
# the VM's record, re-attaches to its QEMU (same pid) and agent, and serves it as before:
# health, exec, the container's output still reaching its log, stop and rm.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
t_supervise "$S"
SUP=$T_SUP
t_result supervisor_up
field() { f ls --json | jq -r ".[] | select(.name == \"keep\") | .$1"; }
sup_pid() { f status --json | jq -r '.processes[] | select(.name == "supervisor") | .pid'; }

f podman run --network none -d --name keep demo sh -c 'i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.5; done' >/dev/null
t_wait_until 90 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"keep\") | .health')\" = healthy ]"
t_result vm_healthy
vmm=$(field pid)
old=$(sup_pid)
[ -n "$old" ] && kill -KILL "$old"
t_result supervisor_killed
new_sup() { p=$(sup_pid) && [ -n "$p" ] && [ "$p" != "$old" ]; }
t_wait_until 30 new_sup
t_result a_new_supervisor_answers
reattached() { [ "$(field status)" = running ] && [ "$(field health)" = healthy ]; }
t_wait_until 60 reattached
t_result vm_running_and_healthy_again
[ "$(field pid)" = "$vmm" ] && kill -0 "$vmm" 2>/dev/null
t_result same_vmm_process
[ "$(f exec keep -- echo after-restart)" = after-restart ]
t_result exec_after_restart
ticks() { f logs keep | grep -c '^tick'; }
n1=$(ticks)
t_wait_until 30 sh -c "[ \$(\"$FCVM\" --state-dir '$S' logs keep | grep -c '^tick') -gt $((n1 + 2)) ]"
t_result output_still_logged
f stop keep && t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"keep\") | .status')\" = stopped ]"
t_result stop_after_restart
# "stopped" is the VMM's sockets closing; the process itself ends (and is reaped) just after
id=$(f ls --json | jq -r '.[] | select(.name == "keep") | .id')
f rm keep && t_wait_until 10 sh -c "! kill -0 $vmm 2>/dev/null" && [ -n "$id" ] && [ ! -e "$S/vms/$id" ]
t_result rm_after_restart
f shutdown >/dev/null 2>&1
t_wait_until 60 sh -c "! kill -0 $SUP 2>/dev/null"
t_result shutdown
