#!/usr/bin/env bash
# Server CPU time per request of every model beside the floor (the raw tokio +
# httparse responder, examples/raw_tokio.rs), side by side in one run.
#
#   scripts/cpu-per-request.sh [REPEATS=3] [SECONDS=5]
#
# Rows: $MODELS (default "callback tokio green"; any `--model` row name works, e.g.
# MODELS="callback tokio tokio+multi green green+steal"), then "raw" (REF=0 drops it), and
# with OLD_BIN=path/to/an/older/gvhttpd also "old-MODEL" rows from that binary, so a
# change is measured before and after in the same interleaved run (OLD_MODELS="..."
# picks other models for those rows, e.g. the ones an old binary has), and with LOG=1
# "log-MODEL" rows that serve with --access-log (to a file under a temp dir), and with
# C=1 a "c" row: the C epoll responder (examples/c_epoll.c, built with cc -O2), the
# floor of any server on this kernel, with an "x c" column beside "x raw".
#
# Each run: `taskset -c 0 gvhttpd serve --model M --workers 1` (server on CPU 0), then
# `taskset -c 1 wrk -t1 -c64 -dSECONDS` (load on CPU 1) on `/`, plain and pipelined x16
# (scripts/pipeline16.lua). The server's utime+stime come from /proc/PID/stat before
# and after the wrk run (after a 1 s warm-up); CPU us/request = delta / responses.
# MODELS="callback tokio" and MODES="plain pipe16 close" pick what runs (close: every
# request on a new connection, `Connection: close`: the cost of connection churn).
# Models and modes are interleaved (A B A B ...) and medians are reported; the
# ratios to the floors are taken within each repeat. Steal time
# from /proc/stat is printed per run: runs with a few % steal are noisy.
set -euo pipefail
REPEATS=${1:-3}
SECS=${2:-5}
MODELS=${MODELS:-"callback tokio green"}
MODES=${MODES:-"plain pipe16"}
CONNS=${CONNS:-64}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
cargo build --release -q --bin gvhttpd --example raw_tokio
BIN=target/release/gvhttpd
RAW=target/release/examples/raw_tokio
ROWS_LIST="$MODELS"
[[ ${REF:-1} == 1 ]] && ROWS_LIST="$ROWS_LIST raw"
if [[ ${C:-0} == 1 ]]; then
  mkdir -p target
  cc -O2 -o target/c_epoll examples/c_epoll.c
  ROWS_LIST="$ROWS_LIST c"
fi
if [[ -n ${OLD_BIN:-} ]]; then
  for m in ${OLD_MODELS:-$MODELS}; do ROWS_LIST="$ROWS_LIST old-$m"; done
fi
if [[ ${LOG:-0} == 1 ]]; then
  for m in $MODELS; do ROWS_LIST="$ROWS_LIST log-$m"; done
fi
TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ROWS="$TMP/rows"
PAIRS="$TMP/pairs" # "repeat row mode us": for the ratios within each repeat
: >"$ROWS"
: >"$PAIRS"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }

run_one() { # model mode
  local model=$1 mode=$2 script=() port=""
  [[ $mode == pipe16 ]] && script=(-s scripts/pipeline16.lua)
  [[ $mode == close ]] && script=(-H "Connection: close")
  : >"$TMP/server.out"
  case $model in
    raw) taskset -c 0 "$RAW" 127.0.0.1:0 >"$TMP/server.out" 2>"$TMP/server.err" & ;;
    c) taskset -c 0 target/c_epoll 127.0.0.1:0 >"$TMP/server.out" 2>"$TMP/server.err" & ;;
    log-*) taskset -c 0 "$BIN" serve --model "${model#log-}" --workers 1 --addr 127.0.0.1:0 \
      --access-log "$TMP/access.log" >"$TMP/server.out" 2>"$TMP/server.err" & ;;
    old-*) taskset -c 0 "$OLD_BIN" serve --model "${model#old-}" --workers 1 --addr 127.0.0.1:0 \
      >"$TMP/server.out" 2>"$TMP/server.err" & ;;
    *) taskset -c 0 "$BIN" serve --model "$model" --workers 1 --addr 127.0.0.1:0 \
      >"$TMP/server.out" 2>"$TMP/server.err" & ;;
  esac
  local pid=$!
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$TMP/server.out")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "server ($model) did not start: $(cat "$TMP/server.err")" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s "${script[@]}" "http://127.0.0.1:$port/" >/dev/null
  local c0 s0 c1 s1
  c0=$(cpu_ticks $pid); s0=$(steal_ticks)
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "${script[@]}" "http://127.0.0.1:$port/" >"$TMP/wrk.out"
  c1=$(cpu_ticks $pid); s1=$(steal_ticks)
  kill -TERM $pid; wait $pid || true
  local reqs errs
  reqs=$(awk '/requests in/{print $1}' "$TMP/wrk.out")
  errs=$(awk '/Non-2xx|Socket errors/{print}' "$TMP/wrk.out" | tr '\n' ' ')
  awk -v m="$model" -v mode="$mode" -v r="$reqs" -v c=$((c1 - c0)) -v t="$TCK" -v s="$SECS" \
      -v st=$((s1 - s0)) -v e="$errs" 'BEGIN {
    us = c * 1e6 / t / r; printf "%-16s %-7s %10.0f req/s %7.3f us/req  cpu %5.1f%%  steal %d ticks %s\n",
      m, mode, r / s, us, c * 100 / t / s, st, e }' | tee -a "$ROWS"
  echo "$REP $model $mode $(tail -1 "$ROWS" | awk '{print $5}')" >>"$PAIRS"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, wrk -t1 -c$CONNS -d${SECS}s, $REPEATS repeats, models: $MODELS"
for REP in $(seq "$REPEATS"); do
  for mode in $MODES; do
    for model in $ROWS_LIST; do
      run_one "$model" "$mode"
    done
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
# Column $3 of the rows of ($1 row, $2 mode), compared as strings: row names like
# tokio+multi are not regular expressions.
col() { awk -v m="$1" -v mo="$2" -v c="$3" '$1 == m && $2 == mo {print $c}' "$ROWS"; }
# The median over repeats of (row / floor) within each repeat: the two runs of a
# pair are seconds apart, so a machine that drifts between repeats moves both.
# Printed as "median [min-max]", or "-" without that floor.
ratio() { # row mode floor
  awk -v m="$1" -v mo="$2" -v f="$3" '$3 == mo && $2 == m {a[$1] = $4} $3 == mo && $2 == f {b[$1] = $4}
    END {for (r in a) if (b[r] > 0) print a[r] / b[r]}' "$PAIRS" | sort -n |
    awk '{a[NR]=$1} END {if (NR) printf "%.2f [%.2f-%.2f]", a[int((NR+1)/2)], a[1], a[NR]; else print "-"}'
}
echo
echo "# medians over $REPEATS interleaved repeats (server CPU 0, wrk CPU 1)"
echo "# x raw, x c: within each repeat, the row's CPU per request over the floor's; the median [min-max] of those"
printf "%-16s %-7s %12s %12s %18s %18s %18s\n" row mode "req/s" "CPU us/req" "[min-max]" "x raw" "x c"
for mode in $MODES; do
  for model in $ROWS_LIST; do
    rs=$(col "$model" "$mode" 3 | median)
    us=$(col "$model" "$mode" 5 | median)
    mm=$(col "$model" "$mode" 5 | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "[%s-%s]", lo, hi}')
    ratio=$(ratio "$model" "$mode" raw)
    cratio=$(ratio "$model" "$mode" c)
    printf "%-16s %-7s %12s %12s %18s %18s %18s\n" "$model" "$mode" "$rs" "$us" "$mm" "$ratio" "$cratio"
  done
done
