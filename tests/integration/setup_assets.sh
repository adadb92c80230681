# fcvm setup (guest assets): the parts it builds are what the guest needs (PVH vmlinux, cpio
# with /init and ordered modules, ext4 root with podman, OCI demo archive), a second run reuses
# them, --check reports present/stale, and failures name the fix.
# With FCVM_TEST_ASSETS (an already-built cache) the parts are linked from it into a private
# directory instead of a cold build (about a minute, root only).
. "$(dirname "$0")/lib.sh"

A=$T_ROOT/assets
mkdir -p "$A"
SRC=${FCVM_TEST_ASSETS:-}
[ -n "$SRC" ] && [ ! -f "$SRC/current.json" ] && SRC=

# part KEY: the file current.json names
part() { sed -n "s/^ *\"$1\": *\"\(.*\)\",\{0,1\}$/\1/p" "$A/current.json"; }

# cpio_list FILE: member names, in order
cpio_list() {
	if command -v bsdtar >/dev/null; then
		bsdtar -tf "$1"
	elif command -v cpio >/dev/null; then
		cpio -it --quiet <"$1"
	else
		python3 - "$1" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
o = 0
while True:
    h = d[o:o + 110]
    assert h[:6] == b'070701'
    size, ns = int(h[54:62], 16), int(h[94:102], 16)
    name = d[o + 110:o + 110 + ns - 1].decode()
    if name == 'TRAILER!!!':
        break
    print(name)
    o = (o + 110 + ns + 3) & ~3
    o = (o + size + 3) & ~3
PY
	fi
}

if [ -n "$SRC" ]; then
	# reuse: link the built parts (not current.json) so setup must find them by name
	for f in "$SRC"/kernel-* "$SRC"/initramfs-* "$SRC"/rootfs-* "$SRC"/demo-*; do
		[ -e "$f" ] && ln -s "$f" "$A/"
	done
fi

if ! t_is_root && [ -z "$SRC" ]; then
	t_skip build "needs root or FCVM_TEST_ASSETS"
	exit 0
fi

if ! t_is_root; then
	# rootless: kernel/demo are reusable, a missing rootfs needs root and says so
	rm -f "$A"/rootfs-*
	out=$("$FCVM" setup --assets "$A" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q 'fix: run `sudo fcvm setup`'
	t_result rootless_rootfs_needs_root
	"$FCVM" setup --check --assets "$A" >/dev/null 2>&1
	[ $? -eq 1 ]
	t_result rootless_check_missing
	exit 0
fi

start=$(date +%s)
out=$("$FCVM" setup --assets "$A" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ -f "$A/current.json" ]
t_result build
[ $rc -ne 0 ] && echo "$out" | tail -20 >&2
echo "$out" | grep -q '^\[5/5\] manifest'
t_result progress_lines
[ -n "$SRC" ] && { echo "$out" | grep -q '^\[4/5\] rootfs \.\.\. cached'; t_result reused_from_cache; }
echo "setup took $(($(date +%s) - start)) s" >&2

K=$A/$(part kernel)
I=$A/$(part initramfs)
R=$A/$(part rootfs)
D=$A/$(part demo_image)

# kernel: an ELF with the PVH entry note (Xen note type 0x12)
[ "$(head -c 4 "$K" | od -An -c | tr -d ' ')" = "177ELF" ]
t_result kernel_elf
readelf -n "$K" 2>/dev/null | grep -A0 Xen | grep -q '0x00000012'
t_result kernel_pvh_note
grep -q "6.1.0-.*-amd64" <<<"$(part kernel_version)"
t_result kernel_version

# initramfs: /init, /dev/console, the modules in load order
list=$(cpio_list "$I")
echo "$list" | grep -qx init && echo "$list" | grep -qx dev/console
t_result initramfs_init
mods=$(echo "$list" | sed -n 's|^modules/\([0-9][0-9]\)-\(.*\)\.ko$|\1 \2|p')
order() { echo "$mods" | awk -v m="$1" '$2 == m { print $1 }'; }
[ -n "$(order virtio_blk)" ] && [ -n "$(order ext4)" ] && [ -n "$(order overlay)" ] &&
	[ "$(order virtio_ring)" -lt "$(order virtio_blk)" ] && [ "$(order jbd2)" -lt "$(order ext4)" ] &&
	[ "$(order mbcache)" -lt "$(order ext4)" ] && [ "$(order failover)" -lt "$(order virtio_net)" ]
t_result initramfs_module_order
[ "$(echo "$mods" | awk '{print $1}')" = "$(echo "$mods" | awk '{print $1}' | sort)" ]
t_result initramfs_module_names_sorted

# rootfs: ext4 with podman, crun, conmon, mkfs.ext4 and our podman config
dumpe2fs -h "$R" 2>/dev/null | grep -q 'volume name: *fcvm-root'
t_result rootfs_ext4
for f in /usr/bin/podman /usr/bin/crun /usr/bin/conmon /usr/sbin/mkfs.ext4 /usr/sbin/mke2fs /etc/containers/storage.conf; do
	debugfs -R "stat $f" "$R" 2>/dev/null | grep -Eq 'Type: (regular|symlink)' || { echo "rootfs lacks $f" >&2; false; }
done
t_result rootfs_contents
debugfs -R 'cat /etc/containers/containers.conf' "$R" 2>/dev/null | grep -q 'cgroup_manager = "cgroupfs"'
t_result rootfs_containers_conf
! debugfs -R 'ls /var/cache/apt/archives' "$R" 2>/dev/null | grep -q '\.deb'
t_result rootfs_no_debs
# the demo image pre-loaded as a read-only additional image store (no podman load in the guest)
debugfs -R 'cat /etc/containers/storage.conf' "$R" 2>/dev/null |
	grep -qx 'additionalimagestores = \["/usr/lib/containers/fcvm-images"\]' &&
	debugfs -R 'cat /usr/lib/containers/fcvm-images/overlay-images/images.json' "$R" 2>/dev/null |
	grep -q '"localhost/fcvm-demo:latest"'
t_result rootfs_demo_preloaded

# demo image: an OCI archive, padded to 512 bytes
tar -tf "$D" | grep -qx index.json && tar -tf "$D" | grep -qx oci-layout
t_result demo_oci_archive
[ $(($(stat -L -c %s "$D") % 512)) -eq 0 ]
t_result demo_padded
grep -q '"demo_ref": "localhost/fcvm-demo:latest"' "$A/current.json"
t_result demo_ref

# world-readable
[ "$(stat -L -c %a "$K" "$I" "$R" "$D" | sort -u)" = 644 ]
t_result world_readable

# second run: nothing to do
out=$("$FCVM" setup --assets "$A" 2>&1)
[ $? -eq 0 ] && echo "$out" | grep -q 'all assets current'
t_result second_run_current
"$FCVM" setup --check --assets "$A" >/dev/null 2>&1
t_result check_present
"$FCVM" setup --check --json --assets "$A" | grep -q '"current":true'
t_result check_json

# an input changes (another agent): the initramfs is stale, and a run rebuilds only that
cp "$BUILD/fcvm-agent" "$T_ROOT/other-agent" && printf 'x' >>"$T_ROOT/other-agent"
out=$(FCVM_AGENT_BINARY=$T_ROOT/other-agent "$FCVM" setup --check --assets "$A" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q 'initramfs *stale' && echo "$out" | grep -q 'rootfs *present'
t_result check_stale
out=$(FCVM_AGENT_BINARY=$T_ROOT/other-agent "$FCVM" setup --assets "$A" 2>&1)
[ $? -eq 0 ] && echo "$out" | grep -q '^\[2/5\] initramfs \.\.\. built' && echo "$out" | grep -q '^\[1/5\] kernel \.\.\. cached'
t_result rebuild_only_stale
"$FCVM" setup --check --assets "$A" >/dev/null 2>&1
[ $? -eq 1 ]
t_result check_stale_back

# failures name the step and the fix
out=$(FCVM_AGENT_BINARY=/nonexistent "$FCVM" setup --assets "$A" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q 'fcvm-agent is missing' && echo "$out" | grep -q 'fix:'
t_result failure_names_fix

# --btrfs-loop keeps its own usage
"$FCVM" setup --btrfs-loop 1M --data-dir "$T_ROOT/x" >/dev/null 2>&1
[ $? -eq 2 ]
t_result btrfs_loop_usage
