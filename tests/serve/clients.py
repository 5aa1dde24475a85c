#!/usr/bin/env python3
"""Many clients of `jobrun serve` at once, on loopback, for the tests and the bench.

  clients.py load --port P --run R [--streams 100] [--idle 100]
      holds STREAMS event streams of run R (each read up to its first event) and IDLE
      connections that sent half a request, then times one new GET /api/runs; prints JSON
      {"streams": n_open, "idle": n, "status": code, "seconds": t}.
  clients.py fanout --port P --run R [--streams 100] --touch PATH
      holds STREAMS event streams, then replaces PATH's parent's state.json (rewrites
      PATH atomically) and times until every stream has seen a change event; prints JSON
      {"streams": n, "reached": n, "seconds": t}.
Every loop is bounded: each socket has a timeout, and the whole run a deadline.
"""
import argparse
import json
import os
import select
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def open_stream(port, run):
    s = connect(port)
    s.sendall(("GET /api/runs/%s/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n"
               % (run, port)).encode())
    buf = b""
    deadline = time.time() + 10
    while b"event: change" not in buf and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return s, b"event: change" in buf


def get(port, path):
    s = connect(port)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (path, port)).encode())
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    line = buf.split(b"\r\n", 1)[0].decode()
    return int(line.split()[1]) if line.startswith("HTTP/") else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "fanout"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--touch")
    a = ap.parse_args()
    streams = []
    ok = 0
    for _ in range(a.streams):
        s, seen = open_stream(a.port, a.run)
        streams.append(s)
        ok += 1 if seen else 0
    if a.mode == "load":
        idle = []
        for _ in range(a.idle):
            s = connect(a.port)
            s.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            idle.append(s)
        t0 = time.time()
        status = get(a.port, "/api/runs")
        out = {"streams": ok, "idle": len(idle), "status": status, "seconds": round(time.time() - t0, 3)}
        for s in idle:
            s.close()
    else:
        with open(a.touch, "rb") as f:
            data = f.read()
        tmp = a.touch + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        t0 = time.time()
        os.rename(tmp, a.touch)
        pending = {s.fileno(): s for s in streams}
        reached = 0
        deadline = t0 + 10
        while pending and time.time() < deadline:
            r, _, _ = select.select(list(pending), [], [], 0.5)
            for fd in r:
                chunk = pending[fd].recv(4096)
                if b"event: change" in chunk or not chunk:
                    reached += 1 if chunk else 0
                    del pending[fd]
        out = {"streams": ok, "reached": reached, "seconds": round(time.time() - t0, 3)}
    for s in streams:
        s.close()
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
