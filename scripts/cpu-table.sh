#!/usr/bin/env bash
# The medians block of a scripts/cpu-per-request.sh output as a Markdown table (the
# README's CPU-per-request table is this, pasted), one row per server with plain
# and pipelined side by side:
#
#   scripts/cpu-table.sh results/<run>/cpu-per-request.txt [MORE.txt ...]
#
# With several files, a (row, mode) in a later file replaces the earlier one (e.g.
# a longer pipelined-only run over a run of every mode); the ratios are each
# file's own, taken within that run.
set -euo pipefail
awk '
  FNR == 1 { on = 0 }
  /^# medians/ { on = 1; next }
  on && /^row / { next }
  on && NF >= 5 && $1 !~ /^#/ {
    key = $1; mode = $2
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    us[key, mode] = $4 " " $5
    xr[key, mode] = $6 " " $7
    xc[key, mode] = ($8 == "-" ? "-" : $8 " " $9)
    modes[mode] = 1
  }
  END {
    printf "| server | `/` -c64 µs/req | × raw | × c | pipelined ×16 µs/req | × raw | × c |\n"
    printf "|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", k,
        ((k, "plain") in us ? us[k, "plain"] : "-"), ((k, "plain") in xr ? xr[k, "plain"] : "-"),
        ((k, "plain") in xc ? xc[k, "plain"] : "-"),
        ((k, "pipe16") in us ? us[k, "pipe16"] : "-"), ((k, "pipe16") in xr ? xr[k, "pipe16"] : "-"),
        ((k, "pipe16") in xc ? xc[k, "pipe16"] : "-")
    }
  }' "$@"
