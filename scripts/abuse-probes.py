#!/usr/bin/env python3
"""What one abusive client can take from the server: CPU after a half-close, and
how long a slow reader holds a response (issue 24, points 1 and 4).

    scripts/abuse-probes.py BIN MODEL [EXTRA_SERVE_ARGS...]

Starts `BIN serve --model MODEL --workers 1 --addr 127.0.0.1:0` pinned to CPU 0
(plus EXTRA_SERVE_ARGS), then, one after the other:

- work-after-eof: one connection sends 100 pipelined `GET /work/100000` (0.1 s of
  CPU each) and half-closes at once, reading nothing; prints the server CPU time
  (utime+stime from /proc) spent in the 8 s that follow, and whether the server
  closed the connection by then.
- slow-reader: one connection asks for a 4 MiB file with a 4 KiB receive buffer
  and reads 1 KiB every 0.25 s; prints how long the server kept the connection
  (capped at 40 s: "held >= 40 s" means it never cut it).

Bounded in time; the server is stopped by its PID (SIGTERM) at the end.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start(binary, model, root, extra):
    cmd = ["taskset", "-c", "0", binary, "serve", "--model", model, "--workers", "1",
           "--addr", "127.0.0.1:0", "--root", root] + extra
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        line = p.stdout.readline()
        if "listening on http://" in line:
            host, port = line.split("listening on http://")[1].split()[0].rstrip("/").split(":")
            return p, (host, int(port))
    p.kill()
    sys.exit("the server did not start")


def work_after_eof(pid, addr):
    c = socket.create_connection(addr)
    req = b"GET /work/100000 HTTP/1.1\r\nHost: t\r\n\r\n" * 100
    before = cpu_s(pid)
    c.sendall(req)
    c.shutdown(socket.SHUT_WR)
    c.settimeout(0.5)
    closed = False
    end = time.time() + 8
    while time.time() < end:
        try:
            if not closed and c.recv(1 << 16) == b"":
                closed = True
        except socket.timeout:
            pass
        except OSError:
            closed = True
        if closed:
            time.sleep(0.1)
    spent = cpu_s(pid) - before
    c.close()
    return f"work-after-eof: {spent:.2f} s server CPU in 8 s, connection {'closed' if closed else 'still open'}"


def slow_reader(addr):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(addr)
    c.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    c.settimeout(1)
    start = time.time()
    got = 0
    while time.time() - start < 40:
        try:
            b = c.recv(1024)
        except socket.timeout:
            continue
        except OSError:
            break
        if not b:
            break
        got += len(b)
        time.sleep(0.25)
    held = time.time() - start
    c.close()
    if held >= 40:
        return f"slow-reader: held >= 40 s ({got} bytes read)"
    return f"slow-reader: cut after {held:.1f} s ({got} bytes read)"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, model, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(os.urandom(4 << 20))
        p, addr = start(binary, model, root, extra)
        try:
            print(f"{model:16} {work_after_eof(p.pid, addr)}", flush=True)
            print(f"{model:16} {slow_reader(addr)}", flush=True)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
