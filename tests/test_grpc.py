"""grpcio's synchronous client and server under corun, on real sockets on 127.0.0.1.

Each patched program runs in a fresh interpreter.  The services are generic
handlers over bytes, so no generated code is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

import corun
import corun.grpc
from corun import _originals

from .conftest import ROOT, PipeLines, process_group, run_json, run_process, ticker

grpc = pytest.importorskip("grpc")

# A server in the program's own process: Slow takes 0.5 s (or the seconds
# the request names), Count streams back five numbers 0.1 s apart, Join
# joins the requests of a stream, Echo streams each request back.  A call
# the server sees ended by its client before its time is up (cancelled, or
# past its deadline) is added to cancelled[]; each call it begins, to started[].
SERVICE = """
import time
from concurrent import futures
import grpc

cancelled = []
started = []

def wait(seconds, context, name):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not context.is_active():
            cancelled.append(name)
            return False
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return True

def slow(request, context):
    started.append(request.decode())
    wait(float(request or b"0.5"), context, request.decode())
    return request or b"done"

def count(request, context):
    started.append("count")
    for i in range(5):
        if not wait(0.1, context, "count"):
            return
        yield str(i).encode()

def join(requests, context):
    started.append("join")
    try:
        joined = b"".join(requests)
    except grpc.RpcError:  # the client went away mid-stream
        joined = b""
    # The stream may end before the server hears why: a cancelled call
    # turns inactive within this while.
    wait(0.3, context, "join")
    return joined

def echo(requests, context):
    for request in requests:
        yield request

HANDLER = grpc.method_handlers_generic_handler("test.Service", {
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Join": grpc.stream_unary_rpc_method_handler(join),
    "Echo": grpc.stream_stream_rpc_method_handler(echo),
})

def start_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    server.add_generic_rpc_handlers((HANDLER,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
"""

# A program serving until killed, once it has said on which port.
SERVE = "server, port = start_server()\nprint(port, flush=True)\nserver.wait_for_termination()\n"

PATCH = "from corun import monkey; monkey.patch_all()\n"


def patched_program(body: str, *, import_grpc_first: bool = False) -> str:
    """A program patching (after importing grpc, with ``import_grpc_first``), serving, running ``body``."""
    head = "import grpc\n" + PATCH if import_grpc_first else PATCH
    return (
        "import json, time\n"
        + head
        + "import corun\n"
        + SERVICE
        + ticker(0.05)
        + "server, port = start_server()\n"
        + "channel = grpc.insecure_channel(f'127.0.0.1:{port}')\n"
        + "slow = channel.unary_unary('/test.Service/Slow')\n"
        + "assert slow(b'0', timeout=10) == b'0'  # connected\n"
        + textwrap.dedent(body)
    )


CONCURRENT_CALLS = """
import corun.grpc
from grpc._cython import cygrpc
ticks[0] = 0
start = time.monotonic()
calls = [corun.spawn(slow, b"0.5", timeout=10) for _ in range(50)]
corun.joinall(calls, raise_error=True)
elapsed = time.monotonic() - start
channel.close()
server.stop(None)
print(json.dumps({"elapsed": elapsed, "ticks": ticks[0], "answers": [c.value.decode() for c in calls],
                  "initialized": corun.grpc.is_initialized()}))
"""


@pytest.mark.parametrize("import_grpc_first", [False, True], ids=["imported-after", "imported-before"])
def test_concurrent_unary_calls_park_only_their_tasks(import_grpc_first: bool) -> None:
    result = run_json(patched_program(CONCURRENT_CALLS, import_grpc_first=import_grpc_first))
    assert result["initialized"]
    assert result["answers"] == ["0.5"] * 50
    # 50 calls of 0.5 s each, one after another, would take 25 s.
    assert result["elapsed"] < 2.5, result
    # The ticker beats every 0.05 s: the hub kept running while the calls waited.
    assert result["ticks"] >= 5, result


def test_calls_through_an_intercepted_channel_park_only_their_tasks() -> None:
    result = run_json(
        patched_program("""
        class PassOn(grpc.UnaryUnaryClientInterceptor):
            def intercept_unary_unary(self, continuation, details, request):
                return continuation(details, request)

        intercepted = grpc.intercept_channel(channel, PassOn()).unary_unary('/test.Service/Slow')
        start = time.monotonic()
        calls = [corun.spawn(intercepted, b"0.5", timeout=10) for _ in range(20)]
        corun.joinall(calls, raise_error=True)
        elapsed = time.monotonic() - start
        print(json.dumps({"elapsed": elapsed, "answers": [c.value.decode() for c in calls]}))
        """)
    )
    assert result["answers"] == ["0.5"] * 20
    # One after another: 10 s.
    assert result["elapsed"] < 2.5, result


def test_a_server_served_under_corun_answers_concurrent_calls_from_a_plain_client() -> None:
    source = (
        PATCH
        + SERVICE
        + "server, port = start_server()\nprint(port, flush=True)\nserver.wait_for_termination()\n"
    )
    command = [sys.executable, "-c", source]
    with process_group(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        port = int(PipeLines(proc.stdout).readline(timeout=20))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            slow = channel.unary_unary("/test.Service/Slow")
            assert slow(b"0", timeout=10) == b"0"
            start = time.monotonic()
            futures = [slow.future(b"0.5", timeout=10) for _ in range(50)]
            answers = [future.result() for future in futures]
            elapsed = time.monotonic() - start
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    assert answers == [b"0.5"] * 50
    # The server's handlers are tasks: one after another they would take 25 s.
    assert elapsed < 2.5, elapsed


def test_streams_flow_while_other_tasks_run() -> None:
    result = run_json(
        patched_program("""
        count = channel.unary_stream('/test.Service/Count')
        join = channel.stream_unary('/test.Service/Join')
        echo = channel.stream_stream('/test.Service/Echo')
        ticks[0] = 0
        start = time.monotonic()
        streams = [corun.spawn(lambda: [m.decode() for m in count(b'', timeout=10)]) for _ in range(20)]
        corun.joinall(streams, raise_error=True)
        elapsed = time.monotonic() - start
        echoed = [m.decode() for m in echo(iter([b'a', b'b', b'c']), timeout=10)]
        joined = join(iter([b'a', b'b', b'c']), timeout=10).decode()
        print(json.dumps({"elapsed": elapsed, "ticks": ticks[0], "echoed": echoed, "joined": joined,
                          "streams": [s.value for s in streams]}))
        """)
    )
    assert result["streams"] == [["0", "1", "2", "3", "4"]] * 20
    assert result["echoed"] == ["a", "b", "c"]
    assert result["joined"] == "abc"
    # Each stream takes 0.5 s; twenty of them one after another, 10 s.
    assert result["elapsed"] < 2.5, result
    assert result["ticks"] >= 5, result


def test_a_call_past_its_timeout_ends_with_deadline_exceeded() -> None:
    result = run_json(
        patched_program("""
        start = time.monotonic()
        try:
            slow(b"2", timeout=0.3)
        except grpc.RpcError as exc:
            code = exc.code().name
        elapsed = time.monotonic() - start
        print(json.dumps({"code": code, "elapsed": elapsed, "ticks": ticks[0]}))
        """)
    )
    assert result["code"] == "DEADLINE_EXCEEDED"
    assert result["elapsed"] < 1.5, result


def test_a_killed_or_timed_out_task_cancels_its_call_and_the_channel_stays_usable() -> None:
    result = run_json(
        patched_program("""
        count = channel.unary_stream('/test.Service/Count')
        killed = corun.spawn(slow, b"1.5", timeout=10)
        reader = corun.spawn(lambda: [m for m in count(b"", timeout=10)])
        join = channel.stream_unary('/test.Service/Join')
        def slow_requests():
            yield b"a"
            time.sleep(1.5)
            yield b"b"
        joiner = corun.spawn(join, slow_requests(), timeout=10)
        # Once the server runs all three: a call cancelled before it is never run.
        while not {"1.5", "count", "join"}.issubset(started):
            corun.sleep(0.01)
        start = time.monotonic()
        killed.kill()
        reader.kill()
        joiner.kill()
        kill_took = time.monotonic() - start
        start = time.monotonic()
        try:
            with corun.Timeout(0.5):
                slow(b"1.4", timeout=10)
        except corun.Timeout:
            timed_out_after = time.monotonic() - start
        # The server hears of each cancel a little later.
        heard_by = time.monotonic() + 5
        while len(cancelled) < 4 and time.monotonic() < heard_by:
            corun.sleep(0.02)
        after = slow(b"0.1", timeout=5).decode()
        dead = killed.dead and reader.dead and joiner.dead
        print(json.dumps({"kill_took": kill_took, "timed_out_after": timed_out_after, "after": after,
                          "dead": dead, "cancelled": sorted(cancelled)}))
        """)
    )
    assert result["dead"]
    assert result["kill_took"] < 0.5, result
    assert result["timed_out_after"] < 1.0, result
    # The server saw each call end before its time was up, and the next call went through.
    assert result["cancelled"] == ["1.4", "1.5", "count", "join"], result
    assert result["after"] == "0.1"


def test_without_the_grpc_area_grpc_is_left_as_it_is(tmp_path) -> None:
    # The server runs in a plain process: grpc left blocking would hold up
    # a hub serving it in the client's.
    client = tmp_path / "client.py"
    client.write_text(
        textwrap.dedent("""
        import json, sys
        import grpc
        from grpc._cython import cygrpc
        import corun.grpc
        with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as channel:
            answer = channel.unary_unary("/test.Service/Slow")(b"0.1", timeout=5).decode()
        print(json.dumps({"answer": answer, "initialized": corun.grpc.is_initialized(),
                          "hooked": cygrpc.g_gevent_activated}))
        """)
    )
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with process_group([sys.executable, "-c", SERVICE + SERVE], **options) as server:
        port = PipeLines(server.stdout).readline(timeout=20)
        for runner in (["-m", "corun", "--no-grpc"], []):
            proc = run_process([sys.executable, *runner, str(client), port], timeout=60, cwd=ROOT)
            assert proc.returncode == 0, proc.stderr
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            assert result == {"answer": "0.1", "initialized": False, "hooked": False}, runner


def test_call_credentials_callbacks_run_as_tasks_on_the_hub() -> None:
    # grpc asks a metadata plugin for its metadata from one of its own C
    # threads; the plugin must run as a task of the program's hub, where it
    # may wait as tasks do.
    result = run_json(
        PATCH
        + SERVICE
        + textwrap.dedent("""
        import json, threading
        import corun
        from corun import monkey
        from corun.hub import get_hub
        real_ident = monkey.get_original("threading", "get_ident")
        main_thread, hub = real_ident(), get_hub()
        seen = []

        class Plugin(grpc.AuthMetadataPlugin):
            def __call__(self, context, callback):
                task = corun.getcurrent() is not hub
                seen.append({"task": task, "main_thread": real_ident() == main_thread})
                corun.sleep(0.05)
                callback((("x-token", "secret"),), None)

        def token(request, context):
            return dict(context.invocation_metadata()).get("x-token", "none").encode()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        get = grpc.unary_unary_rpc_method_handler(token)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Token", {"Get": get}),))
        port = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
        server.start()
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), grpc.metadata_call_credentials(Plugin())
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            answer = channel.unary_unary("/test.Token/Get")(b"", timeout=10).decode()
        server.stop(None)
        print(json.dumps({"answer": answer, "seen": seen}))
        """)
    )
    assert result["answer"] == "secret"
    assert result["seen"] == [{"task": True, "main_thread": True}]


def test_a_task_interrupted_during_a_wait_in_a_worker_leaves_only_once_the_wait_returned() -> None:
    # grpc frees a completion queue as an interruption goes up through it:
    # the worker waiting on that queue must be done with it first.
    release = _originals.allocate_lock()
    release.acquire()
    returned = []

    def wait_in_c() -> str:  # stands for grpc_completion_queue_next
        release.acquire()
        returned.append(True)
        return "event"

    task = corun.spawn(corun.grpc._WaitPool().apply, wait_in_c)
    corun.sleep(0.05)
    task.kill(block=False)
    corun.sleep(0.3)
    assert not task.dead
    release.release()
    task.join(timeout=5)
    assert task.dead
    assert returned == [True]
    assert isinstance(task.value, corun.GreenletExit)  # the kill went on once the wait was over


def test_an_untested_grpcio_is_refused_by_init_and_left_alone_by_patching() -> None:
    result = run_json("""
        import json, warnings
        import grpc
        grpc.__version__ = "1.99.0"  # a release this integration was not tested with
        import corun.grpc
        try:
            corun.grpc.init()
        except corun.grpc.GrpcNotSupported as exc:
            refused = str(exc)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from corun import monkey; monkey.patch_all()
        from grpc._cython import cygrpc
        print(json.dumps({"refused": refused, "warnings": [str(w.message) for w in caught],
                          "hooked": cygrpc.g_gevent_activated, "initialized": corun.grpc.is_initialized()}))
    """)
    assert "grpcio 1.99.0 is installed" in result["refused"]
    assert "--no-grpc" in result["refused"]
    assert any("1.99.0" in message and "left blocking" in message for message in result["warnings"])
    assert not result["hooked"]
    assert not result["initialized"]
