"""logging.exception and traceback.print_exc in a thread for a chained exception; format_exc in main."""

import logging
import sys
import threading
import traceback

logging.basicConfig(format="%(levelname)s %(threadName)s %(message)s")


class AppError(Exception):
    pass


def work():
    try:
        try:
            {}["key"]
        except KeyError as exc:
            raise AppError("lookup failed") from exc
    except AppError:
        logging.exception("worker failed")  # to stderr, with the traceback
        traceback.print_exc(file=sys.stdout)


t = threading.Thread(target=work, name="worker")
t.start()
t.join()
try:
    ratio = 1 / 0
except ZeroDivisionError:
    print("".join(traceback.format_exception(*sys.exc_info())), end="")
    print(traceback.format_exc(limit=0), end="")
