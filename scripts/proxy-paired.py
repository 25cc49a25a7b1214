#!/usr/bin/env python3
"""Server CPU per proxied request of a `bench compare` run's `proxy` scenario,
each server over a reference, paired within each round: the median ratio with
its exact 95 % order-statistic interval (the sign test's, as the comparison's
answer uses).

    scripts/proxy-paired.py results/<run>/raw.json nginx
"""
import collections
import json
import sys
from math import comb

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


def interval(rs):
    rs = sorted(rs)
    n = len(rs)
    k = 1
    while k < n // 2 and 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n >= 0.95:
        k += 1
    md = rs[n // 2] if n % 2 else (rs[n // 2 - 1] + rs[n // 2]) / 2
    return md, rs[k - 1], rs[n - k]


for m in cpu:
    if m == ref:
        continue
    rs = [cpu[m][k] / cpu[ref][k] for k in cpu[m] if k in cpu[ref]]
    md, lo, hi = interval(rs)
    per = " ".join(f"{x:.2f}" for x in rs)
    print(f"{m:9s} ÷ {ref}: {md:.2f} [{lo:.2f}-{hi:.2f}] over {len(rs)} rounds ({per})")
