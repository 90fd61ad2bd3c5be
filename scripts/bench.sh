#!/usr/bin/env bash
# make bench: builds the chat server, the load generator and the benchmark
# runner, then benchmarks our server against the reference Node.js socket.io
# chat server (bench/node-chat-server.js). Results go to bench/RESULTS.md,
# bench/results.png and bench/results.json. Extra arguments go to benchrun,
# e.g. scripts/bench.sh -quick, or -run 'ws-sat' to run some scenarios only.
# -servers picks other variants to compare, e.g. -servers go,go-norecovery
# (connection-state recovery on and off) or -servers go3-streams,go3-pubsub
# (three nodes and redis-server, Streams against pub/sub); see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Node.js server runs unless -servers leaves it out.
servers=go,node
prev=
for a in "$@"; do
	case $prev in -servers | --servers) servers=$a ;; esac
	case $a in -servers=* | --servers=*) servers=${a#*=} ;; esac
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

# 10k idle connections need 10k descriptors in the server and as many in the
# load generator, each process on its own limit.
hard=$(ulimit -Hn)
if [ "$hard" != "unlimited" ] && [ "$hard" -lt 10300 ]; then
	echo "bench: the hard open-file limit is $hard; the 10k-connection run needs about 10300" >&2
fi
ulimit -n "$hard" 2>/dev/null || true

mkdir -p bin
go build -o bin/ ./cmd/chatserver
(cd tools && go build -o ../bin/ ./loadgen ./benchrun)

# The whole run stays under 10 minutes: benchrun skips what does not fit in
# its budget, and timeout is the backstop.
exec timeout --signal=INT 590 bin/benchrun -budget 8m30s \
	-chatserver bin/chatserver -loadgen bin/loadgen \
	-node node -node-server bench/node-chat-server.js -out bench "$@"
