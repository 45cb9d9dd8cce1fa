"""Deadlines travel in a context variable and only ever tighten."""

from __future__ import annotations

import asyncio

import pytest

from intentbridge.integration.deadline import current_deadline, deadline_scope, time_left
from intentbridge.integration.middleware import TimeoutMiddleware, compose
from intentbridge.types import Call, Result

CALL = Call(backend="b", operation="o", method="GET", path="/")


def test_no_deadline_outside_a_scope() -> None:
    assert time_left() is None
    assert current_deadline() is None


def test_inner_scopes_cannot_extend_the_outer_one() -> None:
    with deadline_scope(1.0) as outer:
        with deadline_scope(10.0) as inner:
            assert inner == outer
        with deadline_scope(0.5) as tighter:
            assert tighter < outer
        assert current_deadline() == outer
    assert time_left() is None


async def test_deadline_is_per_task() -> None:
    async def seen() -> float | None:
        return time_left()

    with deadline_scope(1.0):
        inside = asyncio.create_task(seen())
    outside = asyncio.create_task(seen())
    left = await inside
    assert left is not None
    assert 0 < left <= 1.0
    assert await outside is None


async def test_timeout_middleware_sets_the_deadline_below_it() -> None:
    seen: list[float | None] = []

    async def endpoint(call: Call) -> Result:
        seen.append(time_left())
        return Result(call=call, outcome="ok")

    await compose([TimeoutMiddleware(2.0)], endpoint)(CALL)
    assert seen[0] is not None
    assert 1.9 < seen[0] <= 2.0


def test_timeout_middleware_needs_positive_seconds() -> None:
    with pytest.raises(ValueError, match="positive"):
        TimeoutMiddleware(0)
