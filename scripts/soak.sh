#!/usr/bin/env bash
# make soak: runs the chat server under tools/soak's load — 2,000 clients over
# both protocol revisions and both transports, steady chat, 50 connects and
# disconnects per second — for SOAK_DURATION (default 10m), then checks that
# memory and goroutines stayed flat and that no message was lost. The summary
# goes to stdout and, as JSON with every reading, to artifacts/soak.json.
#
# Environment: SOAK_DURATION (10m), SOAK_CLIENTS (2000), SOAK_RATE (chat lines
# per second, 10), SOAK_CHURN (per second, 50). Extra arguments go to soak.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${SOAK_DURATION:-10m}
clients=${SOAK_CLIENTS:-2000}
rate=${SOAK_RATE:-10}
churn=${SOAK_CHURN:-50}

# Each client holds a connection or two in both processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p bin artifacts
go build -o bin/ ./cmd/chatserver
(cd tools && go build -o ../bin/ ./soak)

log=artifacts/soak-server.log
# Every client comes from 127.0.0.1, so the per-address handshake limit is
# off; the per-session packet limit stays on (the soak's clients stay far
# below it).
bin/chatserver -addr 127.0.0.1:0 -handshake-rate 0 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$log" | head -n 1)
	[ -n "$addr" ] && break
	kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$addr" ] || { echo "soak: the server did not start" >&2; cat "$log" >&2; exit 1; }

status=0
bin/soak -url "http://$addr" -clients "$clients" -rate "$rate" -churn "$churn" \
	-duration "$duration" -json artifacts/soak.json "$@" || status=$?

kill -TERM "$server"
wait "$server" || true
trap - EXIT
exit "$status"
