# Per-VM resource limits on the host (launcher/vmm_cgroup.c): each VM's QEMU in a cgroup of
# its own with its memory, task and CPU limits, which the VM's uid can neither change nor
# leave; an over-limit QEMU is killed within its cgroup while the instance goes on; a stopped
# instance leaves no cgroup behind. Without a cgroup the instance can
# use (an ordinary user's private instance on this host), status says so, and why.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
# the launcher tells the supervisor as it becomes ready, just after it answers
has_limits() { [ "$(f status --json | jq -r .vm_limits)" != null ]; }
t_wait_until 20 has_limits
limits=$(f status --json | jq -r .vm_limits)

if ! t_is_root; then
	case $limits in
	"none: "?*) t_pass "status_says_why_there_are_none ($limits)" ;;
	cgroup*) t_pass "a_delegated_cgroup ($limits)" ;;
	*) t_fail status_says_why_there_are_none "'$limits'" ;;
	esac
	f podman run --network none --rm demo echo still-runs >"$T_ROOT/out" 2>&1
	grep -qx still-runs "$T_ROOT/out"
	t_result "a_vm_runs_without_limits ($(head -c 200 "$T_ROOT/out"))"
	exit 0
fi

case $limits in cgroup\ v1*) kind=v1 ;; cgroup\ v2*) kind=v2 ;; *) kind=none ;; esac
[ "$kind" != none ]
t_result "root_has_cgroup_limits ($limits)"
[ "$kind" = none ] && exit 0

# cgdir PID CONTROLLER: the directory of PID's cgroup (v1: in that controller's hierarchy)
cgdir() {
	local path mnt
	if [ "$kind" = v1 ]; then
		path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup")
		mnt=$(findmnt -n -o TARGET -t cgroup -O "$2" | head -1)
	else
		path=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup")
		mnt=$(findmnt -n -o TARGET -t cgroup2 | head -1)
	fi
	echo "$mnt$path"
}

f podman run --network none -d --name l1 --mem 256 --cpu 1 demo sleep 600 >/dev/null &&
	t_wait_until 180 healthy l1
t_result vm_runs
pid=$(field l1 pid)
mem=$(cgdir "$pid" memory)
pids=$(cgdir "$pid" pids)
cpu=$(cgdir "$pid" cpu)
case $mem in */fcvm-*/vm-[0-9]*) true ;; *) false ;; esac
t_result "qemu_in_a_cgroup_of_its_own ($mem)"
# 256 MiB of RAM, a sixteenth more and 384 MiB for QEMU (1 GiB more under TCG, its
# translation cache): 656 or 1680 MiB; 256 tasks; 1.5 CPUs
want_mib=$((256 + 16 + 384))
[ "$(field l1 accel)" = tcg ] && want_mib=$((want_mib + 1024))
want=$((want_mib << 20))
if [ "$kind" = v1 ]; then
	got_mem=$(cat "$mem/memory.limit_in_bytes")
	got_cpu="$(cat "$cpu/cpu.cfs_quota_us") $(cat "$cpu/cpu.cfs_period_us")"
	limit_file=memory.limit_in_bytes
else
	got_mem=$(cat "$mem/memory.max")
	got_cpu=$(cat "$cpu/cpu.max")
	limit_file=memory.max
fi
[ "$got_mem" = "$want" ]
t_result "memory_limit_is_ram_and_overhead (got $got_mem, want $want)"
[ "$(cat "$pids/pids.max")" = 256 ]
t_result "task_limit ($(cat "$pids/pids.max"))"
[ "$got_cpu" = "150000 100000" ]
t_result "cpu_quota_is_its_vcpus_and_a_half ($got_cpu)"
field l1 limits | grep -q "memory $want_mib MiB, 256 tasks, 1.5 CPUs"
t_result "ls_shows_them ($(field l1 limits))"

# the VM's own uid can neither raise its limit nor move a process out of its cgroup
vmm_uid=$(f status --json | jq -r '.vmms[] | select(.vm == "l1") | .uid')
! setpriv --reuid "$vmm_uid" --regid "$vmm_uid" --clear-groups sh -c "echo -1 > $mem/$limit_file" 2>/dev/null &&
	[ "$(cat "$mem/$limit_file")" = "$want" ]
t_result "vmm_uid_cannot_raise_its_limit (uid $vmm_uid)"
! setpriv --reuid "$vmm_uid" --regid "$vmm_uid" --clear-groups sh -c "echo \$\$ > $(dirname "$mem")/cgroup.procs" 2>/dev/null
t_result vmm_uid_cannot_leave
slot_dir=$mem
f shutdown >/dev/null 2>&1
t_wait_until 60 sh -c "! kill -0 $T_SUP 2>/dev/null"
t_result instance_stopped
[ ! -d "$(dirname "$slot_dir")" ]
t_result "its_cgroups_removed_at_its_end ($(dirname "$slot_dir"))"

# the same state dir again, QEMU allowed nothing beyond the guest's RAM: it is killed at boot
# by its cgroup's memory limit, the instance answers on
FCVM_VMM_MEM_OVERHEAD_MIB=0 t_supervise "$S"
t_result supervisor_up_again
f podman run --network none -d --name l2 --mem 256 demo sleep 600 >"$T_ROOT/out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ "$(field l2 status)" = stopped ]
t_result "over_limit_vm_stops (rc=$rc, $(head -c 200 "$T_ROOT/out"), $(field l2 status))"
killed=0
for d in "$(dirname "$slot_dir")"/vm-*; do
	if [ "$kind" = v1 ]; then
		n=$(awk '$1 == "oom_kill" { print $2 }' "$d/memory.oom_control")
	else
		n=$(awk '$1 == "oom_kill" { print $2 }' "$d/memory.events")
	fi
	killed=$((killed + ${n:-0}))
done
[ "$killed" -ge 1 ]
t_result "killed_by_its_memory_limit (oom_kill $killed)"
f ping >/dev/null
t_result instance_answers_on
f rm l2 >/dev/null 2>&1
