#!/usr/bin/env bash
# make soak: runs the chat server under tools/soak's load — 2,000 clients over
# both protocol revisions and both transports, steady chat, 50 connects and
# disconnects per second — for SOAK_DURATION (default 10m), then checks that
# memory and goroutines stayed flat and that no message was lost. The summary
# goes to stdout and, as JSON with every reading, to artifacts/soak.json; the
# server's log to artifacts/soak-server.log.
#
# With SOAK_NODES=3 (make soak-cluster) it runs redis-server and three chat
# nodes on the Streams broker instead, spreads the clients over them and
# restarts one node in the middle of the run: its clients reconnect and
# recover. Each node's log goes to artifacts/soak-server-nodeN.log, the
# summary to artifacts/soak-cluster.json.
#
# Environment: SOAK_DURATION (10m), SOAK_CLIENTS (2000), SOAK_RATE (chat lines
# per second, 10), SOAK_CHURN (per second, 50), SOAK_NODES (1). Extra
# arguments go to soak.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${SOAK_DURATION:-10m}
clients=${SOAK_CLIENTS:-2000}
rate=${SOAK_RATE:-10}
churn=${SOAK_CHURN:-50}
nodes=${SOAK_NODES:-1}

# Each client holds a connection or two in both processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p bin artifacts
go build -o bin/ ./cmd/chatserver
(cd tools && go build -o ../bin/ ./soak)

json=artifacts/soak.json
if [ "$nodes" != 1 ]; then
	json=artifacts/soak-cluster.json
fi

# soak starts the server (or Redis and the nodes) on free loopback ports,
# writes its log to artifacts/soak-server.log and stops it at the end.
exec bin/soak -chatserver bin/chatserver -server-log artifacts/soak-server.log \
	-nodes "$nodes" -clients "$clients" -rate "$rate" -churn "$churn" \
	-duration "$duration" -json "$json" "$@"
