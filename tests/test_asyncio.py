"""corun.asyncio: the shared loop on the hub, await_ and to_async, asyncio's state per task."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import traceback
from typing import Any

import pytest

import corun
from corun import Greenlet, GreenletExit, Timeout, await_, to_async
from corun.asyncio import HubEventLoop, get_loop
from corun.hub import Hub, LoopExit

from .conftest import expects_loop_exit, run_json

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


# -- the loop ------------------------------------------------------------------


def test_call_soon_from_another_task_wakes_a_parked_loop_at_once() -> None:
    loop = get_loop()
    corun.sleep(0.01)  # the loop task has started and parked, with nothing to do
    ran = corun.Event()
    t0 = time.monotonic()
    loop.call_soon(ran.set)
    assert ran.wait(timeout=1)
    assert time.monotonic() - t0 < 0.2


def test_run_forever_in_one_task_hears_call_soon_and_create_task_from_another() -> None:
    loop = corun.asyncio.loop_factory()
    runner = corun.spawn(loop.run_forever)
    corun.sleep(0.01)
    seen: list[str] = []
    done = corun.Event()

    async def coro() -> None:
        seen.append("task")
        done.set()

    t0 = time.monotonic()
    loop.call_soon(seen.append, "soon")
    loop.create_task(coro())
    assert done.wait(timeout=1)
    assert seen == ["soon", "task"]
    assert time.monotonic() - t0 < 0.2
    loop.call_soon(loop.stop)
    runner.join(timeout=1)
    assert runner.dead
    loop.close()


def test_call_soon_threadsafe_from_a_real_thread_wakes_the_loop() -> None:
    loop = get_loop()
    corun.sleep(0.01)
    got = corun.Event()
    from corun import _originals

    _originals.start_new_thread(lambda: loop.call_soon_threadsafe(got.set), ())
    assert got.wait(timeout=2)


def test_loop_time_is_the_hub_clock(hub: Hub) -> None:
    assert abs(get_loop().time() - hub.clock()) < 0.01
    ticks = iter(range(1000, 10**6))
    hub.clock = lambda: float(next(ticks))
    assert get_loop().time() >= 1000


def test_coroutines_never_run_in_the_hub(hub: Hub) -> None:
    async def where() -> Any:
        await asyncio.sleep(0)
        return corun.getcurrent()

    assert await_(where()) is not hub


def test_debug_mode_accepts_call_soon_from_any_task_of_the_thread() -> None:
    loop = get_loop()
    loop.set_debug(True)
    corun.sleep(0.01)
    hit = corun.Event()
    corun.spawn(loop.call_soon, hit.set).join()
    assert hit.wait(timeout=1)


@expects_loop_exit
def test_loop_exit_is_reported_while_the_shared_loop_is_idle() -> None:
    get_loop()
    corun.sleep(0.01)
    with pytest.raises(LoopExit):
        corun.Event().wait()


# -- await_ ----------------------------------------------------------------------


def test_await_from_ten_tasks_overlaps() -> None:
    async def slow(n: int) -> int:
        await asyncio.sleep(0.3)
        return n

    t0 = time.monotonic()
    tasks = [corun.spawn(await_, slow(i)) for i in range(10)]
    corun.joinall(tasks, raise_error=True)
    assert [t.value for t in tasks] == list(range(10))
    assert time.monotonic() - t0 < 1.5


def test_await_raises_with_the_coroutines_frames() -> None:
    async def inner_failure() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as info:
        await_(inner_failure())
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "inner_failure" in names


def test_kill_of_the_caller_cancels_the_coroutine_and_waits_for_its_finally() -> None:
    log: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("cancelled")
            await asyncio.sleep(0.05)  # the finally takes time: the caller must wait for it
            raise
        finally:
            log.append("finally")

    def caller() -> None:
        try:
            await_(slow())
        finally:
            log.append("caller finally")

    g = corun.spawn(caller)
    corun.sleep(0.05)
    g.kill()
    assert log == ["cancelled", "finally", "caller finally"]


def test_timeout_of_the_caller_cancels_the_coroutine() -> None:
    log: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            log.append("finally")

    with pytest.raises(Timeout), Timeout(0.05):
        await_(slow())
    assert log == ["finally"]
    with pytest.raises(TimeoutError):
        await_(slow(), timeout=0.05)
    assert log == ["finally", "finally"]


def test_contextvars_go_in_and_come_back() -> None:
    async def change() -> str:
        seen = var.get()
        var.set("set by coroutine")
        return seen

    token = var.set("caller")
    assert await_(change()) == "caller"
    assert var.get() == "set by coroutine"
    var.reset(token)


def test_contextvars_inside_a_ctx_run() -> None:
    async def change() -> None:
        var.set(var.get() + "+coroutine")

    outside = var.get()
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    ctx.run(await_, change())
    assert ctx[var] == "in ctx+coroutine"
    assert var.get() == outside


def test_await_in_the_loops_own_task_names_to_async() -> None:
    async def nested() -> None:
        await_(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="to_async"):
        await_(nested())


def test_await_in_a_hub_callback_is_refused(hub: Hub) -> None:
    from corun.hub import BlockingSwitchOutError

    errors: list[BaseException] = []

    def callback() -> None:
        coro = asyncio.sleep(0)
        try:
            await_(coro)
        except BlockingSwitchOutError as exc:
            errors.append(exc)
        finally:
            coro.close()

    hub.run_callback(callback)
    corun.sleep(0.01)
    assert len(errors) == 1


def test_pending_await_fails_when_the_loop_task_dies() -> None:
    async def forever() -> None:
        await asyncio.sleep(10)

    loop = get_loop()
    corun.spawn_later(0.05, lambda: loop.call_soon(loop.stop))
    with pytest.raises(RuntimeError, match="ended"):
        await_(forever())


# -- to_async and awaiting tasks ---------------------------------------------------


def test_to_async_runs_blocking_code_in_tasks_that_overlap() -> None:
    async def main() -> float:
        t0 = asyncio.get_running_loop().time()
        await asyncio.gather(*(to_async(corun.sleep, 0.3) for _ in range(10)))
        return asyncio.get_running_loop().time() - t0

    assert await_(main()) < 1.5


def test_to_async_gives_the_task_a_copy_of_the_coroutines_context() -> None:
    def blocking() -> str:
        seen = var.get()
        var.set("changed in task")
        return seen

    async def main() -> tuple[str, str]:
        var.set("coroutine")
        seen = await to_async(blocking)
        return seen, var.get()

    assert await_(main()) == ("coroutine", "coroutine")


def test_cancelling_to_async_kills_the_task_and_waits_for_it() -> None:
    log: list[str] = []

    def blocking() -> None:
        try:
            corun.sleep(10)
        finally:
            corun.sleep(0.05)
            log.append("task finally")

    async def main() -> None:
        t = asyncio.ensure_future(to_async(blocking))
        await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        log.append("awaiter saw cancel")

    await_(main())
    assert log == ["task finally", "awaiter saw cancel"]


def test_a_task_killed_elsewhere_gives_the_awaiter_cancelled_error() -> None:
    g = corun.spawn(corun.sleep, 10)

    async def main() -> str:
        try:
            await g
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    corun.spawn_later(0.05, g.kill)
    assert await_(main()) == "cancelled"


def test_awaiting_a_greenlet_gives_its_value_or_its_exception() -> None:
    def fail() -> None:
        raise KeyError("x")

    ok = Greenlet.spawn(lambda: 42)
    bad = Greenlet.spawn(fail)
    bad.report_errors = False

    async def main() -> Any:
        value = await ok
        with pytest.raises(KeyError):
            await bad
        return value

    assert await_(main()) == 42


# -- asyncio's state per task --------------------------------------------------------


def test_a_sibling_sees_no_running_loop_while_a_coroutine_waits_in_blocking_code() -> None:
    seen: dict[str, Any] = {}

    async def slow() -> None:
        corun.sleep(0.2)  # a blocking call inside a coroutine parks the loop's task

    def sibling() -> None:
        corun.sleep(0.05)
        seen["running"] = asyncio.events._get_running_loop()
        own = corun.asyncio.loop_factory()
        try:
            seen["run"] = own.run_until_complete(asyncio.sleep(0.01, "own loop"))
        finally:
            own.close()

    g = corun.spawn(sibling)
    asyncio_loop = corun.asyncio.loop_factory()
    with pytest.warns(RuntimeWarning, match="to_async"):
        asyncio_loop.run_until_complete(slow())
    asyncio_loop.close()
    g.join()
    assert seen == {"running": None, "run": "own loop"}


def test_a_blocking_call_in_a_coroutine_warns_once_per_call_site_naming_to_async() -> None:
    async def blocks_twice() -> None:
        for _ in range(2):
            corun.sleep(0.01)  # the same call site twice: one warning
        corun.sleep(0.01)  # another site
        await to_async(corun.sleep, 0.01)  # the right way: no warning

    with pytest.warns(RuntimeWarning, match=r"to_async") as record:
        await_(blocks_twice())
    assert [w.lineno for w in record] == [
        blocks_twice.__code__.co_firstlineno + 2,
        blocks_twice.__code__.co_firstlineno + 3,
    ]
    assert all(w.filename == __file__ for w in record)


def test_patched_asyncio_run_in_sibling_tasks() -> None:
    out = run_json(
        """
        from corun import monkey; monkey.patch_all()
        import asyncio, json, time
        import corun

        async def slow():
            time.sleep(0.3)  # patched: parks this task inside its coroutine
            return "slow"

        async def quick():
            await asyncio.sleep(0.01)
            return "quick"

        out = {}
        def a():
            out["a"] = asyncio.run(slow())
        def b():
            time.sleep(0.05)
            out["running"] = asyncio.events._get_running_loop() is not None
            out["b"] = asyncio.run(quick())
        corun.joinall([corun.spawn(a), corun.spawn(b)], raise_error=True)

        finalized_on = []
        async def agen():
            try:
                yield 1
                yield 2
            finally:
                finalized_on.append(id(asyncio.get_running_loop()))

        async def start_and_block():
            g = agen()
            await g.__anext__()
            time.sleep(0.2)
            return id(asyncio.get_running_loop())

        loops = {}
        def c():
            loops["c"] = asyncio.run(start_and_block())
        def d():
            time.sleep(0.05)
            asyncio.run(quick())
        corun.joinall([corun.spawn(c), corun.spawn(d)], raise_error=True)
        out["agen_on_its_loop"] = finalized_on == [loops["c"]]
        print(json.dumps(out))
        """
    )
    assert out == {"a": "slow", "b": "quick", "running": False, "agen_on_its_loop": True}


def test_to_async_and_awaited_tasks_on_a_plain_asyncio_run_under_patching() -> None:
    out = run_json(
        """
        from corun import monkey; monkey.patch_all()
        import asyncio, json, time
        import corun

        async def main():
            t0 = time.monotonic()
            values = await asyncio.gather(*(corun.to_async(time.sleep, 0.3) for _ in range(10)))
            return len(values), time.monotonic() - t0, await corun.spawn(lambda: "task")

        count, elapsed, value = asyncio.run(main())
        print(json.dumps([count, elapsed < 1.2, value]))
        """
    )
    assert out == [10, True, "task"]


def test_event_loop_policy_gives_plain_asyncio_code_corun_loops_under_patching() -> None:
    out = run_json(
        """
        from corun import monkey; monkey.patch_all()
        import asyncio, json, time
        import corun, corun.asyncio

        asyncio.set_event_loop_policy(corun.asyncio.EventLoopPolicy())

        # A loop running in one task hears call_soon and create_task from another at once.
        loop = asyncio.new_event_loop()
        loop.set_debug(True)  # its thread check lets every task of the thread in
        runner = corun.spawn(loop.run_forever)
        time.sleep(0.05)
        heard = corun.Event()

        async def coro():
            heard.set()

        t0 = time.monotonic()
        loop.call_soon(lambda: None)
        loop.create_task(coro())
        heard.wait(5)
        woke_in = time.monotonic() - t0
        loop.call_soon(loop.stop)
        runner.join()
        loop.close()

        # asyncio.run in ten tasks at once, each on its own loop on the hub.
        async def nap():
            await asyncio.sleep(0.3)
            return type(asyncio.get_running_loop()).__name__

        t0 = time.monotonic()
        tasks = [corun.spawn(asyncio.run, nap()) for _ in range(10)]
        corun.joinall(tasks, raise_error=True)
        print(json.dumps([woke_in < 0.2, sorted({t.value for t in tasks}), time.monotonic() - t0 < 1.2]))
        """
    )
    assert out == [True, ["HubEventLoop"], True]


def test_a_loop_made_in_one_thread_runs_in_another_on_that_threads_hub() -> None:
    loop = corun.asyncio.loop_factory()

    def in_a_real_thread() -> Any:
        return loop.run_until_complete(asyncio.sleep(0.05, corun.get_hub()))

    try:
        ran_on = corun.get_hub().threadpool.apply(in_a_real_thread)
    finally:
        loop.close()
    assert ran_on is not corun.get_hub()


def test_thread_check_in_debug_mode_compares_os_threads() -> None:
    loop = get_loop()
    loop.set_debug(True)
    corun.sleep(0.01)
    errors: list[BaseException] = []
    done = threading.Event()

    def other_thread() -> None:
        try:
            loop.call_soon(lambda: None)
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            done.set()

    from corun import _originals

    _originals.start_new_thread(other_thread, ())
    corun.get_hub().threadpool.apply(done.wait, (5,))
    assert len(errors) == 1
    loop.set_debug(False)


def test_greenlet_exit_of_killed_await_is_reraised() -> None:
    def caller() -> None:
        await_(asyncio.sleep(10))

    g = corun.spawn(caller)
    corun.sleep(0.02)
    g.kill()
    assert isinstance(g.value, GreenletExit)


# -- the seams -------------------------------------------------------------------


def test_timeout_and_kill_aimed_at_the_loops_task_are_refused() -> None:
    async def timed() -> None:
        with Timeout(0.01):
            await asyncio.sleep(0.05)

    with pytest.raises(RuntimeError, match=r"asyncio\.timeout"):
        await_(timed())

    async def loop_task() -> Any:
        return corun.getcurrent()

    task = await_(loop_task())
    with pytest.raises(RuntimeError, match=r"asyncio\.timeout"):
        task.kill()
    assert await_(asyncio.sleep(0.01, "still running")) == "still running"


def test_run_runs_main_on_the_shared_loop_and_shuts_it_down() -> None:
    log: list[str] = []
    keep: list[Any] = []

    async def background() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            log.append("background cancelled")

    async def gen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            log.append("generator closed")

    async def main() -> Any:
        keep.append(asyncio.ensure_future(background()))
        g = gen()
        await g.__anext__()
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    loop = corun.asyncio.run(main())
    assert loop.is_closed()
    assert sorted(log) == ["background cancelled", "generator closed"]
    assert get_loop() is not loop


def test_run_and_shutdown_are_refused_in_the_loops_own_task() -> None:
    async def inner() -> None:
        pass

    async def nested_run() -> None:
        corun.asyncio.run(inner())

    async def nested_shutdown() -> None:
        corun.asyncio.shutdown()

    with pytest.raises(RuntimeError, match="coroutine of the shared loop"):
        await_(nested_run())
    with pytest.raises(RuntimeError, match="its own task"):
        await_(nested_shutdown())
    assert await_(asyncio.sleep(0, "alive")) == "alive"


@pytest.mark.skipif(not hasattr(asyncio, "Runner"), reason="asyncio.Runner is new in 3.11")
def test_loop_factory_gives_runner_a_private_loop_on_the_hub() -> None:
    async def main() -> Any:
        # Other tasks run while this private loop waits.
        await asyncio.sleep(0.3)
        return type(asyncio.get_running_loop())

    def one() -> Any:
        with asyncio.Runner(loop_factory=corun.asyncio.loop_factory) as runner:
            return runner.run(main())

    t0 = time.monotonic()
    tasks = [corun.spawn(one) for _ in range(10)]
    corun.joinall(tasks, raise_error=True)
    assert {t.value for t in tasks} == {HubEventLoop}
    assert time.monotonic() - t0 < 1.5


def test_run_in_executor_and_to_thread_use_real_os_threads() -> None:
    from corun import _originals

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(None, _originals.get_ident)
        b = await asyncio.to_thread(_originals.get_ident)
        t0 = loop.time()
        await asyncio.gather(*(asyncio.to_thread(_originals.real_sleep, 0.3) for _ in range(5)))
        return a, b, loop.time() - t0

    a, b, elapsed = await_(main())
    assert _originals.get_ident() not in (a, b)
    assert elapsed < 1.2


def test_add_signal_handler_goes_through_corun() -> None:
    import os
    import signal

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        got: list[int] = []
        heard = asyncio.Event()

        def on_signal(n: int) -> None:
            got.append(n)
            heard.set()

        loop.add_signal_handler(signal.SIGUSR1, on_signal, 7)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(heard.wait(), 2)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)
        return got

    before = signal.getsignal(signal.SIGUSR1)
    assert await_(main()) == [7]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_at_exit_the_shared_loops_tasks_and_generators_are_finished() -> None:
    out = run_json(
        """
        import asyncio, atexit, json, sys
        import corun

        log = []
        async def background():
            try:
                await asyncio.sleep(10)
            finally:
                log.append("task cancelled")

        async def gen():
            try:
                yield 1
                yield 2
            finally:
                log.append("generator closed")

        agens = []
        async def start():
            asyncio.ensure_future(background())
            g = gen()
            agens.append(g)
            await g.__anext__()
            await asyncio.sleep(0)

        # Registered before the shared loop's own exit step (made on first use): runs after it.
        atexit.register(lambda: print(json.dumps(sorted(log))))
        corun.await_(start())
        """
    )
    assert out == ["generator closed", "task cancelled"]


def test_fork_child_drops_the_parents_loop() -> None:
    out = run_json(
        """
        import asyncio, json, os
        import corun
        from corun.asyncio import get_loop

        parent_loop = get_loop()
        corun.await_(asyncio.sleep(0))
        pid = os.fork()
        if pid == 0:
            try:
                child_loop = get_loop()
                ok = child_loop is not parent_loop and corun.await_(asyncio.sleep(0.01, "child")) == "child"
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(json.dumps([os.waitstatus_to_exitcode(status), corun.await_(asyncio.sleep(0.01, "parent"))]))
        """
    )
    assert out == [0, "parent"]


# -- real libraries, in patched interpreters, over loopback ---------------------------

_AIOHTTP_SERVER = """
    from corun import monkey; monkey.patch_all()
    import asyncio, json, sys, time, warnings
    # None of these libraries may block the shared loop's task.
    warnings.filterwarnings("error", message="a coroutine on the asyncio loop made a blocking call")
    import corun
    from aiohttp import web

    async def slow(request):
        await asyncio.sleep(0.3)
        return web.Response(text="slow")

    async def blocking(request):
        await corun.to_async(time.sleep, 0.3)  # patched: waits in a task of its own
        return web.Response(text="blocking")

    async def start():
        app = web.Application()
        app.router.add_get("/slow", slow)
        app.router.add_get("/blocking", blocking)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, runner.addresses[0][1]

    runner, port = corun.await_(start())
    base = f"http://127.0.0.1:{port}"

    def ten_at_once(fetch):
        t0 = time.monotonic()
        tasks = [corun.spawn(fetch) for _ in range(10)]
        corun.joinall(tasks, raise_error=True)
        return [t.value for t in tasks], time.monotonic() - t0
"""


def test_aiohttp_server_with_a_shared_session_and_blocking_clients() -> None:
    out = run_json(
        _AIOHTTP_SERVER
        + """
    import urllib.request
    import requests
    from aiohttp import ClientSession

    async def make_session():
        return ClientSession()

    session = corun.await_(make_session())

    async def get(path):
        async with session.get(base + path) as r:
            return await r.text()

    out = {}
    out["session"] = ten_at_once(lambda: corun.await_(get("/slow")))
    out["urllib"] = ten_at_once(lambda: urllib.request.urlopen(base + "/slow").read().decode())
    out["requests"] = ten_at_once(lambda: requests.get(base + "/blocking").text)
    corun.await_(session.close())
    corun.await_(runner.cleanup())
    print(json.dumps(out))
    """
    )
    assert out["session"][0] == ["slow"] * 10
    assert out["urllib"][0] == ["slow"] * 10
    assert out["requests"][0] == ["blocking"] * 10
    # Ten requests of 0.3 s each: together, not one after another (3 s).
    for _, elapsed in out.values():
        assert elapsed < 1.2


def test_httpx_websockets_streams_and_subprocesses_on_the_shared_loop() -> None:
    out = run_json(
        _AIOHTTP_SERVER
        + """
    import httpx
    import websockets

    async def with_httpx():
        async with httpx.AsyncClient() as client:
            t0 = time.monotonic()
            rs = await asyncio.gather(*(client.get(base + "/slow") for _ in range(10)))
            return [r.text for r in rs], time.monotonic() - t0

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def websocket_round_trip():
        async with websockets.serve(echo, "127.0.0.1", 0) as server:
            ws_port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{ws_port}") as client:
                await client.send("hello")
                return await client.recv()

    async def streams():
        async def handle(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"ping\\n")
        await writer.drain()
        line = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return line.decode()

    async def child():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; print(sys.stdin.read().upper())",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await proc.communicate(b"abc")
        return stdout.decode().strip(), proc.returncode

    out = {
        "httpx": corun.await_(with_httpx()),
        "websocket": corun.await_(websocket_round_trip()),
        "streams": corun.await_(streams()),
        "subprocess": corun.await_(child()),
    }
    corun.await_(runner.cleanup())
    print(json.dumps(out))
    """
    )
    texts, elapsed = out["httpx"]
    assert texts == ["slow"] * 10
    assert elapsed < 1.2
    assert out["websocket"] == "hello"
    assert out["streams"] == "PING\n"
    assert out["subprocess"] == ["ABC", 0]


def test_greenlet_spawn_style_bridge_with_a_blocking_call_inside_a_coroutine() -> None:
    # SQLAlchemy's asyncio layer runs sync code in a raw greenlet under a coroutine
    # and switches back to await; a blocking call in there parks the loop's task.
    out = run_json(
        """
        from corun import monkey; monkey.patch_all()
        import asyncio, json, time
        import greenlet
        import corun

        def await_only(awaitable):
            return greenlet.getcurrent().parent.switch(awaitable)

        async def greenlet_spawn(fn):
            child = greenlet.greenlet(fn)
            result = child.switch()
            while not child.dead:
                result = child.switch(await result)
            return result

        def sync_code():
            time.sleep(0.05)  # blocking, patched
            return await_only(asyncio.sleep(0.01, "awaited"))

        print(json.dumps(corun.await_(greenlet_spawn(sync_code))))
        """
    )
    assert out == "awaited"
