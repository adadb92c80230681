# VM disks through the supervisor and stored, on real filesystems: btrfs, XFS (reflink) and
# ext4 on loop files made here (as root); the plain data directory when unprivileged.
. "$(dirname "$0")/lib.sh"

LOOPS=()
MOUNTS=()
cleanup_fs() {
	local m l
	for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap 'cleanup_fs; t_cleanup' EXIT

# mkfs_loop KIND DIR: a fresh filesystem of KIND mounted at DIR/mnt
mkfs_loop() {
	local kind=$1 dir=$2 img=$2/fs.img dev opts=
	truncate -s 400M "$img" || return 1
	if [ "$kind" = btrfs ]; then
		# the product's own way: fcvm setup --btrfs-loop (fstab line kept in the test dir)
		"$FCVM" setup --btrfs-loop 400M --data-dir "$dir/mnt" --fstab "$dir/fstab" >/dev/null || return 1
		MOUNTS+=("$dir/mnt")
		[ "$(stat -f -c %T "$dir/mnt")" = btrfs ] && grep -q "user_subvol_rm_allowed" "$dir/fstab"
		return
	fi
	case $kind in
	xfs) mkfs.xfs -q -m reflink=1 "$img" >/dev/null || return 1 ;;
	ext4) mkfs.ext4 -q -F "$img" >/dev/null || return 1 ;;
	esac
	dev=$(losetup --find --show "$img") || return 1
	LOOPS+=("$dev")
	mkdir -p "$dir/mnt"
	mount ${opts:+-o $opts} "$dev" "$dir/mnt" || return 1
	MOUNTS+=("$dir/mnt")
}

# shared_extents FILE: how many of FILE's extents are marked shared
shared_extents() { filefrag -v "$1" 2>/dev/null | grep -c shared; }

run_suite() {
	local label=$1 want_backend=$2 data=$3 d
	d=$(t_state_dir)
	"$FCVM" supervise --state-dir "$d" --data-dir "$data" >/dev/null 2>&1 &
	local sup=$!
	if ! t_wait_until 10 "$FCVM" --state-dir "$d" ping stored; then
		t_fail "$label:started" "$(tail -3 "$d/supervisor.log")"
		kill "$sup"
		return
	fi
	f() { "$FCVM" --state-dir "$d" "$@"; }

	f disk create base --size 64M >/dev/null
	t_check "$label:create" [ $? -eq 0 ]
	t_check "$label:backend_$want_backend" [ "$(f disk ls --json | jq -r .backend)" = "$want_backend" ]
	img=$(find "$data" -name disk.img -path '*base*' | head -1)
	t_check "$label:disk_is_sparse_64M" [ "$(stat -c %s "$img" 2>/dev/null)" = $((64 << 20)) ]
	# give the disk some data, then clone it
	dd if=/dev/urandom of="$img" bs=1M count=8 conv=notrunc status=none 2>/dev/null; sync
	f disk clone base copy >/dev/null
	t_check "$label:clone" [ $? -eq 0 ]
	clone=$(find "$data" -name disk.img -path '*copy*' | head -1)
	t_check "$label:clone_same_bytes" cmp -s "$img" "$clone"
	if [ "$want_backend" != copy ]; then
		t_check "$label:clone_shares_extents" [ "$(shared_extents "$clone")" -gt 0 ]
		t_check "$label:ls_reports_shared_bytes" [ "$(f disk ls --json | jq '.disks[] | select(.name == "copy") | .shared')" -ge $((8 << 20)) ]
	fi
	f disk create base --size 64M >/dev/null 2>&1
	t_check "$label:exists_refused" [ $? -ne 0 ]
	t_check "$label:listed" [ "$(f disk ls --json | jq -r '[.disks[].name] | sort | join(",")')" = "base,copy" ]
	f disk rm copy
	t_check "$label:remove" [ $? -eq 0 ] && t_check "$label:removed_gone" [ -z "$(find "$data" -path '*copy*' -name disk.img)" ]
	f disk create ../x --size 1M >/dev/null 2>&1
	t_check "$label:path_name_refused" [ $? -ne 0 ]
	f disk create huge --size 1T >/dev/null 2>&1
	t_check "$label:no_space_refused" [ $? -ne 0 ]
	f shutdown
	wait "$sup"
}

# A rootless user whose data directory is on a btrfs or XFS they own (made here by root):
# the same copy-on-write backends, with no capability anywhere.
rootless_on() {
	local kind=$1 want=$2 dir st u=fcvm-test
	dir=$(t_state_dir)
	if ! mkfs_loop "$kind" "$dir"; then
		t_fail "rootless-$kind:mkfs"
		return
	fi
	# (fcvm setup --btrfs-loop hands the mount to fcvm-priv, 0700: let the user through)
	chmod 0755 "$dir/mnt" && mkdir -p "$dir/mnt/u" && chown "$u" "$dir/mnt/u"
	st=$(t_state_dir)
	chown "$u" "$st"
	runuser -u "$u" -- env -i PATH="$PATH" HOME=/tmp "$FCVM" supervise --state-dir "$st" --data-dir "$dir/mnt/u/data" >/dev/null 2>&1 &
	local sup=$!
	uf() { runuser -u "$u" -- env -i PATH="$PATH" HOME=/tmp "$FCVM" --state-dir "$st" "$@"; }
	t_wait_until 10 uf ping stored
	t_result "rootless-$kind:started"
	t_check "rootless-$kind:create" uf disk create base --size 64M
	t_check "rootless-$kind:backend_$want" [ "$(uf disk ls --json | jq -r .backend)" = "$want" ]
	local img=$dir/mnt/u/data/disks/base/disk.img
	dd if=/dev/urandom of="$img" bs=1M count=8 conv=notrunc status=none 2>/dev/null
	sync
	t_check "rootless-$kind:clone" uf disk clone base copy
	t_check "rootless-$kind:clone_shares_extents" [ "$(shared_extents "$dir/mnt/u/data/disks/copy/disk.img")" -gt 0 ]
	t_check "rootless-$kind:remove" uf disk rm copy
	t_check "rootless-$kind:removed_gone" [ ! -e "$dir/mnt/u/data/disks/copy" ]
	uf shutdown >/dev/null 2>&1
	wait "$sup"
}

if t_is_root; then
	if getent passwd fcvm-test >/dev/null; then
		rootless_on btrfs btrfs
		rootless_on xfs reflink
	fi
	for kind in btrfs xfs ext4; do
		dir=$(t_state_dir)
		if mkfs_loop $kind "$dir"; then
			case $kind in btrfs) b=btrfs ;; xfs) b=reflink ;; *) b=copy ;; esac
			run_suite $kind $b "$dir/mnt/data"
		else
			t_fail "$kind:mkfs" "could not make a $kind loop filesystem"
		fi
	done
else
	dir=$(t_state_dir)
	case $(stat -f -c %T "$dir") in btrfs) b=btrfs ;; xfs) b=reflink ;; *) b=copy ;; esac
	run_suite "rootless-$(stat -f -c %T "$dir")" $b "$dir/data"
fi
