#!/usr/bin/env bash
# The load generator's own CPU per request, an old build against this one, plain
# and pipelined, interleaved against one pinned server.
#
#   OLD_BIN=/path/to/old/gvhttpd scripts/gen-ab.sh [ROUNDS=5] [DURATION=3s]
#
# Server: `gvhttpd serve --model $MODEL --workers 1` (default callback) on CPU 0;
# each generator on CPU 1 with one thread and -c64. Per run: req/s and the
# generator's CPU µs per request, as `gvhttpd bench` reports them (its own
# threads' CPU time); then, per round, new ÷ old of the CPU per request.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DURATION=${2:-3s}
MODEL=${MODEL:-callback}
: "${OLD_BIN:?set OLD_BIN to the old gvhttpd binary}"
NEW_BIN=${NEW_BIN:-target/release/gvhttpd}
PORT=${PORT:-18191}
echo "# scripts/gen-ab.sh $ROUNDS $DURATION: old $OLD_BIN, new $NEW_BIN ($(git rev-parse --short HEAD)), server $MODEL, $(date -u +%FT%TZ), kernel $(uname -r)"
taskset -c 0 "$NEW_BIN" serve --model "$MODEL" --workers 1 --addr "127.0.0.1:$PORT" >/dev/null 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
sleep 1
for shape in plain pipelined; do
    pipeline=1
    [[ $shape == pipelined ]] && pipeline=16
    for r in $(seq "$ROUNDS"); do
        line="$shape round $r"
        for v in old new; do
            bin=$OLD_BIN
            [[ $v == new ]] && bin=$NEW_BIN
            out=$(taskset -c 1 "$bin" bench -c64 -t1 -d"$DURATION" --warmup 300ms \
                --pipeline "$pipeline" -q "http://127.0.0.1:$PORT/" 2>&1)
            rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
            us=$(sed -n 's|^Generator CPU:.* \([0-9.]*\)us/request.*|\1|p' <<<"$out")
            line+=" | $v ${rps%.*} req/s ${us} us/req"
            eval "us_$v=$us"
        done
        echo "$line | new/old $(awk -v a="$us_new" -v b="$us_old" 'BEGIN {printf "%.2f", a / b}')"
    done
done
