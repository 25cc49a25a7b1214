#!/usr/bin/env python3
"""Server CPU per proxied request of a `bench compare` run's `proxy` scenario,
each server over a reference, paired within each round: the median ratio with
its exact 95 % order-statistic interval (the sign test's, as the comparison's
answer uses).

    scripts/proxy-paired.py results/<run>/raw.json nginx
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired_interval import interval  # noqa: E402

raw = json.load(open(sys.argv[1]))
ref = sys.argv[2] if len(sys.argv) > 2 else "nginx"
cpu = collections.defaultdict(dict)
for r in raw["runs"]:
    if r["scenario"] != "proxy" or not r["report"] or r["repeat"] == 0 or r.get("error"):
        continue
    x = r["report"]
    s = x["checks"].get("server")
    ok = x["result"]["successes"]
    if s and ok:
        cpu[r["model"]][r["repeat"]] = s["cpu_s"] * 1e6 / ok


for m in cpu:
    if m == ref:
        continue
    rs = [cpu[m][k] / cpu[ref][k] for k in cpu[m] if k in cpu[ref]]
    md, lo, hi = interval(rs)
    per = " ".join(f"{x:.2f}" for x in rs)
    print(f"{m:9s} ÷ {ref}: {md:.2f} [{lo:.2f}-{hi:.2f}] over {len(rs)} rounds ({per})")
