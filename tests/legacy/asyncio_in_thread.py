"""asyncio.run() in a thread (sleep, open_connection, to_thread, wait_for) while the main thread blocks."""

import asyncio
import socketserver
import threading
import time


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"echo " + line)


server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
server.daemon_threads = True
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()


def blocking_lookup(n):
    time.sleep(0.1)
    return n * 2


async def talk(n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"hello {n}\n".encode())
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return line.decode().strip()


async def main():
    await asyncio.sleep(0.1)
    lines = await asyncio.gather(*(talk(n) for n in range(5)))
    doubled = await asyncio.gather(*(asyncio.to_thread(blocking_lookup, n) for n in range(5)))
    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.2)
    except asyncio.TimeoutError:
        lines.append("wait_for timed out")
    return lines, doubled


results = []
loop_thread = threading.Thread(target=lambda: results.append(asyncio.run(main())))
loop_thread.start()
main_ticks = 0
while loop_thread.is_alive():
    time.sleep(0.05)  # the main thread keeps blocking on its own
    main_ticks += 1
loop_thread.join()
lines, doubled = results[0]
print("lines:", lines)
print("doubled:", doubled)
print("main thread kept running:", main_ticks > 2)
server.shutdown()
server.server_close()
