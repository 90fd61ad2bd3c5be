#!/usr/bin/env bash
# The multi-instance chat without Docker (`make cluster`): the topology of
# docker-compose.yml as plain processes. redis-server, three chat nodes on
# loopback ports, and nginx in front of them in plain round robin with
# deploy/nginx/balancer.conf, the same balancer configuration compose uses.
# Everything runs in the foreground; Ctrl-C (or SIGTERM) stops it all, and so
# does any of the processes exiting.
#
#   scripts/cluster.sh                   # http://127.0.0.1:3000/
#   PORT=8080 scripts/cluster.sh         # another balancer port
#
# Environment: PORT (balancer, default 3000), NODE_PORTS (default
# "3001 3002 3003"), REDIS_PORT (default 6399), CHATSERVER (a built binary;
# default: build ./cmd/chatserver), NGINX (default: nginx from PATH or
# /usr/sbin/nginx). Extra arguments are passed to every chat node.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-3000}
NODE_PORTS=${NODE_PORTS:-"3001 3002 3003"}
REDIS_PORT=${REDIS_PORT:-6399}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

for tool in redis-server "$NGINX"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "cluster: $tool not found; run \`make setup\`" >&2
		exit 1
	fi
done

# Each process gets its own process group, so that Ctrl-C reaches this
# script alone and the processes stop in order: balancer, nodes, Redis.
set -m

work=$(mktemp -d "${TMPDIR:-/tmp}/siogo-cluster.XXXXXX")
pids=()
names=()

stop_all() {
	local status=$?
	trap - INT TERM EXIT
	echo "cluster: stopping" >&2
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	rm -rf "$work"
	echo "cluster: stopped" >&2
	exit "$status"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

# start NAME COMMAND...: runs a process, its output prefixed with NAME.
start() {
	local name=$1
	shift
	"$@" > >(sed -u "s/^/$name | /") 2> >(sed -u "s/^/$name | /" >&2) &
	pids+=($!)
	names+=("$name")
}

# wait_port PID PORT: waits until process PID accepts connections on
# 127.0.0.1:PORT, failing if it exits first (e.g. the port was taken).
wait_port() {
	for _ in $(seq 1 300); do
		if ! kill -0 "$1" 2>/dev/null; then
			echo "cluster: a process exited before listening on port $2" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && kill -0 "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "cluster: nothing listens on port $2 after 30s" >&2
	return 1
}

if [ -z "${CHATSERVER:-}" ]; then
	make -s bundle
	go build -o "$work/chatserver" ./cmd/chatserver
	CHATSERVER=$work/chatserver
fi

start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --loglevel warning
wait_port "${pids[0]}" "$REDIS_PORT"

n=0
: >"$work/chat-nodes.inc"
for port in $NODE_PORTS; do
	n=$((n + 1))
	start "node$n" "$CHATSERVER" -addr "127.0.0.1:$port" -redis "redis://127.0.0.1:$REDIS_PORT/0" -node-id "node$n" "$@"
	echo "server 127.0.0.1:$port fail_timeout=2s;" >>"$work/chat-nodes.inc"
done
n=0
for port in $NODE_PORTS; do
	n=$((n + 1))
	wait_port "${pids[n]}" "$port"
done

cp deploy/nginx/local.conf deploy/nginx/balancer.conf "$work/"
sed -i "s/^\([[:space:]]*\)listen 3000;/\1listen $PORT;/" "$work/balancer.conf"
start nginx "$NGINX" -p "$work/" -e stderr -c "$work/local.conf"
wait_port "${pids[n + 1]}" "$PORT"

echo "cluster: ready on http://127.0.0.1:$PORT/ (nodes on ports ${NODE_PORTS// /, }, Redis on $REDIS_PORT); Ctrl-C stops it" >&2
# Returns when any process exits, or when a signal runs the trap.
set +e
wait -n "${pids[@]}"
echo "cluster: a process exited" >&2
exit 1
