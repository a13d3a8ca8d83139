"""xmlrpc.server.SimpleXMLRPCServer (threading mix-in) and ServerProxy clients calling it from threads."""

import socketserver
import threading
import time
import xmlrpc.client
import xmlrpc.server


class ThreadedXMLRPCServer(socketserver.ThreadingMixIn, xmlrpc.server.SimpleXMLRPCServer):
    daemon_threads = True


server = ThreadedXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)


def slow_add(a, b):
    time.sleep(0.6)
    return a + b


def divide(a, b):
    return a / b


server.register_function(slow_add, "add")
server.register_function(divide, "divide")
server.register_introspection_functions()
url = f"http://127.0.0.1:{server.server_address[1]}/"
threading.Thread(target=server.serve_forever, daemon=True).start()

sums = {}


def call(n):
    with xmlrpc.client.ServerProxy(url) as proxy:
        sums[n] = proxy.add(n, 1000)


callers = [threading.Thread(target=call, args=(n,)) for n in range(10)]
for t in callers:
    t.start()
for t in callers:
    t.join()
print("sums:", [sums[n] for n in sorted(sums)])

with xmlrpc.client.ServerProxy(url) as proxy:
    print("methods:", [m for m in proxy.system.listMethods() if not m.startswith("system.")])
    try:
        proxy.divide(1, 0)
    except xmlrpc.client.Fault as fault:
        print("fault:", fault.faultString.split(":")[0])

server.shutdown()
server.server_close()
