#!/usr/bin/env python3
"""A fake of the W&B GraphQL API, on loopback, for the wandb pack's tests.

It answers POST /graphql as api.wandb.ai does for the public client's RunSampledHistory query:
HTTP basic auth for the user "api" with the API key as password (401 otherwise); variables
entity, project, name and specs (a list of JSON strings {"keys": [...], "samples": N}); the
answer {"data": {"project": {"run": {"sampledHistory": [[row, ...]]}}}} with one list of rows
per spec, each row holding "_step" and the keys it has; {"run": null} for a run it does not know.
Runs: --run ENTITY/PROJECT/NAME=KEY:V1,V2,...  (repeatable). Prints "listening on 127.0.0.1:PORT".
Each request is appended as a JSON line to --log (method, path, authorization, body).
"""
import argparse
import base64
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", required=True)
    ap.add_argument("--run", action="append", default=[])
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    runs = {}
    for spec in a.run:
        path, series = spec.split("=", 1)
        key, values = series.rsplit(":", 1)
        runs.setdefault(path, {})[key] = [float(v) for v in values.split(",")]
    want = "Basic " + base64.b64encode(("api:" + a.key).encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *x):
            pass

        def reply(self, status, doc):
            out = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            with open(a.log, "a") as f:
                f.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                                    "body": body}) + "\n")
            if self.path != "/graphql":
                return self.reply(404, {"errors": [{"message": "not found"}]})
            if self.headers.get("Authorization") != want:
                return self.reply(401, {"errors": [{"message": "user is not logged in"}]})
            req = json.loads(body)
            if "sampledHistory(specs: $specs)" not in req.get("query", ""):
                return self.reply(400, {"errors": [{"message": "unexpected query"}]})
            v = req["variables"]
            run = runs.get("%s/%s/%s" % (v["entity"], v["project"], v["name"]))
            if run is None:
                return self.reply(200, {"data": {"project": {"run": None}}})
            lists = []
            for spec in v["specs"]:
                s = json.loads(spec)
                keys = [k for k in s["keys"] if k != "_step"]
                n = max([len(run.get(k, [])) for k in keys] + [0])
                rows = []
                for i in range(n):
                    row = {"_step": i * 10}
                    for k in keys:
                        if i < len(run.get(k, [])):
                            row[k] = run[k][i]
                    rows.append(row)
                lists.append(rows[: s.get("samples", 500)])
            self.reply(200, {"data": {"project": {"run": {"sampledHistory": lists}}}})

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    import signal
    import sys
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(0))
    main()
