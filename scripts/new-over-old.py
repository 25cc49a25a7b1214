#!/usr/bin/env python3
"""From scripts/cpu-per-request.sh output with OLD_BIN rows: per row and mode, the
new build's CPU per request over the old one's, paired within each repeat (the
i-th run of a row with the i-th run of its old- row): median [min-max] and each
repeat's ratio.

    scripts/new-over-old.py cpu-per-request.txt
"""
import sys,re,collections
occ=collections.defaultdict(list)
for line in open(sys.argv[1]):
    m=re.match(r'^(\S+)\s+(plain|pipe16|close)\s+\d+ req/s\s+([\d.]+) us/req',line)
    if m: occ[(m.group(1),m.group(2))].append(float(m.group(3)))
for (row,mode),v in sorted(occ.items()):
    if row.startswith('old-') or row in('raw','c'): continue
    old=occ.get(('old-'+row,mode))
    if not old: continue
    r=sorted(a/b for a,b in zip(v,old))
    md=r[len(r)//2] if len(r)%2 else (r[len(r)//2-1]+r[len(r)//2])/2
    print(f"{row:10s} {mode:7s} new/old {md:.3f} [{r[0]:.3f}-{r[-1]:.3f}]  per repeat: {' '.join(f'{x:.3f}' for x in (a/b for a,b in zip(v,old)))}")
