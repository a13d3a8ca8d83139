"""signal.alarm guarding a queue.Queue.get() that nobody answers: the handler's exception ends the wait."""

import queue
import signal


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("no answer within 1 s")


signal.signal(signal.SIGALRM, on_alarm)
answers = queue.Queue()
signal.alarm(1)
try:
    answers.get()
    print("got an answer")
except Timeout as exc:
    print("timed out:", exc)
finally:
    signal.alarm(0)
print("queue still empty:", answers.empty())
