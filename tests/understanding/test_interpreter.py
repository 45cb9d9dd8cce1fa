"""ModelInterpreter: slow models parse off the event loop, one message at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

from intentbridge.types import Interpretation
from intentbridge.understanding import ModelInterpreter, NluModel


class _SlowModel:
    """Parses in 100 ms of CPU-free waiting and records how many parses overlap."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.running = 0
        self.most_at_once = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def parse(self, text: str) -> Interpretation:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.1)
        with self._lock:
            self.running -= 1
        return Interpretation(text=text, intent="x", confidence=1.0)


async def _longest_stall(work: asyncio.Future[Any]) -> float:
    """The longest the event loop went without running a 1 ms ticker while ``work`` ran."""
    longest = 0.0
    last = time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    await work
    return longest


async def test_a_slow_model_parses_off_the_event_loop_one_message_at_a_time() -> None:
    model = _SlowModel("accurate")
    interpreter = ModelInterpreter(cast(NluModel, model))
    messages = [f"m{i}" for i in range(3)]
    work = asyncio.ensure_future(asyncio.gather(*(interpreter.interpret(m) for m in messages)))
    stall = await _longest_stall(work)
    assert [r.text for r in work.result()] == messages
    assert stall < 0.06  # a parse takes 100 ms; the loop never waited for one
    assert model.most_at_once == 1
    assert model.threads and all(name.startswith("nlu-parse") for name in model.threads)


async def test_a_fast_model_parses_inline() -> None:
    model = _SlowModel("fast")
    interpreter = ModelInterpreter(cast(NluModel, model))
    work = asyncio.ensure_future(interpreter.interpret("hello"))
    stall = await _longest_stall(work)
    assert stall >= 0.1  # inline: the loop waited for the parse
    assert model.threads == {threading.current_thread().name}


async def test_offload_overrides_the_choice() -> None:
    model = _SlowModel("fast")
    interpreter = ModelInterpreter(cast(NluModel, model), offload=True)
    await interpreter.interpret("hello")
    assert all(name.startswith("nlu-parse") for name in model.threads)
