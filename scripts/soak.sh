#!/usr/bin/env bash
# make soak: runs the chat server under tools/soak's load — 2,000 clients over
# both protocol revisions and both transports, steady chat, 50 connects and
# disconnects per second — for SOAK_DURATION (default 10m), then checks that
# memory and goroutines stayed flat and that no message was lost. The summary
# goes to stdout and, as JSON with every reading, to artifacts/soak.json; the
# server's log to artifacts/soak-server.log.
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

# soak starts the server on a free loopback port, writes its log to
# artifacts/soak-server.log and stops it at the end.
exec bin/soak -chatserver bin/chatserver -server-log artifacts/soak-server.log \
	-clients "$clients" -rate "$rate" -churn "$churn" \
	-duration "$duration" -json artifacts/soak.json "$@"
