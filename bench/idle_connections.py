#!/usr/bin/env python3
"""Connection flood against a real relay: N idle TCP connections (opened by
two client processes, since one process may hold at most its open-files
limit) plus slow unauthenticated uploads, then /healthz from fresh
connections; prints healthz latencies, the relay's RSS and open descriptors.

Usage: bench/idle_connections.py [--bin target/debug/tickets] [--connections 20000] [--uploads 50]
A figure, not a test: see BENCHMARKS.md.
"""
import argparse
import multiprocessing as mp
import os
import re
import resource
import signal
import socket
import subprocess
import tempfile
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold(port, n, ready, stop):
    raise_nofile()
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            socks.append(s)
        except OSError:
            failed += 1
    ready.put((len(socks), failed))
    stop.wait()


def healthz(port, timeout):
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return ok, time.monotonic() - started


def proc_status(pid):
    rss = fds = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/tickets")
    ap.add_argument("--connections", type=int, default=20000)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--probes", type=int, default=10)
    args = ap.parse_args()
    raise_nofile()
    work = tempfile.mkdtemp()
    log = open(os.path.join(work, "relay.log"), "w+")
    relay = subprocess.Popen(
        [args.bin, "relay", "serve", "--db", os.path.join(work, "relay.db"), "--listen", "127.0.0.1:0"],
        stderr=log,
    )
    port = None
    for _ in range(300):
        log.seek(0)
        m = re.search(r"relay listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.1)
    assert port, "the relay did not start"
    print(f"relay pid {relay.pid} port {port}; idle RSS/fds {proc_status(relay.pid)}")
    ok, t = healthz(port, 5)
    print(f"healthz before: ok={ok} {t * 1000:.1f} ms")

    ready, stop = mp.Queue(), mp.Event()
    half = args.connections // 2
    holders = [mp.Process(target=hold, args=(port, n, ready, stop)) for n in (half, args.connections - half)]
    started = time.monotonic()
    for h in holders:
        h.start()
    uploads = []
    for _ in range(args.uploads):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /v1/sync HTTP/1.1\r\nHost: relay\r\nContent-Length: 15000000\r\n\r\n{")
            uploads.append(s)
        except OSError:
            pass
    opened = [ready.get() for _ in holders]
    print(f"opened {sum(o for o, _ in opened)} idle connections ({sum(f for _, f in opened)} failed) "
          f"and {len(uploads)} uploads in {time.monotonic() - started:.1f} s")
    lat, fails = [], 0
    for _ in range(args.probes):
        for s in uploads:
            try:
                s.send(b" ")
            except OSError:
                pass
        ok, t = healthz(port, 30)
        if ok:
            lat.append(t)
        else:
            fails += 1
    lat.sort()
    if lat:
        print(f"healthz during: {len(lat)} answered, {fails} failed; "
              f"median {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
    else:
        print(f"healthz during: none answered ({fails} failed)")
    rss, fds = proc_status(relay.pid)
    print(f"relay RSS {rss} MB, open descriptors {fds}")
    stop.set()
    for h in holders:
        h.join()
    relay.send_signal(signal.SIGTERM)
    try:
        relay.wait(timeout=30)
    except subprocess.TimeoutExpired:
        relay.kill()


if __name__ == "__main__":
    main()
