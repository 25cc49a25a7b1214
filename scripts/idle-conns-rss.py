#!/usr/bin/env python3
"""Server RSS per idle keep-alive connection, and N concurrent requests to one path.

    ulimit -n 30000
    scripts/idle-conns-rss.py HOST:PORT SERVER_PID N [PATH=/] [deadline_s=60] [MODE=burst] [SETTLE_S=1]

Reads the server's VmRSS, opens N keep-alive connections, sends one `GET PATH` on
each, waits for every 200, waits SETTLE_S seconds, reads VmRSS again while all N
stay open and idle, and prints the growth per connection. MODE `burst`: all N
requests in flight at once (every connection sends as soon as it is connected);
`serial`: one after another (each connection sends once the previous one has
its answer). Bounded in time; exits 1 when any request failed or any connection
was closed early.
"""
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stack_slab_rss_kib(pid):
    """RSS of the green-thread stack slabs: the anonymous mappings with
    MADV_GUARD_INSTALL guard regions (smaps flag `gu`) — 0 for other models."""
    total, rss = 0, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("VmFlags:") and " gu" in line:
                total += rss
    return total


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    n = int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    mode = sys.argv[6] if len(sys.argv) > 6 else "burst"
    settle = float(sys.argv[7]) if len(sys.argv) > 7 else 1.0
    if mode not in ("burst", "serial"):
        sys.exit(f"MODE must be burst or serial, not {mode!r}")
    end = time.monotonic() + limit
    req = f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    before = rss_kib(pid)
    sel = selectors.DefaultSelector()
    conns, failed = [], 0
    t0 = time.monotonic()
    def open_one():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, int(port)))
        except BlockingIOError:
            pass
        conns.append(s)
        sel.register(s, selectors.EVENT_WRITE, [b"", False])

    for _ in range(n if mode == "burst" else 1):
        open_one()
    ok, pending = 0, n
    while pending and time.monotonic() < end:
        if mode == "serial" and len(conns) < n and ok + failed == len(conns):
            open_one()
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
            head, sep, body = st[0].partition(b"\r\n\r\n")
            if sep and head.startswith(b"HTTP/1.1 200"):
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(body) >= length:
                    ok += 1
                    pending -= 1
                    sel.unregister(s)
    answered = time.monotonic()
    time.sleep(settle)  # let the server park every connection in its idle read
    after = rss_kib(pid)
    stacks = stack_slab_rss_kib(pid)
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
    per = (after - before) * 1024 / n
    print(
        f"{n} x GET {path} ({mode}, settled {settle:g}s): {ok} answered 200, {failed} failed, {pending} unanswered, "
        f"{closed_early} closed early, all answered in {answered - t0:.2f}s; "
        f"server VmRSS {before} -> {after} KiB = {per:.0f} B per idle connection"
        + (f" (green stacks: {stacks * 1024 / n:.0f} B per connection)" if stacks else "")
    )
    sys.exit(0 if ok == n and closed_early == 0 else 1)


main()
