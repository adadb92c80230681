# A guest whose root writes garbage on the agent's port (pidfd_getfd on the agent's fd, as
# issue 14 found): the supervisor logs it rate-limited, drops the connection past a bound and
# stops the VM, marked unhealthy; a session attached to it ends with a message instead of
# hanging; a neighbour VM goes on unharmed.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
out=$T_ROOT/out

f podman run --network none -d --name bad demo sleep 600 >/dev/null && t_wait_until 120 healthy bad
t_result bad_vm_up
f podman run --network none -d --name good demo sleep 600 >/dev/null && t_wait_until 120 healthy good
t_result good_vm_up

# a session attached to the VM when it goes: it must end (bounded here by timeout)
timeout 120 "$FCVM" --state-dir "$S" exec bad sh -c 'echo started; exec sleep 600' >"$T_ROOT/exec.out" 2>"$T_ROOT/exec.err" &
exec_pid=$!
t_wait_until 30 grep -q started "$T_ROOT/exec.out"
t_result exec_session_running

lines_before=$(wc -l <"$S/supervisor.log")
# 4000 frames of garbage, each after a sync marker: half with a length no frame has, half
# that do not decode (perl: pidfd_open 434, pidfd_getfd 438 on x86-64)
cat >"$T_ROOT/garbage.pl" <<'PERL'
my $pidfd = syscall(434, 1, 0);
die "pidfd_open: $!\n" if $pidfd < 0;
my $n;
opendir(my $d, "/proc/1/fd") or die "opendir: $!\n";
for (readdir $d) { my $l = readlink("/proc/1/fd/$_"); if (defined $l && $l =~ m{^/dev/vport}) { $n = $_; last } }
die "no vport fd in the agent\n" unless defined $n;
my $fd = syscall(438, $pidfd, $n + 0, 0);
die "pidfd_getfd: $!\n" if $fd < 0;
open(my $fh, ">&=", $fd) or die "fdopen: $!\n";
binmode $fh;
my $m = "\0\0\0\0fcvm-sync-v1";
my $junk = (($m . "\xff\xff\xff\xff") x 2000) . (($m . "\0\0\0\4abcd") x 2000);
my $off = 0;
my $tries = 0;
while ($off < length($junk) && $tries < 100000) {
	my $w = syswrite($fh, $junk, length($junk) - $off, $off);
	if (defined $w) { $off += $w } else { $tries++; select(undef, undef, undef, 0.01) }
}
print "$off\n";
PERL
# the writer's exec ends with the VM it poisons: what counts is that it ends (bounded by f)
f exec --vm bad -- perl -e "$(cat "$T_ROOT/garbage.pl")" >"$out" 2>&1
[ $? -ne 124 ]
t_result "garbage_written ($(head -c 200 "$out"))"
t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"bad\") | .status')\" = stopped ]"
t_result "bad_vm_stopped ($(field bad status)/$(field bad health))"
[ "$(field bad health)" = unhealthy ]
t_result bad_vm_marked_unhealthy
grep -q "bad: the agent's port broke the protocol" "$S/supervisor.log"
t_result disconnect_logged
n=$(tail -n +"$((lines_before + 1))" "$S/supervisor.log" | grep -c "audit: bad:")
[ "$n" -le 25 ] && [ "$n" -ge 1 ]
t_result "garbage_log_lines_bounded ($n audit lines for 4000 bad frames)"
t_wait_until 30 sh -c "! kill -0 $exec_pid 2>/dev/null"
wait "$exec_pid"
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "the VM's agent sent what it may not" "$T_ROOT/exec.err"
t_result "attached_exec_ended_with_a_message (rc=$rc: $(head -c 200 "$T_ROOT/exec.err"))"
healthy good && [ "$(f exec good echo neighbour)" = neighbour ]
t_result neighbour_unharmed

f rm bad >/dev/null
t_result bad_vm_removed
f stop good >/dev/null && t_wait_until 60 sh -c "[ \"\$(\"$FCVM\" --state-dir '$S' ls --json | jq -r '.[] | select(.name == \"good\") | .status')\" = stopped ]" && f rm good >/dev/null
t_result good_vm_removed
f shutdown >/dev/null
t_result shutdown
