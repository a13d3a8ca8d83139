"""http.server.ThreadingHTTPServer answering urllib.request clients in threads; a 404 and a POST."""

import http.server
import json
import threading
import time
import urllib.error
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/missing"):
            self.send_error(404, "no such page")
            return
        time.sleep(0.5)  # a slow page
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        body = data[::-1]
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # keep stderr quiet


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
base = f"http://127.0.0.1:{server.server_address[1]}"
threading.Thread(target=server.serve_forever, daemon=True).start()

pages = {}


def fetch(n):
    with urllib.request.urlopen(f"{base}/page/{n}", timeout=10) as response:
        pages[n] = (response.status, json.loads(response.read())["path"])


fetchers = [threading.Thread(target=fetch, args=(n,)) for n in range(15)]
for t in fetchers:
    t.start()
for t in fetchers:
    t.join()
print("pages:", [pages[n] for n in sorted(pages)][:3], "... total", len(pages))

try:
    urllib.request.urlopen(f"{base}/missing", timeout=10)
except urllib.error.HTTPError as exc:
    print("missing:", exc.code, exc.reason)

request = urllib.request.Request(f"{base}/echo", data=b"stressed", method="POST")
with urllib.request.urlopen(request, timeout=10) as response:
    print("post:", response.status, response.read().decode())

server.shutdown()
server.server_close()
