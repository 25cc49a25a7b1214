#!/usr/bin/env bash
# The request parser against httparse, long: the property tests of
# tests/parser_props.rs (request heads and chunked bodies, generated and mutated,
# whole and split into random reads) with CASES cases per property, in a release
# build. The normal suite runs 1000 per property; this runs tens of millions.
# Results go to OUT: run.log (the test output) and README.md (commit, toolchain,
# cases, wall time, outcome).
#
#   scripts/fuzz-parser.sh                  # 10 million cases per property (40 M in all)
#   CASES=100000 scripts/fuzz-parser.sh     # a quick check
#
# Environment: CASES (per property, default 10000000), THREADS (properties run
# at once, default 2), OUT (default results/<UTC date>-fuzz-parser).
# A failure prints proptest's minimal failing input; the script then exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=${CASES:-10000000}
THREADS=${THREADS:-2}
OUT=${OUT:-results/$(date -u +%F)-fuzz-parser}
mkdir -p "$OUT"
# Optimized, without the release profile's fat LTO (it lengthens the build, not
# what a property test measures).
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo test --release -p gvhttpd --test parser_props --no-run

start=$(date +%s)
status=0
PROPTEST_CASES=$CASES cargo test --release -p gvhttpd --test parser_props -- \
  --test-threads="$THREADS" >"$OUT/run.log" 2>&1 || status=$?
secs=$(($(date +%s) - start))
outcome=$([ $status = 0 ] && echo "all properties held" || echo "FAILED (see run.log)")

cat >"$OUT/README.md" <<README
# Parser property tests, long run

- Outcome: **$outcome**, $CASES cases per property, $(grep -c '^test .* ok$' "$OUT/run.log" || true) properties passed, ${secs} s wall.
- Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests || echo ' (with uncommitted changes)'), $(date -u '+%F %T') UTC on $(uname -n) ($(nproc) CPUs).
- Toolchain: $(rustc --version); httparse $(grep -A1 '^name = "httparse"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'), proptest $(grep -A1 '^name = "proptest"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p').
- Command: \`CASES=$CASES THREADS=$THREADS scripts/fuzz-parser.sh\` (release, LTO off).

The properties (tests/parser_props.rs): request heads and chunked bodies, generated
(valid and near-valid: case, whitespace, separators, limits, obs-fold, bare CR/LF,
duplicate and conflicting framing headers, chunk sizes and extensions, trailers)
and mutated (bytes inserted, deleted, replaced, lines repeated, truncation), fed
whole and split into random reads; gvhttpd's verdict and fields against httparse's,
with the intentional differences of docs/http-behaviour.md.

\`\`\`
$(grep -E '^(test |running|test result)' "$OUT/run.log")
\`\`\`
README
cat "$OUT/README.md"
exit $status
