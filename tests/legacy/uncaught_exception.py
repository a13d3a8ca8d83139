"""An uncaught exception in a thread (threading.excepthook), then in main: tracebacks, exit status 1."""

import threading


class ConfigError(Exception):
    pass


def load(name):
    raise KeyError(name)


def worker():
    load("missing-setting")


t = threading.Thread(target=worker, name="loader")
t.start()
t.join()
print("the thread died, main goes on")


def parse(text):
    if not text.isdigit():
        raise ConfigError(f"not a number: {text!r}")
    return int(text)


try:
    parse("x1")
except ConfigError as exc:
    raise RuntimeError("configuration failed") from exc
