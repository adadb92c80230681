# stored killed (SIGKILL) in the middle of a clone, through the real supervisor: the client's
# clone fails, the supervisor restarts stored, whose reconcile removes the half-made copy;
# no partial disk ever carries the final name, and the same clone then succeeds.
. "$(dirname "$0")/lib.sh"

d=$(t_state_dir)
data=$d/data
"$FCVM" supervise --state-dir "$d" --data-dir "$data" >/dev/null 2>&1 &
sup=$!
t_wait_until 10 "$FCVM" --state-dir "$d" ping stored
t_result started
f() { "$FCVM" --state-dir "$d" "$@"; }
stored_pid() { f status --json | jq -r '.processes[] | select(.name == "stored") | .pid'; }

f disk create big --size 1G >/dev/null
img=$data/disks/big/disk.img
# real blocks (zeros written are data, not holes): the copy backend copies them all
dd if=/dev/zero of="$img" bs=1M count=1024 conv=notrunc status=none
backend=$(f disk ls --json | jq -r .backend)
if [ "$backend" != copy ]; then
	t_skip mid_clone "the data dir is $backend: a clone is too quick to interrupt"
	f shutdown
	exit 0
fi
old=$(stored_pid)
f disk clone big copy >/dev/null 2>"$T_ROOT/clone.err" &
clone=$!
# wait until the copy is under way in .tmp, then kill stored
t_wait_until 20 sh -c "[ -n \"\$(ls -A '$data/.tmp' 2>/dev/null)\" ]"
t_result copy_under_way
kill -KILL "$old"
wait "$clone"
t_check clone_reports_failure test $? -ne 0
t_check no_disk_named_copy test ! -e "$data/disks/copy"
restarted() { p=$(stored_pid) && [ -n "$p" ] && [ "$p" != "$old" ] && [ "$p" != 0 ] && f ping stored; }
t_wait_until 20 restarted
t_result stored_restarted
t_check reconcile_emptied_tmp test -z "$(ls -A "$data/.tmp" 2>/dev/null)"
t_check only_big_listed test "$(f disk ls --json | jq -r '[.disks[].name] | join(",")')" = big
f disk clone big copy >/dev/null && cmp -s "$img" "$data/disks/copy/disk.img"
t_result clone_again_succeeds
f disk rm copy && f disk rm big
t_result removed
f shutdown
wait "$sup"
t_result shutdown
