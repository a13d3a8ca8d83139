"""http.client keep-alive requests to an HTTP/1.1 http.server, from threads with a connection each."""

import http.client
import http.server
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(0.12)
        body = f"{self.path} answered".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
host, port = server.server_address
threading.Thread(target=server.serve_forever, daemon=True).start()
bodies = {}


def client(n):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    got = []
    local_ports = set()
    for k in range(5):
        conn.request("GET", f"/c{n}/r{k}")
        response = conn.getresponse()
        got.append((response.status, response.read().decode()))
        local_ports.add(conn.sock.getsockname()[1])
    conn.close()
    bodies[n] = (got, len(local_ports))


threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(bodies):
    got, connections = bodies[n]
    print(n, got[0], got[-1], "connections used:", connections)
server.shutdown()
server.server_close()
