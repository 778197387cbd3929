#!/usr/bin/env bash
# A segkv cluster on one machine: a private etcd, 3 shards × 2 nodes.
#
#   examples/cluster.sh start    # etcd + 6 kv-servers in the background, then kv-cluster status
#   examples/cluster.sh status
#   examples/cluster.sh stop
#
# Needs `etcd` (Debian: apt-get install etcd-server) and a build (npm run build).
# Settings by environment: DIR (default ./data/cluster), BASE_PORT (7001: the
# nodes take BASE_PORT..BASE_PORT+5) or PORTS (a space-separated list, one per
# node), ETCD_PORT (2379; its peer port ETCD_PEER_PORT, default ETCD_PORT+1),
# SHARDS (3), CLUSTER (demo).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-./data/cluster}
BASE_PORT=${BASE_PORT:-7001}
ETCD_PORT=${ETCD_PORT:-2379}
SHARDS=${SHARDS:-3}
CLUSTER=${CLUSTER:-demo}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-$((ETCD_PORT + 1))}
ETCD_URL="http://127.0.0.1:${ETCD_PORT}"

start() {
  command -v etcd >/dev/null || { echo "etcd not found on PATH (Debian: apt-get install etcd-server)" >&2; exit 2; }
  [ -f dist/src/server/main.js ] || { echo "build first: npm run build" >&2; exit 2; }
  mkdir -p "$DIR"
  etcd --name demo --data-dir "$DIR/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "demo=http://127.0.0.1:$ETCD_PEER_PORT" \
    --log-level error >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$ETCD_PORT") 2>/dev/null && break
    sleep 0.1
  done
  node dist/tools/kv-cluster.js create --etcd "$ETCD_URL" --cluster "$CLUSTER" --shards "$SHARDS" || true
  # shellcheck disable=SC2206
  ports=(${PORTS:-$(seq "$BASE_PORT" $((BASE_PORT + 2 * SHARDS - 1)))})
  i=0
  for s in $(seq "$SHARDS"); do
    for n in 1 2; do
      port=${ports[$i]}
      i=$((i + 1))
      node dist/src/server/main.js --dir "$DIR/s$s-n$n" --port "$port" \
        --cluster "$CLUSTER" --etcd "$ETCD_URL" --shard "s$s" --node-name "s$s-n$n" \
        >"$DIR/s$s-n$n.log" 2>&1 &
      echo $! >"$DIR/s$s-n$n.pid"
    done
  done
  # Ready when every shard has a primary and a replica.
  for _ in $(seq 600); do
    replicas=$(node dist/tools/kv-cluster.js status --etcd "$ETCD_URL" --cluster "$CLUSTER" 2>/dev/null | grep -c '^  replica' || true)
    [ "$replicas" -ge "$SHARDS" ] && break
    sleep 0.2
  done
  status
}

status() {
  node dist/tools/kv-cluster.js status --etcd "$ETCD_URL" --cluster "$CLUSTER"
}

stop() {
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
