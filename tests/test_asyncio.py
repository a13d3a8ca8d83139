"""asyncio with corun: asyncio's per-thread state kept per task."""

from __future__ import annotations

from .conftest import run_json


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
