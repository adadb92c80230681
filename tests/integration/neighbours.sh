# Two VMs' QEMUs cannot touch each other: from inside one VMM's sandbox (the launcher's own
# jail and QEMU's filter, entered by it_vmm_probe as that VMM's uid in system mode, or as the
# same user as every VMM in rootless mode) the other QEMU cannot be seen, signalled or
# traced; and each QEMU is PID 1 of a PID namespace of its own, as a uid of its own (system
# mode).
. "$(dirname "$0")/lib.sh"
t_need_vm || exit 0
probe=$BUILD/tests/it_vmm_probe
d=$(t_state_dir)
t_supervise "$d" || { t_fail started; exit 1; }
f() { "$FCVM" --state-dir "$d" "$@"; }
f podman run -d --name a --network none demo sleep 1000 >/dev/null || t_fail start_a
f podman run -d --name b --network none demo sleep 1000 >/dev/null || t_fail start_b
healthy() { [ "$(f ls --json | jq '[.[] | select(.health == "healthy")] | length')" = 2 ]; }
t_wait_until 120 healthy
t_result both_healthy
pid_a=$(f ls --json | jq -r '.[] | select(.name == "a") | .pid')
pid_b=$(f ls --json | jq -r '.[] | select(.name == "b") | .pid')
uid_a=$(t_proc_field "$pid_a" Uid)
uid_b=$(t_proc_field "$pid_b" Uid)
for p in "$pid_a" "$pid_b"; do
	[ "$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status")" = 1 ] || t_fail "pid_1_in_its_namespace ($p)"
done
t_pass each_qemu_is_pid_1_of_its_own_namespace
if t_is_root; then
	t_check a_uid_per_vmm [ "$uid_a" != "$uid_b" ] && [ "$uid_a" != 0 ]
	out=$("$probe" "$pid_b" "$uid_a") # as VM a's QEMU would be
else
	t_check rootless_vmms_share_the_users_uid [ "$uid_a" = "$uid_b" ] && [ "$uid_a" = "$(id -u)" ]
	out=$("$probe" "$pid_b") # the same uid as b: only the PID namespace is between them
fi
val() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
t_check "probe_sees_only_itself ($(val proc_entries))" [ "$(val proc_entries)" = 1 ]
t_check "probe_cannot_signal_b ($(val kill_target))" [ "$(val kill_target)" = 3 ] # ESRCH
t_check "probe_kill_all_reaches_nothing ($(val kill_all))" [ "$(val kill_all)" = 3 ]
t_check "probe_ptrace_is_killed ($(val ptrace_status))" [ "$(val ptrace_status)" = killed ]
t_check b_still_running kill -0 "$pid_b"
[ "$(f exec b -- echo alive)" = alive ]
t_result b_still_answers
f shutdown >/dev/null
t_wait_until 30 sh -c "! kill -0 $T_SUP 2>/dev/null"
t_result shutdown
