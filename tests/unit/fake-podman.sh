#!/bin/sh
# A stand-in for podman in tests/unit/test_agent.c (fcvm-agent --podman): checks how the
# agent builds its command lines without any container runtime.
#   load -i FILE   prints podman's "Loaded image: REF" if FILE exists, fails like podman if
#                  not; while FILE.gate exists it waits (the test watches the "loading" state);
#                  it creates FILE.loaded (the test checks whether a load happened).
#   wait --condition=running NAME   succeeds at once (the container "runs").
#   run ... / exec ...   print their arguments on one line; with -i they then copy stdin to
#                  stderr until EOF; run exits 3, exec 0.
cmd=$1
case "$cmd" in
load)
	[ "$2" = "-i" ] || { echo "fake-podman: load wants -i" >&2; exit 2; }
	while [ -e "$3.gate" ]; do sleep 0.02; done
	if [ ! -e "$3" ]; then
		echo "Error: payload does not match any of the supported image formats: $3" >&2
		exit 125
	fi
	: >"$3.loaded"
	echo "Getting image source signatures"
	echo "Loaded image: localhost/x:latest"
	;;
run | exec)
	# --cidfile F: the container "exists" (F written), and F prints as CID
	prev= args=
	for a in "$@"; do
		if [ "$prev" = --cidfile ]; then
			echo fake-container-id >"$a"
			a=CID
		fi
		args="${args:+$args }$a"
		prev=$a
	done
	printf '%s\n' "$args"
	for a in "$@"; do
		[ "$a" = "-i" ] && cat >&2
	done
	[ "$cmd" = run ] && exit 3
	exit 0
	;;
wait)
	[ "$2" = "--condition=running" ] || exit 2
	;;
*)
	echo "fake-podman: unknown command $cmd" >&2
	exit 2
	;;
esac
