#!/usr/bin/env python3
"""Open N concurrent keep-alive connections to a gvhttpd server, send one request on
each, and check every one gets a 200 while all N stay open. Bounded in time.

    ulimit -n 30000; scripts/many-conns.py 127.0.0.1:8080 10000 [deadline_s=60]

Prints one summary line; exits 1 when any connection failed.
"""
import selectors
import socket
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    end = time.monotonic() + limit
    sel = selectors.DefaultSelector()
    req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    conns, failed = [], 0
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, int(port)))
        except BlockingIOError:
            pass
        conns.append(s)
        sel.register(s, selectors.EVENT_WRITE, [b"", False])
    connected = time.monotonic()
    ok = 0
    pending = n
    while pending and time.monotonic() < end:
        for key, ev in sel.select(timeout=1.0):
            s, st = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE and not st[1]:
                try:
                    s.send(req)
                    st[1] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                except OSError:
                    failed += 1
                    pending -= 1
                    sel.unregister(s)
                continue
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                failed += 1
                pending -= 1
                sel.unregister(s)
                continue
            st[0] += d
            if st[0].startswith(b"HTTP/1.1 200") and st[0].endswith(b"Hello, World!"):
                ok += 1
                pending -= 1
                sel.unregister(s)
    answered = time.monotonic()
    # All N must still be open (keep-alive): a server-side close shows as EOF now.
    time.sleep(0.5)
    closed_early = 0
    for s in conns:
        try:
            if s.recv(1) == b"":
                closed_early += 1
        except BlockingIOError:
            pass
        except OSError:
            closed_early += 1
    for s in conns:
        s.close()
    print(
        f"{n} connections: {ok} answered 200, {failed} failed, {pending} unanswered, "
        f"{closed_early} closed early; connect {connected - t0:.2f}s, "
        f"requests answered {answered - connected:.2f}s"
    )
    sys.exit(0 if ok == n and closed_early == 0 else 1)


main()
