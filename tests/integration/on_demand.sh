# Without --state-dir or FCVM_SOCKET, a user's command reaches their own instance under
# $XDG_RUNTIME_DIR/fcvm, started on demand: root's too (the system instance at /run/fcvm is
# `fcvm supervise --system`'s alone, and none runs here).
. "$(dirname "$0")/lib.sh"
if [ -S /run/fcvm/fcvm.sock ]; then
	t_skip user_instance_on_demand "a system instance runs at /run/fcvm: commands go there"
	exit 0
fi
rt=$(t_state_dir)
chmod 0700 "$rt"
export XDG_RUNTIME_DIR=$rt XDG_DATA_HOME=$rt/data
unset FCVM_STATE_DIR FCVM_SOCKET

out=$("$FCVM" status --json)
t_check started_on_demand [ "$(echo "$out" | jq -r .state_dir)" = "$rt/fcvm" ]
t_check "its_mode ($(t_mode))" [ "$(echo "$out" | jq -r .mode)" = "$(t_mode)" ]
t_check state_dir_private [ "$(stat -c %a "$rt/fcvm")" = 700 ]
t_check same_instance_next_time [ "$("$FCVM" ping --json | jq -r .pid)" = "$(echo "$out" | jq -r '.processes[0].pid')" ]
"$FCVM" shutdown
t_check stops_on_shutdown t_wait_until 5 test ! -S "$rt/fcvm/fcvm.sock"
