"""Name resolution from threads: getaddrinfo and gethostbyname, and a name that does not resolve."""

import socket
import threading

answers = {}


def resolve(n):
    infos = socket.getaddrinfo("localhost", 8000 + n, socket.AF_INET, socket.SOCK_STREAM)
    answers[n] = sorted({info[4] for info in infos})


threads = [threading.Thread(target=resolve, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(answers):
    print(n, answers[n])
print("gethostbyname:", socket.gethostbyname("127.0.0.1"))
try:
    socket.getaddrinfo("no-such-host.invalid", 80)
except socket.gaierror as exc:
    print("gaierror raised:", isinstance(exc, OSError))
