#!/usr/bin/env bash
# make bench: builds the chat server, the load generator and the benchmark
# runner, then benchmarks our server against the reference Node.js socket.io
# chat server (bench/node-chat-server.js). Results go to bench/RESULTS.md,
# bench/results.png and bench/results.json. Extra arguments go to benchrun,
# e.g. scripts/bench.sh -quick, or -run 'ws-sat' to run some scenarios only.
# -servers picks other variants to compare, e.g. -servers go,go-norecovery
# (connection-state recovery on and off) or -servers go3-streams,go3-pubsub
# (three nodes and redis-server, Streams against pub/sub); see bench/README.md.
#
# make bench-scale: scripts/bench.sh -suite scale runs the scale suite
# instead (idle connections up to the open-file limit, one line to all, a
# line a second, idle polling sessions) within 20 minutes and writes
# bench/scale/.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Node.js server runs unless -servers leaves it out.
servers=go,node
suite=bench
prev=
for a in "$@"; do
	case $prev in
	-servers | --servers) servers=$a ;;
	-suite | --suite) suite=$a ;;
	esac
	case $a in
	-servers=* | --servers=*) servers=${a#*=} ;;
	-suite=* | --suite=*) suite=${a#*=} ;;
	esac
	prev=$a
done
case ",$servers," in
*,node,*)
	if [ ! -f node_modules/socket.io/package.json ]; then
		echo "bench: node_modules/socket.io is missing; run make setup first" >&2
		exit 1
	fi
	;;
esac

# Every process started from here (benchrun, the servers, the load
# generator) gets the soft open-file limit raised to the hard limit, each
# process on its own limit. The 10k idle run needs about 10,300 descriptors
# per process; the scale suite connects as many clients as the limit allows,
# less 1000.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
case $suite in
scale)
	# The whole run stays under 20 minutes: benchrun skips what does not
	# fit in its budget, and timeout is the backstop.
	limit=1200 budget=19m out=bench/scale
	echo "bench: open-file limit $(ulimit -Sn) (hard $hard) per process" >&2
	;;
*)
	# Under 10 minutes likewise.
	limit=590 budget=8m30s out=bench
	if [ "$hard" != "unlimited" ] && [ "$hard" -lt 10300 ]; then
		echo "bench: the hard open-file limit is $hard; the 10k-connection run needs about 10300" >&2
	fi
	;;
esac

mkdir -p bin
go build -o bin/ ./cmd/chatserver
(cd tools && go build -o ../bin/ ./loadgen ./benchrun)

exec timeout --signal=INT "$limit" bin/benchrun -budget "$budget" \
	-chatserver bin/chatserver -loadgen bin/loadgen \
	-node node -node-server bench/node-chat-server.js -out "$out" "$@"
