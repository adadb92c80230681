# Per-user quotas (docs/quotas.md) from a quotas file given to `fcvm supervise --quotas`:
# each limit refused with its name and the use, before anything is made (a clone refused
# leaves no disk); `fcvm status` shows the use and the limits; a VM wanting more memory than
# the host has is refused at once; a bad file is refused as the instance starts, with its line.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

out=$T_ROOT/out
printf 'default vms 1\n\nbogus vms 2\n' >"$T_ROOT/bad.conf"
timeout 30 "$FCVM" supervise --state-dir "$(t_state_dir)" --quotas "$T_ROOT/bad.conf" >"$out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "bad.conf: line 3: 'bogus'" "$out"
t_result "bad_file_refused_with_its_line (rc=$rc: $(head -c 200 "$out"))"
timeout 30 "$FCVM" supervise --state-dir "$(t_state_dir)" --quotas "$T_ROOT/missing.conf" >"$out" 2>&1
[ $? -ne 0 ] && grep -q "missing.conf" "$out"
t_result named_file_missing_refused

cat >"$T_ROOT/quotas.conf" <<'CONF'
default vms          2
default vms_running  1
default vcpus        1
default mem_mib      768
default ports        1
default snapshots    1
CONF
S=$(t_state_dir)
t_supervise "$S" --quotas "$T_ROOT/quotas.conf"
t_result supervisor_up
quota() { f status --json | jq -r ".quota[] | select(.name == \"$1\") | \"\(.used)/\(.limit)\""; }
# refused CHECK WANT CMD...: CMD fails, saying WANT, and leaves no VM behind
refused() {
	local name=$1 want=$2 n
	shift 2
	n=$(f ls --json | jq length)
	f "$@" >"$out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && grep -qF -- "$want" "$out" && [ "$(f ls --json | jq length)" = "$n" ]; then
		t_pass "$name"
	else
		t_fail "$name" "rc=$rc, $(head -c 300 "$out" | tr '\n' '|')"
	fi
}

[ "$(quota vms)" = 0/2 ] && [ "$(quota vms_running)" = 0/1 ] && [ "$(quota snapshots)" = 0/1 ] &&
	[ "$(quota disk_gib)" = 0/128 ]
t_result "status_shows_use_and_limits ($(f status --json | jq -c .quota))"
refused mem_refused "quota mem_mib: you may have 768 MiB of guest memory; you have 0 and this wants 1024 more" \
	podman run --network none --mem 1024 --rm demo true
refused vcpus_refused "quota vcpus: you may have 1 vCPUs; you have 0 and this wants 2 more" \
	podman run --network none --cpu 2 --rm demo true
refused ports_refused "quota ports: you may have 1 published ports; you have 0 and this wants 2 more" \
	podman run -p 18081:80 -p 18082:80 --rm demo true
grep -q "audit: uid $(id -u) refused: quota mem_mib: you may have 768 MiB" "$S/supervisor.log"
t_result "refusals_logged ($(grep -c 'refused: quota' "$S/supervisor.log") lines)"

f podman run --network none -d --name q1 demo sleep 600 >/dev/null && t_wait_until 120 healthy q1
t_result first_vm_runs
[ "$(quota vms)" = 1/2 ] && [ "$(quota vms_running)" = 1/1 ] && [ "$(quota mem_mib)" = 512/768 ] &&
	[ "$(quota vcpus)" = 1/1 ] && [ "$(quota disk_gib)" = 4/128 ]
t_result "status_counts_the_vm ($(f status --json | jq -c .quota))"
f status | grep -q "your quotas: vms 1/2, vms_running 1/1"
t_result "status_text_shows_them ($(f status | grep "your quotas"))"
refused running_refused "quota vms_running: you may have 1 VMs not stopped; you have 1 and this wants 1 more" \
	podman run --network none -d --name q2 demo true

f snapshot create q1 --tag s1 >"$out" 2>&1
t_result "snapshot_within_quota ($(head -c 200 "$out"))"
[ "$(quota snapshots)" = 1/1 ]
t_result snapshot_counted
f snapshot create q1 --tag s2 >"$out" 2>&1
[ $? -ne 0 ] && grep -q "quota snapshots: you may have 1 snapshots; you have 1 and this wants 1 more" "$out" &&
	[ "$(f snapshot ls --json | jq length)" = 1 ]
t_result "second_snapshot_refused ($(head -c 200 "$out"))"
disks_before=$(ls "$S/data/disks" | wc -l)
refused clone_refused_while_one_runs "quota vms_running" snapshot run s1 --name c1 -d
[ "$(ls "$S/data/disks" | wc -l)" = "$disks_before" ]
t_result "refused_clone_left_no_disk ($(ls "$S/data/disks" | tr '\n' ' '))"

f stop q1 >/dev/null && t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"q1\") | .status')\" = stopped ]"
t_result first_vm_stopped
f snapshot run s1 --name c1 -d >"$out" 2>&1 && t_wait_until 60 healthy c1
t_result "clone_runs_once_the_first_stopped ($(head -c 200 "$out"))"
refused total_refused "quota vms: you may have 2 VMs; you have 2 and this wants 1 more" \
	podman run --network none -d --name q3 demo true

# the host's memory: a VM that cannot have its memory is refused at once (unless this host
# has 64 GiB free: then the VM could have it)
S2=$(t_state_dir)
printf 'default mem_mib unlimited\n' >"$T_ROOT/mem.conf"
t_supervise "$S2" --quotas "$T_ROOT/mem.conf"
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
if [ "$avail" -lt 65536 ]; then
	timeout 60 "$FCVM" --state-dir "$S2" podman run --network none --mem 65536 -d --name big demo true >"$out" 2>&1
	rc=$?
	[ $rc -ne 0 ] && grep -q "this host has [0-9]* MiB of memory available; the VM wants 65536 MiB" "$out" &&
		[ "$(timeout 30 "$FCVM" --state-dir "$S2" ls --json | jq length)" = 0 ]
	t_result "more_memory_than_the_host_has_refused (rc=$rc: $(head -c 200 "$out"))"
else
	t_skip more_memory_than_the_host_has_refused "this host has $avail MiB available"
fi
timeout 30 "$FCVM" --state-dir "$S2" shutdown >/dev/null
t_result second_instance_shutdown

# the host's disk: no VM disk where its filesystem has no room for it to grow (root: a small
# tmpfs as the data directory, in a mount namespace of the instance's own)
if t_is_root; then
	S3=$(t_state_dir)
	mkdir -p "$T_ROOT/small"
	unshare -m sh -c "mount -t tmpfs -o size=256m tmpfs '$T_ROOT/small' && exec '$FCVM' supervise --state-dir '$S3' --data-dir '$T_ROOT/small'" \
		>>"$T_ROOT/supervise.out" 2>&1 &
	t_wait_until 20 "$FCVM" --state-dir "$S3" ping
	timeout 60 "$FCVM" --state-dir "$S3" podman run --network none --rm demo true >"$out" 2>&1
	rc=$?
	[ $rc -ne 0 ] && grep -q "the data directory has [0-9]* MiB free: this disk needs at least 1024 MiB" "$out" &&
		[ "$(timeout 30 "$FCVM" --state-dir "$S3" ls --json | jq length)" = 0 ]
	t_result "no_disk_without_room_to_grow (rc=$rc: $(head -c 200 "$out"))"
	timeout 30 "$FCVM" --state-dir "$S3" shutdown >/dev/null
	t_result small_instance_shutdown
fi

f stop c1 >/dev/null && t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"c1\") | .status')\" = stopped ]" &&
	f rm c1 >/dev/null && f rm q1 >/dev/null && f snapshot rm s1 >/dev/null
t_result removed
f shutdown >/dev/null
t_result shutdown
