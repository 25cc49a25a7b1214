#!/usr/bin/env bash
# Soak test: each model serves a steady mix of routes for DURATION while the
# server's RSS and open descriptors are sampled every SAMPLE seconds, then the load
# stops and the server must give its descriptors back. Results go to
# results/<date>-soak/<model>/ (samples.csv, one bench report per route, server
# log) with a README.md and summary.md at the top.
#
#   scripts/soak.sh                          # 10 minutes per model, every available model
#   DURATION=60 MODELS=green scripts/soak.sh # a one-minute check of one model
#
# Environment: DURATION (seconds, or with s/m/h: 600, 90s, 10m; default 10m),
# SAMPLE (seconds between samples, default 10), MODELS (default "callback tokio
# green"; unavailable io_uring models are skipped), WORKERS (default 1),
# SERVER_CPUS / LOAD_CPUS (taskset lists, default 0 and 1), OUT (results folder,
# default results/<UTC date>-soak).
#
# The mix, all open loop (fixed offered rates, so the run measures the server's
# footprint, not its peak): keep-alive GET / and /json, pipelined GET /json x4,
# POST /echo with 4 KiB bodies, GET /sleep/50, a 1 MiB static file, and a new
# connection per request (accept / close churn). The script exits 1 when a model
# holds more descriptors after the load than before it (a leak), 2 on setup errors.
set -euo pipefail
cd "$(dirname "$0")/.."

secs() { # 600 | 90s | 10m | 1h -> seconds
  local v=$1
  case $v in
    *h) echo $((${v%h} * 3600)) ;;
    *m) echo $((${v%m} * 60)) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
DURATION_S=$(secs "${DURATION:-10m}")
SAMPLE=${SAMPLE:-10}
MODELS=${MODELS:-"callback tokio green"}
WORKERS=${WORKERS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
OUT=${OUT:-results/$(date -u +%Y-%m-%d)-soak}
[[ $DURATION_S =~ ^[0-9]+$ && $DURATION_S -gt 0 ]] || { echo "bad DURATION: ${DURATION:-}" >&2; exit 2; }
[[ $SAMPLE =~ ^[0-9]+$ && $SAMPLE -gt 0 ]] || { echo "bad SAMPLE: $SAMPLE" >&2; exit 2; }

cargo build --release --quiet --bin gvhttpd
BIN=target/release/gvhttpd
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$OUT"
ROOT=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT
head -c $((1 << 20)) /dev/urandom >"$ROOT/big.bin"
head -c 4096 /dev/urandom | base64 -w0 | head -c 4096 >"$ROOT/body.txt"

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
open_conns() { # from /stats
  curl -s -m 5 "http://127.0.0.1:$1/stats" | sed -n 's/.*"open": *\([0-9]*\).*/\1/p'
}
sample() { # pid port t label -> one CSV row
  echo "$3,$(rss_kib "$1"),$(fds "$1"),$(open_conns "$2"),$4"
}

soak_one() { # model
  local model=$1 dir="$OUT/$1" port="" pid
  mkdir -p "$dir"
  taskset -c "$SERVER_CPUS" "$BIN" serve --model "$model" --workers "$WORKERS" \
    --addr 127.0.0.1:0 --root "$ROOT" >"$dir/server.out" 2>"$dir/server.err" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/server.out")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "$model: no readiness line" >&2; cat "$dir/server.err" >&2; return 2; }
  local url="http://127.0.0.1:$port"
  curl -s -o /dev/null -m 5 "$url/" # warm: first accept, first Date
  echo "t_s,rss_kib,fds,open_conns,phase" >"$dir/samples.csv"
  sample "$pid" "$port" 0 before >>"$dir/samples.csv"
  local base_fds
  base_fds=$(fds "$pid")

  local load=(taskset -c "$LOAD_CPUS" "$BIN" bench -q -d "${DURATION_S}s" --timeout 30s)
  local loads=()
  "${load[@]}" --url "$url/" -c 8 --rate 1500 --json "$dir/plaintext.json" >"$dir/plaintext.txt" 2>&1 &
  loads+=($!)
  "${load[@]}" --url "$url/json" -c 4 --pipeline 4 --rate 1000 --json "$dir/json-pipelined.json" >"$dir/json-pipelined.txt" 2>&1 &
  loads+=($!)
  "${load[@]}" --url "$url/echo" -m POST --body-file "$ROOT/body.txt" -H "Content-Type: text/plain" \
    -c 4 --rate 300 --json "$dir/echo-4k.json" >"$dir/echo-4k.txt" 2>&1 &
  loads+=($!)
  "${load[@]}" --url "$url/sleep/50" -c 32 --rate 200 --json "$dir/sleep50.json" >"$dir/sleep50.txt" 2>&1 &
  loads+=($!)
  "${load[@]}" --url "$url/static/big.bin" -c 2 --rate 20 --json "$dir/static-1m.json" >"$dir/static-1m.txt" 2>&1 &
  loads+=($!)
  "${load[@]}" --url "$url/json" --no-keepalive -c 4 --rate 200 --json "$dir/churn.json" >"$dir/churn.txt" 2>&1 &
  loads+=($!)
  PIDS+=("${loads[@]}")

  local start=$SECONDS t=0 left
  while :; do
    left=$((DURATION_S - t))
    ((left > 0)) || break
    sleep "$((left < SAMPLE ? left : SAMPLE))"
    t=$((SECONDS - start))
    sample "$pid" "$port" "$t" load >>"$dir/samples.csv"
  done
  local load_rc=0
  for l in "${loads[@]}"; do wait "$l" || load_rc=1; done
  # Idle: keep-alive connections close on the server's idle timeout or the
  # generator's exit; give them a sample period, then look again.
  sleep "$SAMPLE"
  t=$((SECONDS - start))
  sample "$pid" "$port" "$t" after >>"$dir/samples.csv"
  # The /stats request of the last sample may still be lingering: allow it 5 s.
  local end_fds
  for _ in $(seq 25); do
    end_fds=$(fds "$pid")
    ((end_fds <= base_fds)) && break
    sleep 0.2
  done
  kill -TERM "$pid"
  local exit_code=0
  wait "$pid" || exit_code=$?
  local col='NR>2 && $5=="load" { if ($C > m) m = $C } END { print m + 0 }'
  local reqs
  reqs=$(python3 -c 'import json, sys
ok = bad = 0
for f in sys.argv[1:]:
    r = json.load(open(f))["result"]
    ok += r["successes"]; bad += r["requests"] - r["successes"]
print(f"{ok} | {bad}")' "$dir"/*.json)
  echo "| $model | $(awk -F, 'NR==2{print $2}' "$dir/samples.csv") | $(awk -F, "${col//C/2}" "$dir/samples.csv") \
| $(awk -F, 'END{print $2}' "$dir/samples.csv") | $base_fds | $(awk -F, "${col//C/3}" "$dir/samples.csv") \
| $end_fds | $reqs | $load_rc | $exit_code |" >>"$OUT/summary.rows"
  if ((end_fds > base_fds)); then
    echo "$model: $end_fds descriptors after the load, $base_fds before" >&2
    return 1
  fi
}

{
  echo "# Soak run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Command: \`DURATION=${DURATION:-10m} SAMPLE=$SAMPLE MODELS=\"$MODELS\" WORKERS=$WORKERS scripts/soak.sh\`"
  echo
  echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(rustc --version 2>/dev/null)"
  echo "- kernel $(uname -r), $(nproc) CPUs, server on CPUs $SERVER_CPUS, load on CPUs $LOAD_CPUS"
  echo "- load per model for ${DURATION_S} s (open loop): GET / 8 conns 1500/s; GET /json 4 conns x4 pipelined 1000/s;"
  echo "  POST /echo 4 KiB 4 conns 300/s; GET /sleep/50 32 conns 200/s; GET /static/big.bin (1 MiB) 2 conns 20/s;"
  echo "  GET /json with a new connection per request 4 conns 200/s"
  echo "- samples every ${SAMPLE} s: VmRSS, open descriptors of the server, open connections (/stats): <model>/samples.csv"
} >"$OUT/README.md"
: >"$OUT/summary.rows"
status=0
AVAILABLE=$("$BIN" models 2>&1 || true)
for m in $MODELS; do
  if ! grep -q "^$m  *available" <<<"$AVAILABLE"; then
    echo "== $m is not available here, skipped: $(grep "^$m" <<<"$AVAILABLE" || echo unknown model)"
    echo "| $m | skipped: not available on this machine |||||||||" >>"$OUT/summary.rows"
    continue
  fi
  echo "== soak $m for ${DURATION_S} s"
  rc=0
  soak_one "$m" || rc=$?
  ((rc > status)) && status=$rc
done
{
  echo "# Soak summary"
  echo
  echo "| model | RSS before (KiB) | RSS max under load | RSS after | fds before | fds max | fds after | answered | failed | load errors | exit code |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$OUT/summary.rows"
} >"$OUT/summary.md"
rm -f "$OUT/summary.rows"
cat "$OUT/summary.md"
exit "$status"
