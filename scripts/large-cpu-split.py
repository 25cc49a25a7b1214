#!/usr/bin/env python3
"""Where the CPU per MB of a `bench compare` run's `large` scenario went: per file
and server, the medians over rounds of the server's CPU µs per MB, the load
generator's, their sum, and MB/s. A server that looks cheaper only because the
generator's CPU paid for the transfer (on loopback the receiver's processing is
charged to whichever side pushed the bytes) shows the same total.

    scripts/large-cpu-split.py results/<run>/raw.json
"""
import collections
import json
import statistics
import sys

raw = json.load(open(sys.argv[1]))
runs = collections.defaultdict(list)
for r in raw['runs']:
    if r['scenario'] != 'large' or not r['report'] or r['repeat'] == 0:
        continue
    x = r['report']
    c = x['checks']
    s = c.get('server')
    if not s:
        continue
    mb = x['result']['counts']['bytes_read'] / 1e6
    runs[(r['point']['label'], r['model'])].append(
        (s['cpu_s'] * 1e6 / mb, c['generator_cpu_s'] * 1e6 / mb, mb / x['result']['elapsed_s']))
print('file   server    server  gen  total (CPU µs/MB)  MB/s')
for (f, m), v in sorted(runs.items()):
    med = lambda i: statistics.median(t[i] for t in v)
    tot = statistics.median(t[0] + t[1] for t in v)
    print(f'{f:6s} {m:9s} {med(0):5.0f} {med(1):5.0f} {tot:5.0f}              {med(2):6.0f}')
