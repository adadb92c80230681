# --vmm: QEMU here, Firecracker refused at once with the reason (this machine can have no
# Firecracker binary, and its /dev/kvm is not hardware KVM), nothing left behind; auto is QEMU.
# Where a firecracker binary and hardware KVM exist, the refusal says what fcvm still lacks.
. "$(dirname "$0")/lib.sh"

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
out=$T_ROOT/out

f podman run --network none --vmm firecracker --rm demo true >"$out" 2>&1
rc=$?
if command -v firecracker >/dev/null; then
	want="fcvm cannot start Firecracker yet"
	[ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ] || want="needs hardware KVM"
else
	want="Firecracker is not installed"
fi
[ $rc -ne 0 ] && grep -q -- "--vmm firecracker: $want" "$out" && [ "$(f ls --json | jq length)" = 0 ]
t_result "firecracker_refused_with_why (rc=$rc: $(head -c 240 "$out"))"
f podman run --network none --vmm xen --rm demo true >"$out" 2>&1
[ $? -ne 0 ] && grep -q -- "--vmm must be auto, qemu or firecracker, not 'xen'" "$out"
t_result "unknown_vmm_refused ($(head -c 200 "$out"))"
f snapshot create nosuch --tag t --vmm firecracker >"$out" 2>&1
[ $? -ne 0 ] && grep -q "no VM named 'nosuch'" "$out"
t_result "snapshot_of_no_vm_says_so ($(head -c 200 "$out"))"
f shutdown >/dev/null
t_result shutdown
