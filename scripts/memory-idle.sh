#!/usr/bin/env bash
# RSS per idle keep-alive connection of every row, after each connection has
# served one request, when the requests came one after another (serial) and all at
# once (burst), measured SETTLE seconds after the last answer.
#
#   scripts/memory-idle.sh [N=5000] [SETTLE=5]
#
# Rows: $MODELS (default: every row), from target/release/gvhttpd, and with
# OLD_BIN=path the same rows from that binary ("old-" rows), interleaved. Each run
# is a fresh `gvhttpd serve --workers 1` pinned to CPU 0, load from CPU 1
# (scripts/idle-conns-rss.py); the server is stopped with SIGINT (by its PID).
set -euo pipefail
N=${1:-5000}
SETTLE=${2:-5}
MODELS=${MODELS:-"callback tokio tokio+multi green green+steal green+dedicated"}
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/gvhttpd}
ulimit -n $((N * 2 + 1000))
echo "# scripts/memory-idle.sh $N $SETTLE at $(git rev-parse --short HEAD) ($(date -u +%FT%TZ)), kernel $(uname -r)"
run() { # label binary model mode
  local out="$(mktemp)"
  taskset -c 0 "$2" serve --model "$3" --workers 1 --addr 127.0.0.1:0 --max-conns $((N + 100)) >"$out" 2>/dev/null &
  local pid=$!
  local addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$out" | head -1)
    [[ -n $addr ]] && break
    sleep 0.05
  done
  printf '%-22s %-7s ' "$1" "$4"
  taskset -c 1 python3 scripts/idle-conns-rss.py "$addr" "$pid" "$N" / 60 "$4" "$SETTLE" || true
  kill -INT "$pid"; wait "$pid" || true
  rm -f "$out"
}
for mode in serial burst; do
  for m in $MODELS; do
    run "$m" "$BIN" "$m" "$mode"
    [[ -n ${OLD_BIN:-} ]] && run "old-$m" "$OLD_BIN" "$m" "$mode"
  done
done
