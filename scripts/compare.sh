#!/usr/bin/env bash
# Full model comparison into results/<date>-<host>/ (README.md, raw.json,
# summary.md with the answer per scenario, SVG plots). Every available model is
# started by `gvhttpd bench compare` itself; unavailable ones are listed as such.
#
#   scripts/compare.sh                              # defaults: the whole matrix
#   scripts/compare.sh --quick                      # smoke run, about 15 s per server
#   REPEAT=5 DURATION=5s scripts/compare.sh         # longer runs (env: REPEAT, DURATION,
#                                                   # WARMUP, SERVER_CPUS, LOAD_CPUS, OUT)
#   scripts/compare.sh --models tokio --scenarios sweep,skew
#   scripts/compare.sh --peer ref='target/release/gvhttpd serve --model tokio --addr 127.0.0.1:{port} --workers {workers} --root {root}'
#
# Defaults (of `bench compare`): server on CPU 0, load on CPU 1, 3 interleaved
# repetitions of 3 s (+1 s warm-up) per run: about 4 minutes per server on a
# 2-core machine, about 12 for the three models. Scenarios: plaintext,
# pipelined, json, sleep, idle, sweep, churn, skew, busy, large.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
# 10,000 idle (and 10,000 busy) connections need that many descriptors in the
# generator and the server (which inherits the limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
args=(--server-cpus "${SERVER_CPUS:-0}" --load-cpus "${LOAD_CPUS:-1}" --out "${OUT:-results}")
# Only what the environment sets, so that --quick keeps its own defaults.
[[ -n "${REPEAT:-}" ]] && args+=(--repeat "$REPEAT")
[[ -n "${DURATION:-}" ]] && args+=(--duration "$DURATION")
[[ -n "${WARMUP:-}" ]] && args+=(--warmup "$WARMUP")
exec target/release/gvhttpd bench compare "${args[@]}" "$@"
