# Raw frames against the control socket (tests/integration/ctl_client.c), then the audit log.
. "$(dirname "$0")/lib.sh"
d=$(t_state_dir)
"$FCVM" supervise --state-dir "$d" -- "$BUILD/tests/it_ctl_client"
rc=$?
[ $rc -eq 0 ] || t_fail ctl_client "exit $rc"
t_check malformed_audited grep -q 'audit: .*malformed frame' "$d/supervisor.log"
t_check spawn_refusal_audited grep -q "audit: .*refused 'spawn': not a client operation" "$d/supervisor.log"
