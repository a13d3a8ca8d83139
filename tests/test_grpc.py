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

from .conftest import ROOT, PipeLines, process_group, run_json, run_process, ticker

grpc = pytest.importorskip("grpc")

# A server in the program's own process: Slow sleeps 0.5 s (or the seconds
# the request names), Count streams back five numbers 0.1 s apart, Echo
# streams each request back; cancelled[] collects the calls the server saw
# cancelled by their clients.
SERVICE = """
import time
from concurrent import futures
import grpc

cancelled = []

def slow(request, context):
    context.add_callback(lambda: cancelled.append(request))
    time.sleep(float(request or b"0.5"))
    return request or b"done"

def count(request, context):
    for i in range(5):
        time.sleep(0.1)
        yield str(i).encode()

def echo(requests, context):
    for request in requests:
        yield request

HANDLER = grpc.method_handlers_generic_handler("test.Service", {
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
    "Count": grpc.unary_stream_rpc_method_handler(count),
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
        echo = channel.stream_stream('/test.Service/Echo')
        ticks[0] = 0
        start = time.monotonic()
        streams = [corun.spawn(lambda: [m.decode() for m in count(b'', timeout=10)]) for _ in range(20)]
        corun.joinall(streams, raise_error=True)
        elapsed = time.monotonic() - start
        echoed = [m.decode() for m in echo(iter([b'a', b'b', b'c']), timeout=10)]
        print(json.dumps({"elapsed": elapsed, "ticks": ticks[0], "echoed": echoed,
                          "streams": [s.value for s in streams]}))
        """)
    )
    assert result["streams"] == [["0", "1", "2", "3", "4"]] * 20
    assert result["echoed"] == ["a", "b", "c"]
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


def test_a_killed_task_cancels_its_call_and_the_channel_stays_usable() -> None:
    result = run_json(
        patched_program("""
        caller = corun.spawn(slow, b"1.5", timeout=10)
        corun.sleep(0.3)
        start = time.monotonic()
        caller.kill()
        kill_took = time.monotonic() - start
        corun.sleep(0.3)  # for the server to hear of the cancel
        after = slow(b"0.1", timeout=5).decode()
        print(json.dumps({"kill_took": kill_took, "after": after, "dead": caller.dead,
                          "cancelled": [c.decode() for c in cancelled]}))
        """)
    )
    assert result["dead"]
    assert result["kill_took"] < 0.5, result
    # The server saw the killed task's call end early, and the next call went through.
    assert "1.5" in result["cancelled"], result
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
