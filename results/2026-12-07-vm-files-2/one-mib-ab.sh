#!/bin/bash
# usage: ab.sh name port file -- server command...   prints server CPU us/MB and MB/s
name=$1 port=$2 file=$3; shift 4
taskset -c 0 "$@" >/dev/null 2>&1 & SP=$!
sleep 0.7
t() { awk '{print $14+$15}' /proc/$SP/stat; }
taskset -c 1 wrk -t1 -c16 -d1s http://127.0.0.1:$port/static/$file >/dev/null 2>&1
c0=$(t); out=$(taskset -c 1 wrk -t1 -c16 -d4s http://127.0.0.1:$port/static/$file); c1=$(t)
kill $SP; wait $SP 2>/dev/null
bytes=$(echo "$out" | awk '/Transfer\/sec/{v=$2; if (v ~ /GB/) m=1e9; else if (v ~ /MB/) m=1e6; sub(/[A-Z]+/,"",v); print v*m*4}')
tck=$(getconf CLK_TCK)
python3 -c "c=($c1-$c0)/$tck; b=$bytes; print(f'$name $file: {c*1e6/(b/1e6):.0f} us/MB, {b/4e6:.0f} MB/s, cpu {c:.2f}s')"
