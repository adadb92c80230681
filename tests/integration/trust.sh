# Whom the CLI trusts: another local user (the attacker, `nobody`) who plants a directory or a
# listening socket where a victim (fcvm-test) looks for its instance gets nothing from it —
# no request, no image fd, no stdin. The CLI refuses such a socket (exit 4, one clear line)
# before connecting (its directory) or before sending (SO_PEERCRED), and the victim's own
# default instance lives where no one else can create it (~/.local/state/fcvm/run without
# XDG_RUNTIME_DIR). Needs root, to act as both users.
. "$(dirname "$0")/lib.sh"

if ! t_is_root; then
	t_skip trust "needs root to act as two other users"
	exit 0
fi
victim=fcvm-test attacker=nobody
getent passwd "$victim" >/dev/null || useradd --system --no-create-home --shell /bin/bash "$victim"
vuid=$(id -u "$victim") auid=$(id -u "$attacker") agid=$(id -g "$attacker")
py=$(command -v /usr/bin/python3 || command -v python3)
if [ -z "$py" ] || ! setpriv --reuid="$auid" --regid="$agid" --clear-groups "$py" -c '' 2>/dev/null; then
	t_skip trust "no python3 the attacker can run"
	exit 0
fi

vhome=$(mktemp -d "$T_ROOT/home.XXXXXX") # the victim's own home
chown "$victim" "$vhome"
own=$vhome/.local/state/fcvm/run # where its instance must go
adir=$(mktemp -d "$T_ROOT/attacker.XXXXXX") # the attacker's logs
chown "$attacker" "$adir"
printf 'victim-secret\n' >"$vhome/secret.tar"
chown "$victim" "$vhome/secret.tar"
chmod 0600 "$vhome/secret.tar"
old_default=/tmp/fcvm-$vuid # the default before: anyone could create it first
planted_old=
LISTENERS=()

trust_cleanup() {
	local pid
	for pid in "${LISTENERS[@]}"; do kill "$pid" 2>/dev/null; done
	if [ -S "$own/fcvm.sock" ]; then
		v timeout 10 "$FCVM" --state-dir "$own" shutdown >/dev/null 2>&1
		t_wait_until 10 test ! -S "$own/fcvm.sock"
	fi
	if [ -n "$planted_old" ]; then # (a supervisor there only with a CLI that trusted it)
		[ -S "$old_default/fcvm.sock" ] && v timeout 10 "$FCVM" --state-dir "$old_default" shutdown >/dev/null 2>&1
		rm -rf "$old_default"
	fi
	t_cleanup
}
trap trust_cleanup EXIT

# v [VAR=VALUE...] CMD...: as the victim, with only PATH and HOME (no XDG_RUNTIME_DIR)
v() { runuser -u "$victim" -- env -i PATH="$PATH" HOME="$vhome" "$@"; }

# The attacker's listener: every connection counted in LOG.conn, every byte and every passed
# fd's content appended to LOG. Bounded: it gives up after 120 s on its own.
cat >"$T_ROOT/listen.py" <<'EOF'
import array, os, socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
s.settimeout(0.5)
open(log + ".ready", "w").close()
with open(log, "ab", buffering=0) as out, open(log + ".conn", "ab", buffering=0) as conns, \
        open(log + ".done", "ab", buffering=0) as done:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        conns.write(b"connection\n")
        c.settimeout(2)
        try:
            while True:
                data, anc, _, _ = c.recvmsg(65536, socket.CMSG_SPACE(64))
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds = array.array("i")
                        fds.frombytes(raw[: len(raw) - len(raw) % 4])
                        for fd in fds:
                            out.write(b"[fd:" + os.read(fd, 64) + b"]")
                if not data:
                    break
                out.write(data)
        except OSError:
            pass
        c.close()
        done.write(b"closed\n")  # all this connection brought is in LOG by now
EOF
chmod 0644 "$T_ROOT/listen.py"

# listen SOCKET LOG: the attacker listens on SOCKET (in a directory it can write)
listen() {
	setpriv --reuid="$auid" --regid="$agid" --clear-groups "$py" "$T_ROOT/listen.py" "$1" "$2" 2>>"$adir/errors" &
	LISTENERS+=($!)
	t_wait_until 10 test -e "$2.ready"
}
conns() { if [ -e "$1.conn" ]; then wc -l <"$1.conn"; else echo 0; fi; }
closed() { if [ -e "$1.done" ]; then wc -l <"$1.done"; else echo 0; fi; }
got_nothing() { [ ! -s "$1" ]; }
quiet() { "$@" >/dev/null; }

# refused NAME EXPECT CMD...: CMD exits 4 with one "refusing" line that says EXPECT
refused() {
	local name=$1 expect=$2 err rc
	shift 2
	err=$("$@" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -eq 4 ] && [[ "$err" == *"refusing"*"$expect"* ]] && [ "$(echo "$err" | wc -l)" -eq 1 ]; then
		t_pass "$name"
	else
		t_fail "$name" "exit $rc: $err"
	fi
}

# --- a. a planted directory (the attacker's, 0777) with the attacker listening in it
p=$(mktemp -d "$T_ROOT/planted.XXXXXX")
chown "$attacker" "$p"
chmod 0777 "$p"
log=$adir/a.log
listen "$p/fcvm.sock" "$log" || t_fail a_listening
refused a_state_dir_refused "$p is owned by uid $auid" v timeout 30 "$FCVM" --state-dir "$p" ping
refused a_env_socket_refused "$p is owned by uid $auid" v FCVM_SOCKET="$p/fcvm.sock" timeout 30 "$FCVM" ping
refused a_image_not_sent "owned by" v timeout 30 "$FCVM" --state-dir "$p" podman run --rm "$vhome/secret.tar" true
err=$(echo stdin-secret | v timeout 30 "$FCVM" --state-dir "$p" exec -i web -- cat 2>&1)
t_check a_stdin_not_sent [ $? -eq 4 ]
t_check a_not_even_connected [ "$(conns "$log")" -eq 0 ]
t_check a_attacker_got_nothing got_nothing "$log"

# the same in a directory of the victim's that others may write (mode 0777)
w=$(mktemp -d "$T_ROOT/wide.XXXXXX")
chown "$victim" "$w"
chmod 0777 "$w"
log=$adir/w.log
listen "$w/fcvm.sock" "$log" || t_fail a_wide_listening
refused a_writable_dir_refused "$w is writable by others (mode 0777)" v timeout 30 "$FCVM" --state-dir "$w" ping
# ... and a private directory of the victim's under a parent anyone may write (no sticky bit)
o=$(mktemp -d "$T_ROOT/open.XXXXXX")
chmod 0777 "$o"
mkdir "$o/v" && chown "$victim" "$o/v" && chmod 0700 "$o/v"
refused a_writable_parent_refused "$o is writable by others (mode 0777, not sticky), above $o/v" \
	v timeout 30 "$FCVM" --state-dir "$o/v" ping
t_check a_wide_attacker_got_nothing [ "$(conns "$log")" -eq 0 ]

# --- b. only the directory planted (no socket yet): nothing of the victim's starts in it
b=$(mktemp -d "$T_ROOT/planted.XXXXXX")
chown "$attacker" "$b"
chmod 0777 "$b"
refused b_state_dir_refused "$b is owned by uid $auid" v timeout 30 "$FCVM" --state-dir "$b" ping
err=$(v XDG_RUNTIME_DIR="$b" timeout 30 "$FCVM" ping 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [[ "$err" == *"not using XDG_RUNTIME_DIR: $b is owned by uid $auid"*"under $own"* ]]
t_result b_planted_runtime_dir_passed_over
t_check b_nothing_started_in_it [ -z "$(ls -A "$b")" ]
v timeout 10 "$FCVM" --state-dir "$own" shutdown >/dev/null 2>&1
t_wait_until 10 test ! -S "$own/fcvm.sock"
t_result b_stopped

# the old default, /tmp/fcvm-UID, planted as a bare 0777 directory
if [ -e "$old_default" ]; then
	t_skip b_old_default "$old_default exists already"
else
	mkdir -m 0777 "$old_default" && chown "$attacker" "$old_default" && planted_old=1
	t_check b_old_default_ping quiet v timeout 30 "$FCVM" ping
	t_check b_old_default_unused [ -z "$(ls -A "$old_default")" ]
	# --- a (the victim's real default): now the attacker listens in it too
	log=$adir/old.log
	listen "$old_default/fcvm.sock" "$log" || t_fail a_old_default_listening
	t_check a_default_ping_is_own quiet v timeout 30 "$FCVM" ping
	t_check a_default_attacker_got_nothing [ "$(conns "$log")" -eq 0 ]
	got_nothing "$log"
	t_result a_default_attacker_got_no_bytes
fi

# --- c. a directory that is fine (root's, 0755) but a socket the attacker serves
c=$(mktemp -d "$T_ROOT/peer.XXXXXX")
chmod 0777 "$c"
log=$adir/c.log
listen "$c/fcvm.sock" "$log" || t_fail c_listening
chmod 0755 "$c"
refused c_peer_refused "served by uid $auid ($attacker)" v timeout 30 "$FCVM" --state-dir "$c" ping
refused c_peer_image_not_sent "served by uid $auid" \
	v timeout 30 "$FCVM" --state-dir "$c" podman run --rm "$vhome/secret.tar" true
refused c_env_socket_peer_refused "served by uid $auid" v FCVM_SOCKET="$c/fcvm.sock" timeout 30 "$FCVM" ping
t_wait_until 10 test "$(conns "$log")" -eq 3
t_result c_connected_only
t_wait_until 10 test "$(closed "$log")" -eq 3 # each connection read to its end
t_check c_attacker_got_nothing got_nothing "$log"

# --- d. the victim's own default: started on demand under its home, private, and answering
out=$(v timeout 30 "$FCVM" status --json)
t_check d_own_default_location [ "$(echo "$out" | jq -r .state_dir)" = "$own" ]
t_check d_rootless [ "$(echo "$out" | jq -r .mode)" = rootless ]
t_check d_private_dir [ "$(stat -c '%a %U' "$own")" = "700 $victim" ]
t_check d_same_instance [ "$(v timeout 30 "$FCVM" ping --json | jq -r .pid)" = "$(echo "$out" | jq -r '.processes[0].pid')" ]
v timeout 10 "$FCVM" --state-dir "$own" shutdown >/dev/null
t_check d_stops t_wait_until 10 test ! -S "$own/fcvm.sock"

# no safe home (HOME=/tmp, none in the password database) and no XDG_RUNTIME_DIR: a clear
# refusal, and nothing made in /tmp
if [ -d "$(getent passwd "$victim" | cut -d: -f6)" ]; then
	t_skip d_unsafe_home_refused "$victim has a home directory"
else
	err=$(runuser -u "$victim" -- env -i PATH="$PATH" HOME=/tmp timeout 30 "$FCVM" ping 2>&1)
	rc=$?
	[ "$rc" -eq 4 ] && [[ "$err" == *"no safe place for your own instance"*"/tmp is writable by others"* ]]
	t_result d_unsafe_home_refused
	t_check d_nothing_in_tmp [ ! -e /tmp/.local/state/fcvm ]
fi
