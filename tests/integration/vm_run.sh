# Containers in real microVMs (QEMU, software emulation here) under a private supervisor:
# output and exit codes, stdout vs stderr byte for byte, detached VMs with exec and logs,
# stop and remove, signals to a foreground run, several VMs at once. As root (system mode)
# and as an unprivileged user (rootless), with the guest assets `fcvm setup` built.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
t_supervise "$S"
SUP=$T_SUP
t_result supervisor_up
out=$T_ROOT/out err=$T_ROOT/err

# 1. echo, and the exit code
f podman run --network none --rm demo echo hi >"$out" 2>"$err"
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$out")" = hi ]
t_result "echo_prints_hi (rc=$rc, out=$(head -c 80 "$out"), err=$(head -c 200 "$err"))"
f podman run --network none --rm demo sh -c 'exit 7' >/dev/null 2>&1
t_check exit_code_7_propagates test $? -eq 7

# 2. stdout and stderr apart, byte-exact: all 256 byte values, no trailing newline; 1 MiB line
fmt=
for i in $(seq 0 255); do fmt="$fmt\\$(printf %03o "$i")"; done
printf "$fmt" >"$T_ROOT/want256"
f podman run --network none --rm demo sh -c "printf '$fmt'; printf 'to-stderr' >&2" >"$out" 2>"$err"
cmp -s "$out" "$T_ROOT/want256" && [ "$(cat "$err")" = to-stderr ] && [ "$(wc -c <"$err")" -eq 9 ]
t_result all_256_bytes_on_stdout_stderr_apart
f podman run --network none --rm demo sh -c 'head -c 1048576 /dev/zero | tr "\0" a; echo' >"$out" 2>/dev/null
[ "$(wc -c <"$out")" -eq 1048577 ] && [ "$(tr -d a <"$out" | wc -c)" -eq 1 ]
t_result one_mib_line_complete

# 3. detached: healthy in ls --json; exec with stdin, exit codes, a tty; logs
f podman run --network none -d --name det demo sh -c 'echo started; echo oops >&2; exec sleep 1000' >"$out" 2>"$err"
t_check detached_prints_name grep -qx det "$out"
healthy() { f ls --json | jq -e '.[] | select(.name == "det" and .health == "healthy" and .status == "running")' >/dev/null; }
t_wait_until 90 healthy
t_result ls_json_shows_healthy
# QEMU is confined: no capabilities, no_new_privs, seccomp, and a filesystem of its own
vmm=$(f ls --json | jq -r '.[] | select(.name == "det") | .pid')
[ "$(t_proc_field "$vmm" CapEff)" = 0000000000000000 ] && [ "$(t_proc_field "$vmm" Seccomp)" = 2 ] &&
	[ "$(t_proc_field "$vmm" NoNewPrivs)" = 1 ]
t_result qemu_no_caps_seccomp_nnp
if t_is_root; then
	# a uid of its own from fcvm-vmm's subordinate range (scripts/create-users registers it)
	IFS=: read -r _ first count < <(grep '^fcvm-vmm:' /etc/subuid)
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$vmm/status")
	[ -n "$first" ] && [ "$uid" -ge "$first" ] && [ "$uid" -lt $((first + count)) ]
	t_result qemu_runs_as_a_uid_of_its_own
fi
# PID 1 of a PID namespace of its own: it sees no other process
[ "$(awk '/^NSpid:/ {print NF}' "/proc/$vmm/status")" = 3 ] && [ "$(awk '/^NSpid:/ {print $3}' "/proc/$vmm/status")" = 1 ]
t_result qemu_is_pid_1_of_its_own_pid_namespace
view=$(ls "/proc/$vmm/root/" 2>/dev/null | tr '\n' ' ')
[ "$view" = "bin dev lib lib64 proc usr " ] && [ ! -e "/proc/$vmm/root/etc" ] && [ ! -e "/proc/$vmm/root$S" ]
t_result "qemu_sees_only_usr_proc_dev ($view)"
[ "$(f exec det -- echo in-container)" = in-container ]
t_result exec_prints
f exec det -- sh -c 'exit 3'
t_check exec_exit_code test $? -eq 3
[ "$(printf 'line1\nline2' | f exec -i det -- cat)" = "$(printf 'line1\nline2')" ]
t_result exec_stdin_to_eof
f exec -t det -- tty >"$out"
grep -q '^/dev/pts/' "$out"
t_result exec_tty_has_a_pty
f exec --vm det -- cat /proc/1/cmdline >"$out"
grep -q fcvm-agent "$out" || grep -q init "$out"
t_result exec_in_the_vm
t_wait_until 30 sh -c "\"$FCVM\" --state-dir '$S' logs det 2>/dev/null | grep -q started"
f logs det >"$out" 2>"$err"
grep -qx started "$out" && grep -qx oops "$err" && ! grep -q oops "$out"
t_result logs_keep_streams_apart
f rm det 2>/dev/null
t_check rm_refuses_a_running_vm test $? -ne 0
f stop det
t_wait_until 60 sh -c "\"$FCVM\" --state-dir '$S' ls --json | jq -e '.[] | select(.name == \"det\" and .status == \"stopped\")'"
t_result stop_stops
id=$(f ls --json | jq -r '.[] | select(.name == "det") | .id') # its directory: vms/ID
f rm det && ! f ls --json | jq -e '.[] | select(.name == "det")' >/dev/null && [ -n "$id" ] && [ ! -e "$S/vms/$id" ]
t_result rm_removes_everything

# 4. a foreground run stopped by SIGTERM or SIGINT leaves nothing behind
for sig in TERM INT; do
	name=fg$sig
	"$FCVM" --state-dir "$S" podman run --network none --rm --name "$name" demo sleep 1000 >/dev/null 2>&1 &
	cli=$!
	t_wait_until 90 sh -c "\"$FCVM\" --state-dir '$S' ls --json | jq -e '.[] | select(.name == \"$name\" and .health == \"healthy\")'"
	vm_id=$(f ls --json | jq -r ".[] | select(.name == \"$name\") | .id")
	kill -$sig $cli
	t_wait_until 60 sh -c "! kill -0 $cli 2>/dev/null"
	wait $cli
	rc=$?
	gone() {
		! f ls --json | jq -e ".[] | select(.name == \"$name\")" >/dev/null && [ -n "$vm_id" ] && [ ! -e "$S/vms/$vm_id" ] &&
			! pgrep -P "$SUP" qemu-system >/dev/null
	}
	t_wait_until 30 gone && [ "$rc" -eq $((128 + $(kill -l $sig))) ]
	t_result "sig${sig}_exits_128_plus_signal_and_leaves_nothing (rc=$rc)"
done
t_check no_disk_left sh -c "[ -z \"\$(ls -A '$S/data/disks' 2>/dev/null)\" ]"

# 5. three VMs at once
for i in 1 2 3; do
	f podman run --network none --rm --env "N=$i" demo sh -c 'echo vm-$N' >"$T_ROOT/par$i" 2>&1 &
	pids[$i]=$!
done
ok=0
for i in 1 2 3; do
	wait "${pids[$i]}" && [ "$(cat "$T_ROOT/par$i")" = "vm-$i" ] && ok=$((ok + 1))
done
t_check three_vms_at_once test $ok -eq 3

# 6. clear errors
f podman run --network none --rm no-such-image-here true >/dev/null 2>"$err"
[ $? -ne 0 ] && grep -q "unknown image" "$err"
t_result unknown_image_is_a_clear_error
f podman run --network none -d --name dup demo sleep 1000 >/dev/null 2>&1
f podman run --network none --rm --name dup demo true >/dev/null 2>"$err"
[ $? -ne 0 ] && grep -q "exists already" "$err"
t_result name_clash_is_a_clear_error
f stop dup >/dev/null 2>&1

f shutdown >/dev/null 2>&1
t_wait_until 60 sh -c "! kill -0 $SUP 2>/dev/null"
t_result shutdown_stops_every_vm
