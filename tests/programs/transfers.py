"""Transfers between two accounts, each with its own lock, re-acquired in a nested call.

``transfer`` holds both accounts' locks (always taken in the same order, so two
opposite transfers cannot deadlock each other) and then calls ``withdraw`` and
``deposit``, which take the same locks again. With ``RLock`` that is allowed;
with ``Lock`` the first transfer waits for itself forever.

Usage: transfers.py RLock|Lock
"""

import json
import sys
import threading
import time

LockKind = getattr(threading, sys.argv[1])

THREADS = 10
TRANSFERS = 10  # per thread


class Account:
    def __init__(self, name, balance):
        self.name = name
        self.balance = balance
        self.lock = LockKind()

    def withdraw(self, amount):
        with self.lock:
            if self.balance < amount:
                raise ValueError(f"{self.name}: insufficient funds")
            balance = self.balance
            time.sleep(0.001)
            self.balance = balance - amount

    def deposit(self, amount):
        with self.lock:
            balance = self.balance
            time.sleep(0.001)
            self.balance = balance + amount


def transfer(source, target, amount):
    first, second = sorted((source, target), key=lambda account: account.name)
    with first.lock, second.lock:
        source.withdraw(amount)
        target.deposit(amount)


def work(n, a, b):
    for i in range(TRANSFERS):
        if (n + i) % 2:
            transfer(a, b, n + 1)
        else:
            transfer(b, a, n + 1)


a = Account("a", 100)
b = Account("b", 100)
threads = [threading.Thread(target=work, args=(n, a, b)) for n in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"a": a.balance, "b": b.balance}))
