#!/usr/bin/env python3
"""Server CPU per MB of the `large` scenario, one server over another, paired
within each round of a `bench compare` run: the median ratio with its exact 95 %
order-statistic interval (the sign test's, as the comparison's answer uses).

    scripts/cpu-per-mb-paired.py results/<run>/raw.json tokio/nginx callback/old-callback ...

With MBS=1 in the environment: MB/s instead (the generator's bytes read per
second of the run), paired the same way.
"""
import json,os,sys,collections
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired_interval import interval
mbs=os.environ.get('MBS')=='1'
raw=json.load(open(sys.argv[1]))
pairs=[a.split('/') for a in sys.argv[2:]]
v=collections.defaultdict(dict)
for r in raw['runs']:
    if r['scenario']!='large' or not r['report'] or r['repeat']==0: continue
    x=r['report']; s=x['checks'].get('server')
    if not s: continue
    mb=x['result']['counts']['bytes_read']/1e6
    v[(r['model'],r['point']['label'])][r['repeat']]=mb/x['result']['elapsed_s'] if mbs else s['cpu_s']*1e6/mb
for a,b in pairs:
    for f in ['64KiB','1MiB','mix']:
        A,B=v[(a,f)],v[(b,f)]
        rs=[A[k]/B[k] for k in A if k in B]
        md,lo,hi=interval(rs)
        print(f"{f:6s} {'MB/s' if mbs else 'CPU/MB'} {a} / {b}: {md:.2f} [{lo:.2f}-{hi:.2f}] over {len(rs)} rounds")
