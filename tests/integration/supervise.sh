# fcvm supervise: four sandboxed processes, status through the socket, the command's exit
# status, nothing left behind, one instance per state dir, clear errors.
. "$(dirname "$0")/lib.sh"
mode=$(t_mode)

# --- status --json from a command run under supervise, checked against /proc live
d=$(t_state_dir)
out=$("$FCVM" supervise --state-dir "$d" -- bash -c '
	"$0" status --json > "$FCVM_STATE_DIR/status.json" || exit 1
	# /proc of every listed process, read while they run
	for pid in $(jq -r ".processes[].pid, .launcher[0].pid" "$FCVM_STATE_DIR/status.json"); do
		awk -v p="$pid" "/^(CapEff|CapPrm|CapBnd|Seccomp|NoNewPrivs|Uid):/ { print p, \$1, \$2 }" /proc/$pid/status
	done > "$FCVM_STATE_DIR/proc.txt"
	for pid in $(jq -r ".processes[].pid" "$FCVM_STATE_DIR/status.json"); do
		cat /proc/$pid/mountinfo > "$FCVM_STATE_DIR/mountinfo.$pid"
	done
	echo "$FCVM_SOCKET"' "$FCVM")
rc=$?
t_check status_exit [ "$rc" -eq 0 ]
t_check command_sees_socket [ "$out" = "$d/fcvm.sock" ]
s=$d/status.json p=$d/proc.txt
t_check four_processes [ "$(jq -r '[.processes[].name] | join(",")' "$s" 2>/dev/null)" = "supervisor,netd,stored,uffdd" ]
t_check all_up [ "$(jq -r '[.processes[].state] | unique | join(",")' "$s")" = "up" ]
t_check mode_reported [ "$(jq -r .mode "$s")" = "$mode" ]
t_check seccomp_everywhere [ "$(jq -r '[.processes[].seccomp, .launcher[0].seccomp] | unique | join(",")' "$s")" = "2" ]
t_check nnp_everywhere [ "$(jq -r '[.processes[].no_new_privs, .launcher[0].no_new_privs] | unique | join(",")' "$s")" = "true" ]
t_check supervisor_no_caps [ "$(jq -r '.processes[0].capeff' "$s")" = "0" ]
t_check netd_only_net_admin [ "$(jq -c '.processes[1].caps' "$s")" = '["CAP_NET_ADMIN"]' ]
t_check stored_no_caps_yet [ "$(jq -r '.processes[2].capeff' "$s")" = "0" ]
t_check uffdd_no_caps [ "$(jq -r '.processes[3].capeff' "$s")" = "0" ]
t_check helpers_not_dumpable [ "$(jq -r '[.processes[1:][].dumpable] | unique | join(",")' "$s")" = "false" ]

# /proc agrees with what the processes report
pid_of() { jq -r ".processes[] | select(.name == \"$1\") | .pid" "$s"; }
proc() { awk -v p="$1" -v f="$2:" '$1 == p && $2 == f { print $3 }' "$p"; }
ok=1
for name in supervisor netd stored uffdd; do
	pid=$(pid_of $name)
	[ "$(proc "$pid" Seccomp)" = 2 ] || ok=0
	[ "$(proc "$pid" NoNewPrivs)" = 1 ] || ok=0
done
t_check proc_seccomp_nnp [ "$ok" = 1 ]
t_check proc_supervisor_capeff_0 [ "$(proc "$(pid_of supervisor)" CapEff)" = 0000000000000000 ]
t_check proc_netd_capeff_net_admin [ "$(proc "$(pid_of netd)" CapEff)" = 0000000000001000 ]
t_check proc_netd_capbnd_net_admin [ "$(proc "$(pid_of netd)" CapBnd)" = 0000000000001000 ]
t_check proc_uffdd_capeff_0 [ "$(proc "$(pid_of uffdd)" CapEff)" = 0000000000000000 ]
# each is rooted in an empty read-only tmpfs showing only what its policy names
# mountinfo: ID PARENT DEV ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS
mounts_of() { awk '{ print $5 }' "$d/mountinfo.$1" | sort | tr '\n' ' '; }
root_of() {
	awk '$5 == "/" { for (i = 7; $i != "-"; i++); print $(i + 1), $(i + 2), substr($6, 1, 2) }' "$d/mountinfo.$1"
}
for name in supervisor netd stored uffdd; do
	t_check "${name}_root_is_an_empty_tmpfs ($(root_of "$(pid_of $name)"))" [ "$(root_of "$(pid_of $name)")" = "tmpfs fcvm-root ro" ]
done
t_check "netd_sees_net_sysctls_and_tun ($(mounts_of "$(pid_of netd)"))" [ "$(mounts_of "$(pid_of netd)")" = "/ /dev/net/tun /proc/sys/net " ]
t_check "stored_sees_nothing ($(mounts_of "$(pid_of stored)"))" [ "$(mounts_of "$(pid_of stored)")" = "/ " ]
t_check "uffdd_sees_nothing ($(mounts_of "$(pid_of uffdd)"))" [ "$(mounts_of "$(pid_of uffdd)")" = "/ " ]
sup_mounts=$(mounts_of "$(pid_of supervisor)")
t_check "supervisor_sees_proc_and_its_assets ($sup_mounts)" [ "$(echo "$sup_mounts" | wc -w)" -le 3 ] && [[ "$sup_mounts" == "/ "*"/proc "* ]]
if t_is_root; then
	t_check supervisor_runs_as_fcvm [ "$(proc "$(pid_of supervisor)" Uid)" = "$(id -u fcvm)" ]
	t_check netd_runs_as_fcvm_netd [ "$(proc "$(pid_of netd)" Uid)" = "$(id -u fcvm-netd)" ]
	t_check stored_runs_as_fcvm_stored [ "$(proc "$(pid_of stored)" Uid)" = "$(id -u fcvm-stored)" ]
	t_check uffdd_runs_as_fcvm_uffdd [ "$(proc "$(pid_of uffdd)" Uid)" = "$(id -u fcvm-uffdd)" ]
	t_check launcher_runs_as_fcvm_launcher [ "$(proc "$(jq -r '.launcher[0].pid' "$s")" Uid)" = "$(id -u fcvm-launcher)" ]
	t_check status_shows_a_uid_per_process [ "$(jq -r '[.processes[].uid, .launcher[0].uid] | unique | length' "$s")" = 5 ]
else
	t_check rootless_same_uid [ "$(proc "$(pid_of netd)" Uid)" = "$(id -u)" ]
	t_check rootless_status_shows_host_uid [ "$(jq -r '[.processes[].uid] | unique | join(",")' "$s")" = "$(id -u)" ]
fi

# --- nothing of the instance is left once supervise returns
left=0
for pid in $(jq -r '.processes[].pid, .launcher[0].pid' "$s"); do
	[ "$pid" -gt 0 ] && kill -0 "$pid" 2>/dev/null && left=1
done
t_check no_process_left [ "$left" = 0 ]
t_check socket_removed [ ! -e "$d/fcvm.sock" ]

# --- the command's exit status is supervise's
"$FCVM" supervise --state-dir "$(t_state_dir)" -- sh -c 'exit 7'
t_check exit_status_propagates [ $? -eq 7 ]
"$FCVM" supervise --state-dir "$(t_state_dir)" -- sh -c 'kill -TERM $$'
t_check signal_status_propagates [ $? -eq 143 ]

# --- one instance per state dir; clear errors
d=$(t_state_dir)
"$FCVM" supervise --state-dir "$d" >/dev/null 2>&1 &
sup=$!
t_wait_until 10 "$FCVM" --state-dir "$d" ping || t_fail second_instance_refused "first did not start"
err=$("$FCVM" supervise --state-dir "$d" -- true 2>&1)
rc=$?
[ "$rc" -eq 1 ] && [[ "$err" == *"already running"* ]]
t_result second_instance_refused
"$FCVM" --state-dir "$d" shutdown
t_check shutdown_by_owner [ $? -eq 0 ]
wait "$sup"
t_check supervise_exits_0_after_shutdown [ $? -eq 0 ]

# SIGTERM to a supervise without a command: orderly stop
d=$(t_state_dir)
"$FCVM" supervise --state-dir "$d" >/dev/null 2>&1 &
sup=$!
if t_wait_until 10 "$FCVM" --state-dir "$d" ping; then
	kill -TERM "$sup"
	wait "$sup"
	[ $? -eq 0 ] && [ ! -e "$d/fcvm.sock" ]
	t_result sigterm_stops_cleanly
else
	t_fail sigterm_stops_cleanly "did not start"
fi

err=$("$FCVM" --state-dir /nonexistent/fcvm status 2>&1)
rc=$?
[ "$rc" -eq 3 ] && [[ "$err" == *"no supervisor is running"*"fcvm supervise"* ]]
t_result no_supervisor_error
"$FCVM" version | grep -q '^fcvm [0-9]'
t_check version [ $? -eq 0 ]
