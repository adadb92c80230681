# A soak: random operations from two users (root: fcvm-test and fcvm-test2 on a system
# instance; rootless: this user alone on a private one) with random SIGKILLs of netd, stored
# and the supervisor. It ends with every surviving VM healthy and, once everything is removed,
# no leaked object: no disk, no VM directory, no snapshot, no VMM, no process of the instance.
# SOAK_OPS (default 30: what CI runs; `make soak`: 1000) and SOAK_SEED (default: from the
# clock, printed) are parameters; a failing run is repeated with its seed.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0
ops=${SOAK_OPS:-30}
seed=${SOAK_SEED:-$(($(date +%s) % 32768))}
RANDOM=$seed
echo "INFO: soak: $ops operations, SOAK_SEED=$seed"

S=$(t_state_dir)
if t_is_root; then
	users="fcvm-test fcvm-test2"
	for u in $users; do
		if ! id -nG "$u" 2>/dev/null | grep -qw fcvm-users; then
			t_skip soak "$u is not a member of fcvm-users (tests/run makes it one)"
			exit 0
		fi
	done
	# the quotas keep the number of VMs at once within what two cores run under TCG
	printf 'default vms_running 2\ndefault vms 4\n' >"$T_ROOT/quotas.conf"
	t_supervise "$S" --system --quotas "$T_ROOT/quotas.conf"
	as() {
		local u=$1
		shift
		timeout 120 runuser -u "$u" -- env -i PATH="$PATH" HOME=/tmp FCVM_NO_SNAPSHOT=1 FCVM_QUIET=1 "$FCVM" --state-dir "$S" "$@"
	}
else
	users=$(id -un)
	printf 'default vms_running 3\ndefault vms 6\n' >"$T_ROOT/quotas.conf"
	t_supervise "$S" --quotas "$T_ROOT/quotas.conf"
	as() {
		shift
		timeout 120 "$FCVM" --state-dir "$S" "$@"
	}
fi
t_result instance_up
f() { timeout 120 "$FCVM" --state-dir "$S" "$@"; }
healthy_of() { [ "$(as "$1" ls --json | jq -r ".[] | select(.name == \"$2\") | .health")" = healthy ]; }
quiet_of() { [ -z "$(as "$1" ls --json | jq -r '.[] | select(.status != "stopped" and .status != "lost") | .name')" ]; }
vms_of() { as "$1" ls --json | jq -r ".[] | select(.status == \"$2\") | .name"; }
pick() { local a=($1); [ ${#a[@]} -gt 0 ] && echo "${a[RANDOM % ${#a[@]}]}"; }
settled() { f status --json | jq -e '[.processes[] | select(.state != "up")] | length == 0' >/dev/null; }

# each user's source VM and its snapshot (tags are still one namespace for all users: each
# its own), from which clones are the cheap way to make VMs
ok=1
for u in $users; do
	as "$u" podman run --network none -d --name src demo sh -c 'i=0; while :; do i=$((i + 1)); echo $i >/tmp/n; sleep 1; done' >/dev/null &&
		t_wait_until 120 healthy_of "$u" src && as "$u" snapshot create src --tag "base-$u" >/dev/null &&
		as "$u" stop src >/dev/null || ok=0
done
[ "$ok" = 1 ]
t_result sources_snapshotted

n_ok=0 n_refused=0 n_kill=0 last_sup_kill=-100
for i in $(seq "$ops"); do
	u=$(pick "$users")
	r=$((RANDOM % 100))
	if [ $r -lt 30 ]; then
		as "$u" snapshot run "base-$u" --name "c$i" -d >/dev/null 2>&1 && n_ok=$((n_ok + 1)) || n_refused=$((n_refused + 1))
	elif [ $r -lt 50 ]; then
		v=$(pick "$(vms_of "$u" running)") && as "$u" exec "$v" cat /tmp/n >/dev/null 2>&1 && n_ok=$((n_ok + 1))
	elif [ $r -lt 62 ]; then
		v=$(pick "$(vms_of "$u" running)") && as "$u" stop "$v" >/dev/null 2>&1 && n_ok=$((n_ok + 1))
	elif [ $r -lt 77 ]; then
		v=$(pick "$(vms_of "$u" stopped)") && [ "$v" != src ] && as "$u" rm "$v" >/dev/null 2>&1 && n_ok=$((n_ok + 1))
	elif [ $r -lt 87 ]; then
		as "$u" ls >/dev/null 2>&1 && as "$u" status >/dev/null 2>&1 && n_ok=$((n_ok + 1))
	else
		victim=$(pick "netd stored supervisor")
		# the supervisor at most every 15 s: 5 deaths in 60 s end the instance (the
		# crash-loop limit, tested in faults.sh)
		[ "$victim" = supervisor ] && [ $((SECONDS - last_sup_kill)) -lt 15 ] && victim=stored
		[ "$victim" = supervisor ] && last_sup_kill=$SECONDS
		p=$(f status --json 2>/dev/null | jq -r ".processes[] | select(.name == \"$victim\") | .pid")
		[ -n "$p" ] && [ "$p" != 0 ] && kill -KILL "$p" && n_kill=$((n_kill + 1))
		t_wait_until 60 settled
	fi
done
echo "INFO: soak: $n_ok done, $n_refused refused, $n_kill processes killed"
t_wait_until 60 settled
t_result "instance_settled_after_the_soak ($n_kill kills)"

# every VM still running is healthy
why=
for u in $users; do
	for v in $(vms_of "$u" running); do
		t_wait_until 60 healthy_of "$u" "$v" || why="$why $u/$v"
	done
done
[ -z "$why" ]
t_result "surviving_vms_healthy (not:${why:- none})"

# everything removed: nothing leaked
for u in $users; do
	for v in $(as "$u" ls --json | jq -r '.[].name'); do as "$u" stop "$v" >/dev/null 2>&1; done
	t_wait_until 60 quiet_of "$u"
	for v in $(as "$u" ls --json | jq -r '.[].name'); do as "$u" rm "$v" >/dev/null 2>&1; done
	gone_snapshot() { as "$1" snapshot rm "base-$1" >"$T_ROOT/snap-rm.out" 2>&1 || ! as "$1" snapshot ls --json | jq -e ".[] | select(.tag == \"base-$1\")" >/dev/null; }
	t_wait_until 30 gone_snapshot "$u" || echo "INFO: soak: snapshot rm base-$u: $(head -c 200 "$T_ROOT/snap-rm.out")"
done
f snapshot ls >"$T_ROOT/snaps.left"
[ "$(f ls --json | jq length)" = 0 ] && [ -z "$(ls -A "$S/vms")" ] && [ -z "$(ls "$S/data/disks" 2>/dev/null)" ] &&
	[ "$(f snapshot ls --json | jq length)" = 0 ] && [ "$(f status --json | jq '.vmms // [] | length')" = 0 ]
t_result "nothing_leaked (VMs $(f ls --json | jq length), dirs $(ls -A "$S/vms" | wc -l), disks $(ls "$S/data/disks" 2>/dev/null | wc -l), snapshots: $(tail -n +2 "$T_ROOT/snaps.left" | tr -s ' ' | tr '\n' '|'))"
f shutdown >/dev/null
t_wait_until 30 sh -c "! pgrep -f 'state-dir[= ]$S( |\$)' >/dev/null"
t_result "no_process_left ($(pgrep -af "state-dir[= ]$S( |\$)" | head -c 200))"
