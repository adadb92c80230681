# One user cannot lock out or grow the supervisor for the others (tests/integration/fair_client.c):
# connections per uid, a half-sent frame, a client that never reads its replies, a refusal
# flood; then what the flood left in the log: a bounded number of lines and a summary.
. "$(dirname "$0")/lib.sh"
d=$(t_state_dir)
timeout 300 "$FCVM" supervise --state-dir "$d" -- "$BUILD/tests/it_fair_client"
rc=$?
[ $rc -eq 0 ] || t_fail fair_client "exit $rc"
n=$(grep -c "audit: .*refused" "$d/supervisor.log")
[ "$n" -le 60 ]
t_result "refusal_flood_leaves_few_log_lines ($n lines for 5000+ refusals)"
