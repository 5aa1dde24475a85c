#!/usr/bin/env python3
"""A webhook receiver for jobrun's notification tests, on loopback.

Records every request as one JSON line (method, path, headers, body) in --log, and answers it
with the next status of --statuses (a comma-separated list; the last one repeats), or with the
status a path is mapped to by --path-status PATH=CODE. Prints "listening on 127.0.0.1:PORT".
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--statuses", default="200")
    ap.add_argument("--path-status", action="append", default=[])
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    statuses = [int(s) for s in args.statuses.split(",")]
    by_path = dict((p.split("=", 1)[0], int(p.split("=", 1)[1])) for p in args.path_status)
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            with lock:
                i = count[0]
                count[0] += 1
                with open(args.log, "a") as f:
                    f.write(json.dumps({"method": "POST", "path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body}) + "\n")
            status = by_path.get(self.path, statuses[min(i, len(statuses) - 1)])
            out = b'{"ok":true}' if status < 400 else b'{"message":"no"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    import sys
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
