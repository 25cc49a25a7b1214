#!/usr/bin/env bash
# Full model comparison into results/<date>-<host>/ (README.md, raw.json,
# summary.md, SVG plots). Every available model is started by `gvhttpd bench
# compare` itself; unavailable ones are listed as such.
#
#   scripts/compare.sh                              # defaults below
#   REPEAT=5 DURATION=5s scripts/compare.sh         # longer runs
#   scripts/compare.sh --models tokio --scenarios plaintext,idle
#
# Defaults: server on CPU 0, load on CPU 1, 3 interleaved repetitions of 3 s
# (+1 s warm-up) per run: about a minute per model on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
# 10,000 idle connections need that many descriptors in the generator and the
# server (which inherits the limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec target/release/gvhttpd bench compare \
    --server-cpus "${SERVER_CPUS:-0}" --load-cpus "${LOAD_CPUS:-1}" \
    --repeat "${REPEAT:-3}" --duration "${DURATION:-3s}" --warmup "${WARMUP:-1s}" \
    --out results "$@"
