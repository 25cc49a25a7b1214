#!/usr/bin/env bash
# Issue 11: green with a ring per worker (`green`) against the seed's design, one
# dedicated reactor thread owning the only ring (`green+dedicated`), on plaintext,
# pipelined, sleep and the load-latency sweep, with 1 and 2 workers, then the
# server's CPU time per request.
#
#   scripts/green-reactors.sh            the result run (three interleaved repetitions)
#   QUICK=1 scripts/green-reactors.sh    smoke run (bench compare --quick, 1 x 2 s CPU runs)
#
# Where the threads run: `bench compare --server-cpus` pins the whole server
# process, so the reactor thread shares those CPUs with the workers (the server's
# error log says so: "green reactor thread: ..., CPUs 0"):
#   w1: server on CPU 0 (1 worker + the reactor thread), load on CPU 1;
#   w2: server on CPUs 0,1 (2 workers + the reactor thread), load on CPU 2, or on
#       CPU 1 (sharing it with the server) where the machine has only 2 CPUs.
# cpu-per-request.sh runs `taskset -c 0 gvhttpd serve --workers 1` (worker and
# reactor on CPU 0) and wrk on CPU 1.
#
# Output: results/green-reactors-w1/<date>-<host>/ and ...-w2/... (bench compare's
# summary.md, raw.json, plots), results/green-reactors-cpu/cpu-per-request.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --bin gvhttpd
BIN=target/release/gvhttpd
STAMP=green-reactors
OUT=${OUT:-results}
QUICK_ARGS=()
CPU_RUNS=(3 5)
if [[ ${QUICK:-0} == 1 ]]; then
  QUICK_ARGS=(--quick)
  CPU_RUNS=(1 2)
fi
NCPU=$(nproc)
W2_LOAD=2
[[ $NCPU -lt 3 ]] && W2_LOAD=1

run_compare() { # label server-cpus load-cpus
  local dir="$OUT/$STAMP-$1"
  mkdir -p "$dir"
  "$BIN" bench compare --models green,green+dedicated \
    --scenarios plaintext,pipelined,sleep,sweep \
    --server-cpus "$2" --load-cpus "$3" "${QUICK_ARGS[@]}" --out "$dir"
}

echo "== 1 worker: server (worker + reactor thread) on CPU 0, load on CPU 1"
run_compare w1 0 1
echo "== 2 workers: server (2 workers + reactor thread) on CPUs 0,1, load on CPU $W2_LOAD"
run_compare w2 0,1 "$W2_LOAD"
echo "== CPU per request (server on CPU 0, wrk on CPU 1)"
mkdir -p "$OUT/$STAMP-cpu"
MODELS="green green+dedicated" REF=0 scripts/cpu-per-request.sh "${CPU_RUNS[@]}" |
  tee "$OUT/$STAMP-cpu/cpu-per-request.txt"
