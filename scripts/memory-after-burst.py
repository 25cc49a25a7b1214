#!/usr/bin/env python3
"""Does the server give memory back after a burst of connections? (issue 14, item 4)

    scripts/memory-after-burst.py MODEL [N=10000] [BIN=target/release/gvhttpd]

Starts `BIN serve --model MODEL --workers 1` on 127.0.0.1, serves 20 requests
(warm-up), reads VmRSS (before), opens N idle connections (peak), closes them all,
waits 3 s (the allocator's purge runs within about a second) and reads VmRSS again
(after), then serves 5 more requests (after+5req). Bounded: every step has a
deadline; the server is stopped with SIGTERM at the end. Needs N + 100 descriptors.
"""
import os
import re
import resource
import socket
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    model = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    binary = sys.argv[3] if len(sys.argv) > 3 else "target/release/gvhttpd"
    want = n + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard < want:
            sys.exit(f"need {want} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    p = subprocess.Popen(
        [binary, "serve", "--model", model, "--addr", "127.0.0.1:0", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        line = p.stdout.readline().decode()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            sys.exit(f"no readiness line: {line!r}")
        host, port = m.group(1), int(m.group(2))

        def rss():
            with open(f"/proc/{p.pid}/status") as f:
                for l in f:
                    if l.startswith("VmRSS"):
                        return int(l.split()[1])
            return 0

        def get():
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
            s.close()

        for _ in range(20):
            get()
        time.sleep(0.3)
        before = rss()
        conns = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
        time.sleep(1.5)
        peak = rss()
        for c in conns:
            c.close()
        time.sleep(3)
        after = rss()
        for _ in range(5):
            get()
        time.sleep(1)
        print(
            f"{model}: before {before} KiB, peak {peak} KiB with {n} idle, "
            f"after {after} KiB ({after / before:.2f}x before), after+5req {rss()} KiB"
        )
    finally:
        p.terminate()
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
