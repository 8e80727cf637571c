"""The worker renders from async code: a heavy template must not hold its event loop (issue 11).

``render_fields`` renders inline for a short slice, then starts over on a thread; the render is
bounded by the time limit either way. A template that breaks a limit fails its execution with a
message naming the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from dripdrop import DripDrop
from dripdrop.engine.defs import StepDef
from dripdrop.engine.templating import render_fields
from dripdrop.errors import PermanentError


def inline_step(config: dict[str, Any]) -> StepDef:
    return StepDef(
        id=uuid.uuid4(),
        key="heavy",
        name="Heavy",
        position=1,
        channel="email",
        timing={"type": "immediate"},
        config=config,
        template_type="inline",
        template_content=None,
        template_module=None,
        template_function=None,
        channel_adapter_id=None,
        active=True,
    )


NO_HOOKS = SimpleNamespace(version=SimpleNamespace(has_hooks=False), values={})


async def render_watching_the_loop(step: StepDef, base: dict[str, Any]) -> tuple[Any, float]:
    """(rendered fields or the error raised, longest time the event loop was not running)."""
    loop = asyncio.get_running_loop()
    ticks = [loop.time()]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.002)
            ticks.append(loop.time())

    watch = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        result: Any = await render_fields(step, base, NO_HOOKS, services=None)
    except PermanentError as exc:
        result = exc
    finally:
        ticks.append(loop.time())  # a render that never yielded shows up as this last gap
        watch.cancel()
    return result, max(later - earlier for earlier, later in itertools.pairwise(ticks))


# About 0.3 s of rendering on an idle machine, well within the limits.
HEAVY = "{% for i in items %}{{ i | plus: 1 | modulo: 10 }}{% endfor %}"


async def test_a_heavy_render_does_not_hold_the_event_loop() -> None:
    step = inline_step({"subject": "Hi {{ name }}", "body": HEAVY})
    start = time.monotonic()
    fields, gap = await render_watching_the_loop(step, {"name": "Ada", "items": range(50_000)})
    took = time.monotonic() - start
    assert not isinstance(fields, Exception), fields
    assert fields["subject"] == "Hi Ada"
    assert fields["body"] == "1234567890" * 5000
    assert gap < 0.1, f"the event loop stalled {gap:.3f}s during a {took:.3f}s render"


async def test_a_render_past_the_time_limit_fails_without_holding_the_event_loop() -> None:
    body = "{% for i in (1..50000) %}{% assign s = big | sort | first %}{% endfor %}"
    step = inline_step({"subject": "s", "body": body})
    start = time.monotonic()
    error, gap = await render_watching_the_loop(step, {"big": list(range(20000))})
    assert isinstance(error, PermanentError)
    assert "config.body" in str(error)
    assert "time limit" in str(error)
    assert time.monotonic() - start < 3.0
    assert gap < 0.1


@pytest.fixture
def memory_email(dd: DripDrop) -> None:
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")


@pytest.mark.usefixtures("memory_email")
def test_an_execution_whose_template_breaks_a_limit_fails_with_the_limit(dd: DripDrop) -> None:
    seq = dd.create_sequence(name="Nested", key="nested")
    version = dd.create_sequence_version(seq.id, active=True)
    body = (
        "{% for i in items %}{% for j in items %}{% for k in items %}x"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    dd.create_step(
        version.id,
        name="welcome",
        channel="email",
        timing={"type": "immediate"},
        config={"subject": "Hi", "body": body},
    )
    enrollment = dd.enroll(
        "nested",
        {"type": "User", "id": 1},
        data={"email": "ada@x.io", "items": list(range(1000))},
    )
    start = time.monotonic()
    dd.run_due()
    assert time.monotonic() - start < 4.0
    (execution,) = dd.list_executions(enrollment.id)
    assert execution.state == "failed"
    assert "config.body" in execution.error_message
    assert "loop iteration limit" in execution.error_message
