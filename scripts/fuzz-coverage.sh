#!/usr/bin/env bash
# The request parser under libFuzzer, coverage-guided (fuzz/fuzz_targets/parser.rs:
# no panic, the same verdict however the input is split, and a head accepted is one
# httparse accepts with the same length and target). Complements the property
# tests of scripts/fuzz-parser.sh: those know the grammar; this one follows
# coverage into what they do not generate.
#
# Built on the stable toolchain the way cargo-fuzz builds (SanitizerCoverage passes
# through -C flags, libFuzzer from libfuzzer-sys, which needs a C++ compiler); no
# address sanitizer, which needs nightly (the parser is safe Rust: a panic, an
# overflow or a failed assertion is what there is to find).
#
#   scripts/fuzz-coverage.sh                 # 10 minutes
#   SECONDS_LIMIT=60 scripts/fuzz-coverage.sh
#
# Environment: SECONDS_LIMIT (default 600), OUT (default
# results/<UTC date>-fuzz-coverage). The corpus grows in target/fuzz-corpus (kept
# between runs); a crashing input lands in OUT/ and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_LIMIT=${SECONDS_LIMIT:-600}
OUT=${OUT:-results/$(date -u +%F)-fuzz-coverage}
CORPUS=target/fuzz-corpus
mkdir -p "$OUT" "$CORPUS"
target=$(rustc -vV | sed -n 's/^host: //p')

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=$PWD/target/fuzz
cargo build --release --manifest-path fuzz/Cargo.toml --target "$target" --bin parser
bin=$CARGO_TARGET_DIR/$target/release/parser

start=$(date +%s)
status=0
"$bin" -max_total_time="$SECONDS_LIMIT" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$OUT/" "$CORPUS" >"$OUT/run.log" 2>&1 || status=$?
secs=$(($(date +%s) - start))
outcome=$([ $status = 0 ] && echo "no failure found" || echo "FAILED (see run.log and the crash- file)")
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/run.log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$OUT/run.log" | tail -1)

cat >"$OUT/README.md" <<README
# Parser under libFuzzer, coverage-guided

- Outcome: **$outcome**: ${execs:-?} inputs in ${secs} s, final ${cov:-cov: ?} (edges), corpus $(ls "$CORPUS" | wc -l) inputs.
- Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src fuzz || echo ' (with uncommitted changes)'), $(date -u '+%F %T') UTC on $(uname -n) ($(nproc) CPUs).
- Toolchain: $(rustc --version); libfuzzer-sys $(grep -A1 '^name = "libfuzzer-sys"' fuzz/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'), httparse $(grep -A1 '^name = "httparse"' fuzz/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p').
- Command: \`SECONDS_LIMIT=$SECONDS_LIMIT scripts/fuzz-coverage.sh\` (SanitizerCoverage, no ASan, debug assertions and overflow checks on).

The target: fuzz/fuzz_targets/parser.rs (the head scanner and the chunked decoder,
whole and split at a point the first byte picks, against httparse).

\`\`\`
$(grep -E '^(#[0-9]+ *DONE|stat::|Done)' "$OUT/run.log" | tail -12)
\`\`\`
README
cat "$OUT/README.md"
exit $status
