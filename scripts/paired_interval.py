"""The median of per-round ratios with its exact 95 % order-statistic interval
(the sign test's), as `bench compare`'s answer computes it
(loadgen/src/compare/paired.rs, `median_interval`): between the k-th smallest
and the k-th largest ratio, for the largest k whose coverage
1 - 2·P(Binomial(n, ½) ≤ k - 1) is still at least 95 %. It needs 6 rounds
(2·½⁶ = 3.1 % ≤ 5 %); with fewer, every figure is NaN. Shared by the scripts
that pair figures by hand (cpu-per-mb-paired.py, proxy-paired.py,
proxy-half-load.sh).
"""
from math import comb

MIN_ROUNDS = 6


def interval(ratios):
    """(median, lo, hi) of `ratios`."""
    rs = sorted(ratios)
    n = len(rs)
    if n < MIN_ROUNDS:
        return float("nan"), float("nan"), float("nan")
    k = 1
    while k < n // 2 and 1 - 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n >= 0.95:
        k += 1
    md = rs[n // 2] if n % 2 else (rs[n // 2 - 1] + rs[n // 2]) / 2
    return md, rs[k - 1], rs[n - k]
