#!/bin/bash
# Server CPU per MB of one 1 MiB file, and where the machine's CPU went.
#   one-mib.sh NAME PORT SERVER-COMMAND...   (the command listens on 127.0.0.1:PORT
#   and serves ROOT/f1m.bin, a 1 MiB file, at /static/f1m.bin)
# The server runs on CPU 0, `gvhttpd bench -t1 -cC` (C=16 unless given) on CPU 1:
# 1 s warm-up, then 3 s measured. Prints the server's own CPU (utime+stime of the
# process and its children, /proc/PID/stat) per MB, each CPU's busy time
# (/proc/stat: user+nice+system+irq+softirq) per MB, and req/s.
# BIN: the gvhttpd that generates the load (default target/release/gvhttpd).
name=$1 port=$2; shift 2
BIN=${BIN:-target/release/gvhttpd}
taskset -c 0 "$@" >/dev/null 2>&1 & SP=$!
sleep 0.7
url=http://127.0.0.1:$port/static/f1m.bin
"$BIN" bench --cpus 1 -t1 -c"${C:-16}" -d1s -q "$url" >/dev/null 2>&1
pids="$SP $(pgrep -P $SP)"
t() { local s=0; for p in $pids; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0))); done; echo $s; }
busy() { awk '/^cpu0 /{a=$2+$3+$4+$7+$8} /^cpu1 /{b=$2+$3+$4+$7+$8} END{print a" "b}' /proc/stat; }
a=$(t); read -r b bb < <(busy)
out=$("$BIN" bench --cpus 1 -t1 -c"${C:-16}" -d3s -q "$url" 2>&1)
a1=$(t); read -r b1 bb1 < <(busy)
kill $SP; wait $SP 2>/dev/null
req=$(echo "$out" | awk '/requests in/{print $1}')
python3 -c "r=$req; mb=r*1.048576; print(f'$name: proc {($a1-$a)*1e4/mb:.0f} us/MB, cpu0 {($b1-$b)*1e4/mb:.0f} cpu1 {($bb1-$bb)*1e4/mb:.0f} us/MB, {r/3:.0f} req/s')"
