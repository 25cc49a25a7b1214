#!/usr/bin/env bash
# gvhttpd bench vs wrk against the same pinned server, interleaved.
#
#   scripts/vs-wrk.sh                  # -c64, 10 s per run, 3 rounds
#   DURATION=5 ROUNDS=5 scripts/vs-wrk.sh
#
# Server: `taskset -c $SERVER_CPU gvhttpd serve --model $MODEL --workers 1`.
# Load: both tools pinned to $LOAD_CPU with one thread and $CONNS connections.
# Per run it records the tool's req/s (its own report), the tool's CPU time
# (bash `time`, user+sys, the same way for both tools) and the server's CPU time
# (/proc/PID/stat utime+stime), each divided by the requests the tool counted.
# Prints medians and the ratios gvhttpd/wrk. Target: req/s ratio >= 1 with no
# more CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-tokio}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
URL_PATH=${URL_PATH:-/}

if ! command -v wrk >/dev/null; then
    echo "vs-wrk: installing wrk with apt" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --release --quiet
BIN=target/release/gvhttpd
TMP=$(mktemp -d)
taskset -c "$SERVER_CPU" "$BIN" serve --model "$MODEL" --workers 1 --addr 127.0.0.1:0 >"$TMP/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$TMP/server.log" && break
    sleep 0.05
done
ADDR=$(sed -n 's/^gvhttpd: listening on http:\/\/\([^ ]*\).*/\1/p' "$TMP/server.log")
[ -n "$ADDR" ] || { echo "vs-wrk: server did not start:" >&2; cat "$TMP/server.log" >&2; exit 1; }
URL="http://$ADDR$URL_PATH"
CLK=$(getconf CLK_TCK)
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

echo "server: $MODEL, 1 worker, CPU $SERVER_CPU, $URL; load: CPU $LOAD_CPU, -c$CONNS, ${DURATION}s x $ROUNDS rounds"
echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews both tools)"
printf '%-8s %5s %12s %14s %16s\n' tool round req/s "tool us/req" "server us/req"

# run TOOL ROUND: one measured run; appends "tool rps tool_us server_us" to $TMP/rows.
run() {
    local tool=$1 round=$2 s0 s1 out
    s0=$(server_ticks)
    if [ "$tool" = wrk ]; then
        { TIMEFORMAT='%U %S'; time taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL" >"$TMP/out"; } 2>"$TMP/time"
    else
        { TIMEFORMAT='%U %S'; time "$BIN" bench --url "$URL" -c"$CONNS" -t1 --cpus "$LOAD_CPU" -d"${DURATION}s" -q >"$TMP/out"; } 2>"$TMP/time"
    fi
    s1=$(server_ticks)
    # Both tools print "N requests in Xs" and "Requests/sec: R".
    local reqs rps cpu
    reqs=$(awk '/requests in/ {print $1; exit}' "$TMP/out")
    rps=$(awk '/^Requests\/sec:/ {print $2; exit}' "$TMP/out")
    cpu=$(tail -1 "$TMP/time" | awk '{print $1 + $2}')
    awk -v t="$tool" -v r="$round" -v rps="$rps" -v n="$reqs" -v cpu="$cpu" -v ds="$((s1 - s0))" -v clk="$CLK" \
        'BEGIN { tu = cpu * 1e6 / n; su = ds / clk * 1e6 / n;
                 printf "%-8s %5d %12.0f %14.2f %16.2f\n", t, r, rps, tu, su;
                 printf "%s %f %f %f\n", t, rps, tu, su >> "'"$TMP/rows"'" }'
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="wrk gvhttpd"; else order="gvhttpd wrk"; fi
    for tool in $order; do run "$tool" "$round"; done
done

median() { sort -g | awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v t="$1" -v c="$2" '$1 == t {print $c}' "$TMP/rows" | median; }
W_RPS=$(col wrk 2); G_RPS=$(col gvhttpd 2)
W_CPU=$(col wrk 3); G_CPU=$(col gvhttpd 3)
W_SRV=$(col wrk 4); G_SRV=$(col gvhttpd 4)
echo "medians:"
printf '%-8s %18.0f %14.2f %16.2f\n' wrk "$W_RPS" "$W_CPU" "$W_SRV" gvhttpd "$G_RPS" "$G_CPU" "$G_SRV"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v g="$G_RPS" -v w="$W_RPS" -v gc="$G_CPU" -v wc="$W_CPU" \
    'BEGIN { printf "ratio gvhttpd/wrk: req/s %.3f, tool CPU per request %.3f (lower is better)\n", g / w, gc / wc }'
