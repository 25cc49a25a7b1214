#!/usr/bin/env bash
# Instructions per request of the sans-IO core (benches/core.rs), counted by
# callgrind: repeatable whatever else the machine is doing, unlike timings.
#
#   scripts/core-instructions.sh [CASE...]   (default: every case)
#
# Each case runs twice, with 2,000 and 12,000 iterations; the difference of the
# two totals divided by the difference in requests is the cost of one request
# (start-up, warm-up and the harness's fixed costs cancel out).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 2; }
cargo bench --bench core --no-run -q 2>/dev/null
BIN=$(ls -t target/release/deps/core-* | grep -v '\.d$' | head -1)
CASES=${*:-plaintext-get pipelined-16 browser-get}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
irs() { # case iters -> total Ir
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" "$BIN" --case "$1" --iters "$2" >/dev/null 2>"$TMP/err"
  awk '/^summary:/{print $2}' "$TMP/cg"
}
for c in $CASES; do
  per=1; [[ $c == pipelined-16 ]] && per=16
  a=$(irs "$c" 2000); b=$(irs "$c" 12000)
  # pipelined-16 runs iters/16 batches of 16 requests: requests = iters/16*16.
  awk -v c="$c" -v a="$a" -v b="$b" -v per="$per" 'BEGIN {
    reqs = (int(12000 / per) - int(2000 / per)) * per
    printf "core/%s: %.0f instructions/request\n", c, (b - a) / reqs }'
done
