# Who may talk to an instance: a private instance serves its owner (and root) only; other
# users are refused by the supervisor (SO_PEERCRED) or by the socket's directory.
. "$(dirname "$0")/lib.sh"

if ! t_is_root; then
	t_skip other_uid_refused "needs root to act as another user"
	exit 0
fi
d=$(t_state_dir)
"$FCVM" supervise --state-dir "$d" >/dev/null 2>&1 &
sup=$!
t_wait_until 10 "$FCVM" --state-dir "$d" ping || { t_fail started; exit 1; }

err=$(runuser -u nobody -- "$FCVM" --state-dir "$d" status 2>&1)
rc=$?
[ "$rc" -eq 4 ] && [[ "$err" == *"permission denied"* ]]
t_result other_uid_refused_status
runuser -u nobody -- "$FCVM" --state-dir "$d" shutdown >/dev/null 2>&1
t_check other_uid_cannot_shutdown [ $? -eq 4 ]
t_check refusal_audited grep -q "audit: uid $(id -u nobody) .*refused 'status': permission denied" "$d/supervisor.log"
t_check owner_still_served "$FCVM" --state-dir "$d" ping stored >/dev/null

"$FCVM" --state-dir "$d" shutdown
wait "$sup"
