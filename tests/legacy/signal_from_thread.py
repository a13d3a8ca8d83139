"""signal.signal() in a worker thread raises ValueError (libraries catch it); the handler stays."""

import signal
import threading

outcome = []


def install():
    try:
        signal.signal(signal.SIGUSR2, lambda signum, frame: None)
        outcome.append("installed")
    except ValueError as exc:
        outcome.append(f"ValueError: {exc}")


t = threading.Thread(target=install)
t.start()
t.join()
print(outcome)
print("SIGUSR2 handler is still the default:", signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL)
