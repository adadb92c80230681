# Base images through the supervisor and stored: import (the file handed over as an fd),
# list, a disk based on one, removal (the disk keeps its bytes), and refusals.
. "$(dirname "$0")/lib.sh"

d=$(t_state_dir)
data=$d/data
"$FCVM" supervise --state-dir "$d" --data-dir "$data" >/dev/null 2>&1 &
sup=$!
t_wait_until 10 "$FCVM" --state-dir "$d" ping stored
t_result started
f() { timeout 60 "$FCVM" --state-dir "$d" "$@"; }

src=$T_ROOT/base.img
head -c $((16 << 20)) /dev/urandom >"$src"
f image import base "$src" >"$T_ROOT/out"
t_check import grep -q '^base (16777216 bytes)' "$T_ROOT/out"
t_check listed [ "$(f image ls --json | jq -r '.[] | select(.name == "base") | .size')" = 16777216 ]
t_check read_only [ "$(stat -c %a "$data/images/base/disk.img")" = 444 ]
t_check same_bytes cmp -s "$src" "$data/images/base/disk.img"
f disk create d1 --size 32M --base base >/dev/null
t_check disk_from_image cmp -s -n $((16 << 20)) "$src" "$data/disks/d1/disk.img"
f image import base "$src" >/dev/null 2>&1
t_check exists_refused [ $? -ne 0 ]
f image import ../x "$src" >/dev/null 2>&1
t_check path_name_refused [ $? -ne 0 ]
f image import x /nonexistent >/dev/null 2>&1
t_check missing_file_refused [ $? -ne 0 ]
f image rm base
t_check remove [ $? -eq 0 ]
t_check removed_gone [ -z "$(f image ls --json | jq -r '.[].name')" ]
t_check disk_keeps_its_bytes cmp -s -n $((16 << 20)) "$src" "$data/disks/d1/disk.img"
f image rm base >/dev/null 2>&1
t_check remove_missing_refused [ $? -ne 0 ]
f disk rm d1 >/dev/null
f shutdown >/dev/null
wait "$sup"
t_result shutdown
