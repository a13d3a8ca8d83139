"""The stdlib objects corun's own machinery needs, captured before any patching.

This module is imported by ``corun/__init__.py`` before anything else, so the
names here are always the real, blocking originals even after
``corun.monkey.patch_all()`` has replaced them on their modules.  The hub, the
thread pool and the monitor use these and nothing else from the patched areas.
"""

import _queue
import _thread
import os
import select
import selectors
import signal
import time

__all__ = [
    "DefaultSelector",
    "SimpleQueue",
    "allocate_lock",
    "epoll",
    "eventfd",
    "get_ident",
    "getitimer",
    "getsignal",
    "monotonic",
    "os_close",
    "os_pipe",
    "os_read",
    "os_write",
    "perf_counter",
    "poll",
    "real_sleep",
    "set_sentinel",
    "start_joinable_thread",
    "start_new_thread",
    "thread_local",
    "wall_time",
]

allocate_lock = _thread.allocate_lock
get_ident = _thread.get_ident
start_new_thread = _thread.start_new_thread
# A thread that can be waited for until it has really ended: 3.13 joins it
# through a handle, earlier versions give it a lock the interpreter releases
# when its thread state is deleted.
start_joinable_thread = getattr(_thread, "start_joinable_thread", None)
set_sentinel = getattr(_thread, "_set_sentinel", None)
thread_local = _thread._local
SimpleQueue = _queue.SimpleQueue
DefaultSelector = selectors.DefaultSelector

epoll = getattr(select, "epoll", None)
poll = getattr(select, "poll", None)
eventfd = getattr(os, "eventfd", None)

monotonic = time.monotonic
perf_counter = time.perf_counter
wall_time = time.time
real_sleep = time.sleep

os_read = os.read
os_write = os.write
os_pipe = os.pipe
os_close = os.close

# What the hub reads to tell whether SIGALRM will come (not on every platform).
getitimer = getattr(signal, "getitimer", None)
getsignal = signal.getsignal
