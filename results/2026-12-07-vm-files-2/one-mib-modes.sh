#!/bin/bash
# ab2.sh model port: 1 MiB, CPU/MB plus sendfile and io_uring_enter counts
B=/work/wt-files/target/release/gvhttpd; m=$1 port=$2
taskset -c 0 $B serve --model $m --addr 127.0.0.1:$port --workers 1 --root /tmp/wtf-root >/dev/null 2>&1 & SP=$!
sleep 0.7
t() { awk '{print $14+$15}' /proc/$SP/stat; }
taskset -c 1 wrk -t1 -c16 -d1s http://127.0.0.1:$port/static/f1m.bin >/dev/null 2>&1
c0=$(t); r0=$(curl -s 127.0.0.1:$port/stats | grep -o '"requests":[0-9]*' | cut -d: -f2)
perf stat -x, -e 'syscalls:sys_enter_sendfile64,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait' -p $SP -o /tmp/ps.txt -- sleep 3 &
PS=$!
out=$(taskset -c 1 wrk -t1 -c16 -d3s http://127.0.0.1:$port/static/f1m.bin); c1=$(t)
wait $PS
r1=$(curl -s 127.0.0.1:$port/stats | grep -o '"requests":[0-9]*' | cut -d: -f2)
kill $SP; wait $SP 2>/dev/null
req=$((r1-r0-1)); sf=$(grep sendfile /tmp/ps.txt | cut -d, -f1); en=$(grep io_uring_enter /tmp/ps.txt | cut -d, -f1); ep=$(grep epoll_wait /tmp/ps.txt | cut -d, -f1)
python3 -c "c=($c1-$c0)/100; r=$req; print(f'$m: {c*1e6/(r*1.048576):.0f} us/MB, {r/3:.0f} req/s, sendfile/req {$sf/r:.2f}, enter/req {$en/r:.2f}, epoll/req {$ep/r:.2f}')"
