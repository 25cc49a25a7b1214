#!/usr/bin/env bash
# Issue 10's result run: what work stealing and CPU slices buy and what they cost,
# for the rows callback, tokio, tokio+multi, green, green+steal.
#
#   scripts/sched-slices.sh              # the measurement (quiet machine)
#   QUICK=1 scripts/sched-slices.sh      # smoke run: checks every command in seconds
#
# 1. The CPU-skew scenario (`bench compare --scenarios skew`: 2 workers; 2
#    connections send GET /work/$WORK_US closed loop, 32 send GET / at 1000 req/s
#    open loop) once with `--work-slice 500us` and once with `--work-slice 0`,
#    into $OUT/sched-slice-500us/<date>-<host>/ and $OUT/sched-slice-0/<date>-<host>/
#    (README, raw.json with the serve flags, summary.md with the light p99 and the
#    heavy req/s per row, skew.svg).
# 2. The plain and pipelined x16 cost of each row (server CPU us per request,
#    `scripts/cpu-per-request.sh`, one worker on CPU 0), into
#    $OUT/sched-cpu-per-request.txt.
#
# Rows a build lacks (green+steal before it lands) are listed as unavailable by
# bench compare and left out of step 2. Env: MODELS (comma-separated), WORK_US
# (20000), REPEAT (5), DURATION (5s), SERVER_CPUS / LOAD_CPUS (0,1 / 2,3 on 4 or
# more CPUs, else 0 / 1: then both skew workers share CPU 0 and stealing has no
# second core to use), CPR_REPEATS (5), CPR_SECONDS (5), OUT (results).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-callback,tokio,tokio+multi,green,green+steal}
WORK_US=${WORK_US:-20000}
OUT=${OUT:-results}
if (($(nproc) >= 4)); then
  SERVER_CPUS=${SERVER_CPUS:-0,1} LOAD_CPUS=${LOAD_CPUS:-2,3}
else
  SERVER_CPUS=${SERVER_CPUS:-0} LOAD_CPUS=${LOAD_CPUS:-1}
fi
if [[ ${QUICK:-0} == 1 ]]; then
  TIMING=(--quick --duration 1s --warmup 200ms)
  CPR_REPEATS=1 CPR_SECONDS=1
else
  TIMING=(--repeat "${REPEAT:-5}" --duration "${DURATION:-5s}" --warmup 1s)
  CPR_REPEATS=${CPR_REPEATS:-5} CPR_SECONDS=${CPR_SECONDS:-5}
fi
cargo build --release -q --bin gvhttpd
BIN=target/release/gvhttpd

for slice in 500us 0; do
  "$BIN" bench compare --models "$MODELS" --scenarios skew "${TIMING[@]}" \
    --server-cpus "$SERVER_CPUS" --load-cpus "$LOAD_CPUS" --skew-work-us "$WORK_US" \
    --serve-arg=--work-slice="$slice" --out "$OUT/sched-slice-$slice"
done

# Step 2 runs the rows this build has (`gvhttpd models` lists them).
have=$("$BIN" models || true) # exits 1 when some row is unavailable
available=()
for m in ${MODELS//,/ }; do
  if awk -v m="$m" '$1 == m && $2 == "available" {f = 1} END {exit !f}' <<<"$have"; then
    available+=("$m")
  else
    echo "sched-slices: $m is not available in this build: left out of the CPU cost" >&2
  fi
done
MODELS="${available[*]}" MODES="plain pipe16" \
  scripts/cpu-per-request.sh "$CPR_REPEATS" "$CPR_SECONDS" | tee "$OUT/sched-cpu-per-request.txt"
