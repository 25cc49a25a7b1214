#!/usr/bin/env bash
# p99 latency of proxied GETs at half load, every proxy at the same open-loop
# rate, paired within interleaved rounds against nginx (issue 23's "p99 at half
# load no worse than nginx's"). The `proxy` scenario of `bench compare` gives
# CPU per proxied request at full (closed-loop) load; this gives latency at an
# equal, moderate load.
#
#   scripts/proxy-half-load.sh [ROUNDS] [OUT_DIR]
#   RATE=20000 scripts/proxy-half-load.sh 9      # a given rate instead of half the slowest
#   MODELS="callback tokio green" DUR=5s CONNS=64 SERVER_CPU=0 LOAD_CPU=1
#
# One backend (`gvhttpd serve --model tokio --workers 1`) on the load CPU, as
# in `bench compare`'s proxy scenario; each proxy alone on SERVER_CPU with one
# worker/process; the load (`gvhttpd bench -R RATE -cCONNS`, latency corrected
# for coordinated omission) on LOAD_CPU. Without RATE, round 0 measures every
# proxy's closed-loop maximum and the rate is half the slowest one. The order of
# the proxies rotates every round. Peers: nginx (proxy_pass, upstream
# keepalive) and HAProxy (http-reuse always), as scripts/compare.sh starts them.
# Only PIDs started here are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
OUT=${2:-$(mktemp -d /tmp/proxy-half.XXXX)}
MODELS=${MODELS:-"callback tokio green"}
DUR=${DUR:-5s}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=${BIN:-target/release/gvhttpd}
BACKEND_PORT=18780
PORT=18781
mkdir -p "$OUT"
ROOT=$(mktemp -d /tmp/proxy-half-root.XXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$ROOT"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# The backend shares the load CPU with the generator. Under the normal
# scheduler the two take turns in slices of milliseconds, and that wait, not
# the proxy, set the p99 (1-9 ms from round to round in the first run). As a
# real-time task (BACKEND_RT=1, the default; needs root or CAP_SYS_NICE) the
# backend answers as soon as a request reaches it: its few microseconds per
# request delay the generator a little, in every round alike.
backend=("$BIN" serve --model tokio --workers 1 --addr "127.0.0.1:$BACKEND_PORT")
if [[ "${BACKEND_RT:-1}" == 1 ]]; then
    chrt -f 1 true 2>/dev/null || { echo "BACKEND_RT=1 needs chrt -f (root or CAP_SYS_NICE); BACKEND_RT=0 to run without" >&2; exit 2; }
    backend=(chrt -f 1 "${backend[@]}")
fi
taskset -c "$LOAD_CPU" "${backend[@]}" >"$OUT/backend.log" 2>&1 &
pids+=($!)
wait_port "$BACKEND_PORT"

servers=()
for m in $MODELS; do servers+=("$m"); done
command -v nginx >/dev/null && servers+=(nginx)
command -v haproxy >/dev/null && servers+=(haproxy)

# Starts proxy $1 on $PORT; echoes its PID.
start() {
    local cmd
    case $1 in
        nginx) cmd=(scripts/compare.sh --nginx-peer "$PORT" "$ROOT" "127.0.0.1:$BACKEND_PORT") ;;
        haproxy) cmd=(scripts/compare.sh --haproxy-peer "$PORT" "$ROOT" "127.0.0.1:$BACKEND_PORT") ;;
        *) cmd=("$BIN" serve --model "$1" --workers 1 --addr "127.0.0.1:$PORT"
            --upstream "127.0.0.1:$BACKEND_PORT") ;;
    esac
    taskset -c "$SERVER_CPU" "${cmd[@]}" >>"$OUT/$1.log" 2>&1 &
    echo $!
}

# One run of proxy $1: the load with extra args ${@:3}, its report in $2.
run() {
    local name=$1 json=$2
    shift 2
    local pid
    pid=$(start "$name")
    pids+=("$pid")
    wait_port "$PORT"
    taskset -c "$LOAD_CPU" "$BIN" bench -q -c "$CONNS" -d "$DUR" --warmup 1s \
        --server-pid "$pid" --json "$json" "$@" "http://127.0.0.1:$PORT/proxy/" >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    # The port must be free before the next proxy binds it.
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
        sleep 0.05
    done
}

if [[ -z "${RATE:-}" ]]; then
    for s in "${servers[@]}"; do run "$s" "$OUT/max-$s.json"; done
    RATE=$(python3 - "$OUT" "${servers[@]}" <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
m = min(json.load(open(f"{out}/max-{n}.json"))["result"]["req_per_s"] for n in names)
print(int(m / 2 / 10) * 10)
PY
)
fi
echo "rate: $RATE req/s for every proxy, -c$CONNS, $DUR per run" | tee "$OUT/rate.txt"

n=${#servers[@]}
for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        s=${servers[$(((i + r) % n))]}
        run "$s" "$OUT/r$r-$s.json" -R "$RATE"
    done
done

python3 - "$OUT" "$ROUNDS" "${servers[@]}" <<'PY' | tee "$OUT/summary.txt"
import json, sys
from math import comb
out, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def interval(rs):
    rs = sorted(rs); n = len(rs)
    k = 1
    while k < n // 2 and 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n >= 0.95:
        k += 1
    md = rs[n // 2] if n % 2 else (rs[n // 2 - 1] + rs[n // 2]) / 2
    return md, rs[k - 1], rs[n - k]
p99, fails, cpu = {}, {}, {}
for s in names:
    for r in range(1, rounds + 1):
        x = json.load(open(f"{out}/r{r}-{s}.json"))
        res = x["result"]
        p99[s, r] = res["latency"]["p99_us"]
        fails[s] = fails.get(s, 0) + res["requests"] - res["successes"]
        srv = x["checks"].get("server") or {}
        if srv.get("cpu_s") and res["successes"]:
            cpu[s, r] = srv["cpu_s"] * 1e6 / res["successes"]
print(f"{'proxy':10s} {'p99 µs per round':40s} failed")
for s in names:
    print(f"{s:10s} {' '.join(str(p99[s, r]) for r in range(1, rounds + 1)):40s} {fails[s]}")
if "nginx" in names:
    print(f"\np99 at the same offered rate, over nginx's in the same round (median [95 % interval], {rounds} rounds):")
    for s in names:
        if s == "nginx":
            continue
        md, lo, hi = interval([p99[s, r] / p99["nginx", r] for r in range(1, rounds + 1)])
        line = f"  {s:9s} p99 {md:.2f} [{lo:.2f}-{hi:.2f}]"
        rs = [cpu[s, r] / cpu["nginx", r] for r in range(1, rounds + 1) if (s, r) in cpu and ("nginx", r) in cpu]
        if len(rs) == rounds:
            md, lo, hi = interval(rs)
            line += f"   server CPU/req {md:.2f} [{lo:.2f}-{hi:.2f}]"
        print(line)
PY
# Every round's histogram of one proxy merged (exact): a per-round p99 swings
# with how many of the machine's millisecond stalls fell into that run, the
# pooled one less.
echo
echo "pooled over the $ROUNDS rounds (bench merge of each proxy's reports):" | tee -a "$OUT/summary.txt"
for s in "${servers[@]}"; do
    files=()
    for r in $(seq 1 "$ROUNDS"); do files+=("$OUT/r$r-$s.json"); done
    line=$("$BIN" bench merge "${files[@]}" 2>/dev/null |
        awk '$1 ~ /^(50|90|99|99\.9)%$/ {printf " p%s %s", substr($1, 1, length($1) - 1), $2}')
    printf '  %-9s%s\n' "$s" "$line" | tee -a "$OUT/summary.txt"
done
echo "reports in $OUT"
