"""Legacy programs that lean on signals, os.system and socket timeouts: the same under ``python -m corun``.

Each program is ordinary stdlib code that never mentions corun.  It runs in
a fresh interpreter with plain python and under ``python -m corun``; both
must give the same exit status, stdout and stderr.  Times are printed as
verdicts with wide margins (``elapsed < 1.5``), never as numbers.
"""

from __future__ import annotations

from pathlib import Path

from .test_runner import same, script

# The SIGALRM timeout recipe around every kind of wait: a handler that
# raises, an alarm armed, a call that would block for good or for long.
ALARM_AROUND_EACH_WAIT = """\
import os, queue, signal, socket, subprocess, sys, threading, time

class Alarm(Exception):
    pass

def on_alarm(signum, frame):
    raise Alarm("alarm")

signal.signal(signal.SIGALRM, on_alarm)

def guarded(name, wait, arm):
    arm()
    t0 = time.monotonic()
    try:
        wait()
        outcome = "returned"
    except Alarm as exc:
        outcome = f"raised {exc}"
    finally:
        signal.alarm(0)
    print(f"{name}: {outcome}, in time: {time.monotonic() - t0 < 2.5}", flush=True)

def alarm_in_1s():
    signal.alarm(1)

def timer_in_200ms():
    signal.setitimer(signal.ITIMER_REAL, 0.2)

lock = threading.Lock()
lock.acquire()
rlock = threading.RLock()
held = threading.Event()
def hold_rlock():
    rlock.acquire()
    held.set()
    threading.Event().wait()
threading.Thread(target=hold_rlock, daemon=True).start()
held.wait()
cond = threading.Condition()
def wait_cond():
    with cond:
        cond.wait()
a, b = socket.socketpair()
proc = subprocess.Popen(["sleep", "30"])
pid = os.posix_spawn("/bin/sleep", ["sleep", "30"], os.environ)
worker = threading.Thread(target=threading.Event().wait, daemon=True)
worker.start()

waits = [
    ("lock", lock.acquire),
    ("rlock", rlock.acquire),
    ("queue", queue.Queue().get),
    ("simple queue", queue.SimpleQueue().get),
    ("condition", wait_cond),
    ("event", threading.Event().wait),
    ("semaphore", threading.Semaphore(0).acquire),
    ("join", worker.join),
    ("sleep", lambda: time.sleep(30)),
    ("socket", lambda: a.recv(1)),
    ("process", proc.wait),
    ("waitpid", lambda: os.waitpid(pid, 0)),
    # system() cannot be cut short: the exception comes once the shell ends.
    ("system", lambda: print("system returned", os.system("sleep 1.5; echo shell ended"), flush=True)),
]
for name, wait in waits:
    guarded(name, wait, alarm_in_1s if name in ("lock", "queue") else timer_in_200ms)

proc.kill()
proc.wait()
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
print("done")
"""

ALARM_TIMERS = """\
import queue, signal, threading, time

class Stop(Exception):
    pass

runs = []
def rearm(signum, frame):
    runs.append(signum)
    if len(runs) < 3:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
    else:
        raise Stop(f"after {len(runs)} alarms")
signal.signal(signal.SIGALRM, rearm)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    queue.Queue().get()
except Stop as exc:
    print("re-armed from the handler:", exc)

runs.clear()
def every(signum, frame):
    runs.append(signum)
    if len(runs) == 4:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise Stop(f"after {len(runs)} intervals")
signal.signal(signal.SIGALRM, every)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
try:
    threading.Event().wait()
except Stop as exc:
    print("interval timer:", exc, signal.getitimer(signal.ITIMER_REAL))

items = queue.Queue()
signal.signal(signal.SIGALRM, lambda signum, frame: items.put("put by the handler"))
signal.alarm(1)
print("woken:", items.get())

def spin(enough, go):
    go.wait()
    end = time.monotonic() + 3
    while time.monotonic() < end and not enough.is_set():
        sum(range(10000))  # user CPU time, which is what ITIMER_VIRTUAL counts
        time.sleep(0)

def stop(signum, frame):
    raise Stop(signal.Signals(signum).name)

# The CPU-time timers interrupt code that runs: the main thread's own, or
# another thread's while the main thread waits for it.
for which, signum in ((signal.ITIMER_VIRTUAL, signal.SIGVTALRM), (signal.ITIMER_PROF, signal.SIGPROF)):
    signal.signal(signum, stop)
    signal.setitimer(which, 0.05)
    try:
        while True:
            pass
    except Stop as exc:
        print("main thread computing:", exc)
    # Armed once the spinner has started and waits: starting a thread costs
    # CPU time too, and the signal must find the main thread in join().
    enough, go = threading.Event(), threading.Event()
    spinner = threading.Thread(target=spin, args=(enough, go))
    spinner.start()
    signal.setitimer(which, 0.2)
    go.set()
    try:
        spinner.join()
        print("joined")
    except Stop as exc:
        print("main thread joining:", exc)
    signal.setitimer(which, 0)
    enough.set()
    spinner.join()
"""

SYSTEM = """\
import os, signal, sys, threading, time

if os.getpgid(0) != os.getpid():
    os.setsid()  # its own process group, to play Ctrl-C to it below

t0 = time.monotonic()
statuses = []
def run():
    statuses.append(os.system("sleep 0.3"))
threads = [threading.Thread(target=run) for _ in range(10)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ten threads:", statuses, "overlapped:", time.monotonic() - t0 < 1.5)

for command in ["exit 3", "", "kill -9 $$", "no-such-command-here 2>/dev/null", "echo $0", b"exit 4"]:
    status = os.system(command)
    print(repr(command), status, os.waitstatus_to_exitcode(status), flush=True)

seen = []
def look():
    time.sleep(0.2)
    seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGQUIT)))
watcher = threading.Thread(target=look)
watcher.start()
print("signals to this process:", os.system("kill -INT $PPID; kill -QUIT $PPID; sleep 0.4"), flush=True)
watcher.join()
print("handlers meanwhile:", seen)
print("Ctrl-C while a shell runs:", os.system("kill -INT 0; sleep 5"), flush=True)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
except KeyboardInterrupt:
    print("Ctrl-C afterwards: KeyboardInterrupt")
sys.exit(os.waitstatus_to_exitcode(os.system("exit 5")))
"""

SOCKET_TIMEOUT = """\
import socket, ssl

s = socket.socket()
a, b = socket.socketpair()
a.settimeout(4.0)
b.setblocking(False)
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname(), timeout=2)
socket.setdefaulttimeout(7)
conn, _ = listener.accept()
print(s.timeout, a.timeout, b.timeout, client.timeout, conn.timeout, socket.socket().timeout)
print(a.dup().timeout, s.gettimeout(), socket.timeout is TimeoutError)
socket.setdefaulttimeout(None)
tls = ssl.create_default_context().wrap_socket(socket.socket(), server_hostname="localhost")
tls.settimeout(2.5)
print(tls.timeout)
try:
    s.timeout = 1
except AttributeError as exc:
    print("AttributeError:", exc)
"""


def test_the_sigalrm_recipe_interrupts_every_kind_of_wait(tmp_path: Path) -> None:
    script(tmp_path / "alarms.py", ALARM_AROUND_EACH_WAIT)
    out = same(["alarms.py"], tmp_path).stdout.splitlines()
    assert out[-1] == "done" and "shell ended" in out
    assert [line for line in out if ": " in line] == [
        f"{name}: raised alarm, in time: True"
        for name in (
            "lock", "rlock", "queue", "simple queue", "condition", "event", "semaphore", "join",
            "sleep", "socket", "process", "waitpid", "system",
        )
    ]  # fmt: skip
    assert out.index("shell ended") < out.index("system: raised alarm, in time: True")


def test_rearmed_interval_and_cpu_time_timers(tmp_path: Path) -> None:
    script(tmp_path / "timers.py", ALARM_TIMERS)
    assert same(["timers.py"], tmp_path).stdout.splitlines() == [
        "re-armed from the handler: after 3 alarms",
        "interval timer: after 4 intervals (0.0, 0.0)",
        "woken: put by the handler",
        "main thread computing: SIGVTALRM",
        "main thread joining: SIGVTALRM",
        "main thread computing: SIGPROF",
        "main thread joining: SIGPROF",
    ]


def test_os_system_in_threads_overlaps_and_keeps_its_rules(tmp_path: Path) -> None:
    script(tmp_path / "shells.py", SYSTEM)
    proc = same(["shells.py"], tmp_path)
    assert proc.returncode == 5
    assert proc.stdout.splitlines() == [
        "ten threads: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] overlapped: True",
        "'exit 3' 768 3",
        "'' 0 0",
        "'kill -9 $$' 9 -9",
        "'no-such-command-here 2>/dev/null' 32512 127",
        "sh",
        "'echo $0' 0 0",
        "b'exit 4' 1024 4",
        "signals to this process: 0",
        "handlers meanwhile: [(<built-in function default_int_handler>, <Handlers.SIG_DFL: 0>)]",
        "Ctrl-C while a shell runs: 2",
        "Ctrl-C afterwards: KeyboardInterrupt",
    ]


def test_socket_timeout_attribute(tmp_path: Path) -> None:
    script(tmp_path / "timeouts.py", SOCKET_TIMEOUT)
    assert same(["timeouts.py"], tmp_path).stdout.splitlines() == [
        "None 4.0 0.0 2.0 7.0 7.0",
        "4.0 None True",
        "2.5",
        "AttributeError: attribute 'timeout' of '_socket.socket' objects is not writable",
    ]
