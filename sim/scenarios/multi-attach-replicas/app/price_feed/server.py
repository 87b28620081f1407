"""price-feed: serves the catalog's current prices from the snapshot it keeps on its volume."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SNAPSHOT_DIR = os.environ["SNAPSHOT_DIR"]
SNAPSHOT = os.path.join(SNAPSHOT_DIR, "prices.json")


def load():
    # One writer: the snapshot is rewritten in place by the pod that owns the volume.
    with open(SNAPSHOT, encoding="utf-8") as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.startswith("/prices/"):
            self.send_error(404)
            return
        sku = self.path.rsplit("/", 1)[-1]
        price = load().get(sku)
        if price is None:
            self.send_error(404)
            return
        body = json.dumps({"sku": sku, "price": price}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    os.makedirs(SNAPSHOT_DIR, exist_ok=True)
    print(f"listening on :8080, snapshots in {SNAPSHOT_DIR}", flush=True)
    ThreadingHTTPServer(("", 8080), Handler).serve_forever()
