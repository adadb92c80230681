# VM networks with real traffic: a container's busybox httpd reached through published ports
# on 127.0.0.1 and the host's address, two VMs publishing the same guest port on different
# host ports, a taken host port refused, egress to a server on the host, and nothing of
# fcvm's left after stop and after SIGKILL of a VM. As root: bridged, inside a private network
# namespace this script makes (the host's own network is never touched); as an unprivileged
# user: rootless, through pasta.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0
if t_is_root && [ -z "${FCVM_NET_PRIVATE:-}" ]; then
	exec env FCVM_NET_PRIVATE=1 unshare --net bash "$0" "$@"
fi
if t_is_root; then
	MODE=bridged
	ip link set lo up
	ip link add up0 type veth peer name up1 && ip addr add 198.51.100.5/24 dev up0 &&
		ip link set up0 up && ip link set up1 up && ip route add default via 198.51.100.1
	HOSTIP=198.51.100.5
else
	MODE=rootless
	command -v pasta >/dev/null || { t_skip "$T_NAME" "pasta is not installed (apt-get install passt)"; exit 0; }
	HOSTIP=$(ip -4 route get 192.0.2.200 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
	[ -n "$HOSTIP" ] || { t_skip "$T_NAME" "no host address with a route"; exit 0; }
fi
# ports of this run only (parallel runs, root and rootless, pick others)
P1=$((20000 + ($$ % 9000) * 4)) P2=$((P1 + 1)) P3=$((P1 + 2))

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
web() { # NAME PORT TEXT: a detached VM whose container serves TEXT on port 80
	f podman run -d --name "$1" --network "$MODE" --publish "$2:80" demo \
		sh -c "mkdir -p /w && echo $3 >/w/index.html && exec httpd -f -p 80 -h /w" >/dev/null
}
answers() { [ "$(curl -s -m 2 "http://$1/index.html")" = "$2" ]; }

web web1 "$P1" one
t_result "${MODE}_run_with_publish"
web web2 "$P2" two
t_result second_vm_same_guest_port
t_wait_until 150 answers "127.0.0.1:$P1" one
t_result published_port_answers_on_127.0.0.1
t_check published_port_answers_on_host_address answers "$HOSTIP:$P1" one
t_wait_until 150 answers "127.0.0.1:$P2" two
t_result second_vm_answers_on_its_own_port

f ls --json >"$T_ROOT/ls.json"
jq -e --arg m "$MODE" --arg p "$P1:80/tcp" '.[] | select(.name == "web1") |
	.network == $m and .guest_ip == "10.254.254.2" and (.ports | index($p)) != null' "$T_ROOT/ls.json" >/dev/null
t_result ls_json_shows_network_address_and_ports

# a taken host port is a clear error, and leaves no VM behind
f podman run -d --name web3 --network "$MODE" --publish "$P1:80" demo true >/dev/null 2>"$T_ROOT/err"
rc=$?
[ $rc -ne 0 ] && grep -q "already" "$T_ROOT/err" && ! f ls --json | jq -e '.[] | select(.name == "web3")' >/dev/null
t_result "taken_host_port_refused (rc=$rc: $(head -c 200 "$T_ROOT/err"))"

# egress: the container fetches from a server on the host
mkdir -p "$T_ROOT/www" && echo from-host >"$T_ROOT/www/h.txt"
busybox httpd -p "$HOSTIP:$P3" -h "$T_ROOT/www"
t_wait_until 10 curl -sf -m 2 "http://$HOSTIP:$P3/h.txt"
got=$(f exec web1 -- wget -q -O - "http://$HOSTIP:$P3/h.txt" 2>&1)
[ "$got" = from-host ]
t_result "egress_reaches_the_host ($got)"
pkill -f "httpd -p $HOSTIP:$P3" 2>/dev/null

# after stop and rm, and after SIGKILL of a VMM, nothing of fcvm's is left
leftovers() {
	if [ "$MODE" = bridged ]; then
		ip -j link | jq -e '.[] | select(.ifname | startswith("fcvm"))' >/dev/null ||
			nft -j list ruleset | jq -e '.nftables[] | select(.table.name? // "" | startswith("fcvm"))' >/dev/null
	else
		pgrep -u "$(id -u)" -f "pasta --config-net" >/dev/null
	fi
}
qpid=$(jq -r '.[] | select(.name == "web2") | .pid' "$T_ROOT/ls.json")
f stop web1 && t_wait_until 60 f rm web1
t_result stop_and_rm
kill -KILL "$qpid"
t_wait_until 60 sh -c "! kill -0 $qpid 2>/dev/null"
nothing_left() { ! leftovers; }
t_wait_until 60 nothing_left
t_result "nothing_left_after_stop_and_sigkill"
f rm web2 >/dev/null 2>&1
f shutdown >/dev/null
t_result shutdown
