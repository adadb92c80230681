# The startup cache with real QEMU: a second `podman run` of the same key is restored from
# the first's snapshot, and gives the same bytes and exit code as a cold run, for a table of
# cases; what splits a key (another image under the same name) and what does not (the VM's
# name); two concurrent runs of one key; run -d then exec at once; a service on a published
# port served running from the cache; --no-snapshot and
# FCVM_NO_SNAPSHOT; `snapshot ls` kind cache; the size bound; `snapshot prune`.
. "$(dirname "$0")/lib.sh"

t_need_vm || exit 0
unset FCVM_NO_SNAPSHOT

S=$(t_state_dir)
t_supervise "$S"
t_result supervisor_up
log=$S/supervisor.log
D=$T_ROOT/out
mkdir -p "$D"
hits() { grep -c "from the startup cache" "$log"; }
entries() { f snapshot ls --json | jq '[.[] | select(.kind == "cache")] | length'; }

# cmp_cached NAME CMD...: the same run twice; the second is restored from the cache (its start
# entry, or LEVEL's) and gives the first's stdout (sorted with SORTED=1), stderr and exit code
cmp_cached() {
	local name=$1 h0 h1 rc1 rc2
	shift
	f podman run --rm --network none demo "$@" </dev/null >"$D/p.out" 2>"$D/p.err"
	rc1=$?
	h0=$(hits)
	f podman run --rm --network none demo "$@" </dev/null >"$D/f.out" 2>"$D/f.err"
	rc2=$?
	h1=$(hits)
	if [ "$h1" -ne $((h0 + 1)) ]; then
		t_fail "$name" "the second run was not from the cache ($h0 -> $h1 hits)"
		return
	fi
	if ! grep "from the startup cache" "$log" | tail -1 | grep -q "(${LEVEL-start} entry"; then
		t_fail "$name" "not from the ${LEVEL-start} entry: $(grep "from the startup cache" "$log" | tail -1)"
		return
	fi
	t_same_as_oracle "$name" "$D" "$rc2" "$rc1"
}

cmp_cached echo_hi echo hi
cmp_cached exit_7_with_stderr sh -c 'echo out; echo err >&2; exit 7'
cmp_cached exit_1 false
cmp_cached not_found_127 no-such-command # crun finds it missing after the hold: replayed
cmp_cached killed_143 sh -c 'kill -TERM $$'
fmt=$(for i in $(seq 0 255); do printf '\\%03o' "$i"; done)
cmp_cached all_256_bytes printf "$fmt"
# HOSTNAME is podman's container ID here (--network none), another in every cold run too
SORTED=1 cmp_cached environment sh -c 'unset HOSTNAME; env'
cmp_cached env_workdir_user -e FOO=bar -w /tmp -u 1000:1000 sh -c 'echo $FOO; cd .; echo $PWD; id'
jq -e 'map(select(.kind == "cache")) | length >= 2' <(f snapshot ls --json) >/dev/null
t_result snapshot_ls_shows_kind_cache

# a key is not split by what is per run: another name is served by the same entry
f podman run --rm --network none --name first demo echo named >/dev/null
h0=$(hits)
out=$(f podman run --rm --network none --name second demo echo named)
[ "$out" = named ] && [ "$(hits)" -eq $((h0 + 1)) ]
t_result name_is_not_in_the_key

# another image under the same name (the file at the same path) is another key
img=$T_ROOT/img.tar
cp "$FCVM_ASSETS"/demo-*.oci.tar "$img"
f podman run --rm --network none "$img" echo from-file >/dev/null
h0=$(hits)
out=$(f podman run --rm --network none "$img" echo from-file)
[ "$out" = from-file ] && [ "$(hits)" -eq $((h0 + 1)) ]
t_result an_archive_is_cached_too
echo changed >"$T_ROOT/extra"
tar -rf "$img" -C "$T_ROOT" extra
n0=$(entries)
h0=$(hits)
out=$(f podman run --rm --network none "$img" echo from-file)
[ "$out" = from-file ] && [ "$(hits)" -eq "$h0" ] && [ "$(entries)" -gt "$n0" ]
t_result another_image_under_the_same_name_is_not_served_the_old_entry

# two concurrent runs of one key (neither cached yet): both succeed
f podman run --rm --network none demo echo together >"$D/c1" 2>&1 &
p1=$!
f podman run --rm --network none demo echo together >"$D/c2" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$(cat "$D/c1")" = together ] && [ "$(cat "$D/c2")" = together ]
t_result two_concurrent_runs_of_one_key

# run -d from the cache, then exec at once
stopped() { [ "$(f ls --json | jq -r ".[] | select(.name == \"$1\") | .status")" = stopped ]; }
f podman run -d --network none --name w1 demo sleep 600 >/dev/null
t_wait_until 60 grep -q "w1: startup cache entry cache-ready-.* taken" "$log"
t_result detached_run_takes_a_ready_entry
f stop w1 >/dev/null
t_wait_until 60 stopped w1 && f rm w1 >/dev/null
h0=$(hits)
f podman run -d --network none --name w2 demo sleep 600 >/dev/null
out=$(f exec w2 -- echo ok 2>&1)
[ "$out" = ok ] && [ "$(hits)" -eq $((h0 + 1)) ]
t_result "run_detached_from_the_cache_then_exec ($out)"
grep -q "w2: from the startup cache (ready entry" "$log"
t_result a_detached_run_is_served_running
f snapshot create w2 --tag from-cache >"$D/snap.out" 2>&1
grep -q "startup cache" "$D/snap.out"
t_result "a_cached_vm_is_not_snapshotted_and_says_why ($(head -c 200 "$D/snap.out"))"
f snapshot create w2 --tag cache-mine >"$D/tag.out" 2>&1
[ $? -ne 0 ] && grep -q "startup cache" "$D/tag.out"
t_result "cache_tags_are_reserved ($(head -c 200 "$D/tag.out"))"
f stop w2 >/dev/null
t_wait_until 60 stopped w2 && f rm w2 >/dev/null

# a service with a published port: the cached run serves on its own port, at once
P1=$((20001 + ($$ % 9000) * 3)) P2=$((P1 + 1))
answers() { [ "$(curl -s -m 5 "http://127.0.0.1:$1/index.html")" = "$2" ]; }
serve='mkdir -p /w && echo served >/w/index.html && exec httpd -f -p 80 -h /w'
f podman run -d --name web1 --publish "$P1:80" demo sh -c "$serve" >/dev/null
t_wait_until 120 answers "$P1" served
t_result service_cold_serves
t_wait_until 60 grep -q "web1: startup cache entry cache-ready-.* taken" "$log"
t_result service_ready_entry_taken
f stop web1 >/dev/null
t_wait_until 60 stopped web1 && f rm web1 >/dev/null
h0=$(hits)
f podman run -d --name web2 --publish "$P2:80" demo sh -c "$serve" >/dev/null
t_wait_until 60 answers "$P2" served && [ "$(hits)" -eq $((h0 + 1)) ]
t_result "service_cached_serves_on_its_own_port ($(f ls --json | jq -r '.[] | select(.name == "web2") | .network'))"
f logs web2 >"$D/web2.log" 2>&1
[ ! -s "$D/web2.log" ]
t_result service_cached_log_is_the_cold_one
f stop web2 >/dev/null
t_wait_until 60 stopped web2 && f rm web2 >/dev/null

# bypassed: --no-snapshot and FCVM_NO_SNAPSHOT=1 neither use nor make entries
n0=$(entries)
h0=$(hits)
a=$(f podman run --rm --network none --no-snapshot demo echo hi)
b=$(FCVM_NO_SNAPSHOT=1 f podman run --rm --network none demo echo uncached)
[ "$a" = hi ] && [ "$b" = uncached ] && [ "$(hits)" -eq "$h0" ] && [ "$(entries)" -eq "$n0" ]
t_result no_snapshot_bypasses_the_cache

# prune: every entry goes (no clone runs from any now)
f snapshot prune --json >"$D/prune.out"
jq -e '.removed >= 2 and .kept == 0' "$D/prune.out" >/dev/null && [ "$(entries)" -eq 0 ]
t_result "prune_removes_the_entries ($(cat "$D/prune.out"))"

# the size bound: 1 MiB keeps only the newest entry (the boot entry goes once the start entry
# is taken)
S2=$(t_state_dir)
FCVM_CACHE_MAX_MB=1 t_supervise "$S2"
timeout 300 "$FCVM" --state-dir "$S2" podman run --rm --network none demo echo bound >/dev/null
t_wait_until 20 grep -q "startup cache: cache-boot-.* goes" "$S2/supervisor.log"
timeout 20 "$FCVM" --state-dir "$S2" snapshot ls --json >"$D/bound.json"
jq -e '[.[] | select(.kind == "cache")] | length == 1 and (.[0].tag | startswith("cache-start-"))' "$D/bound.json" >/dev/null
t_result "size_bound_keeps_the_newest_only ($(jq -c '[.[] | .tag]' "$D/bound.json"))"
