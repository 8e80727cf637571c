"""Fixtures of the scheduler tests: a quick sequence builder on memory providers, and (for the
Celery tests) the chaos tests' sink and process helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "chaos"))  # chaos_support: the webhook sink, deadlines
sys.path.insert(0, str(HERE.parent / "scale"))  # scale_support: the sink, patient on a busy machine


class Flow:
    """A sequence with email steps on the memory provider: ``flow.step(name, **kw)``."""

    def __init__(self, dd: Any, key: str = "flow") -> None:
        self.dd = dd
        self.key = key
        dd.create_channel_adapter(name="mem", channel="email", provider="memory")
        self.seq = dd.create_sequence(name=key.title(), key=key)
        self.version = dd.create_sequence_version(self.seq.id, active=True)

    def step(self, name: str, **kw: Any) -> Any:
        kw.setdefault("config", {"subject": name, "body": "b"})
        return self.dd.create_step(self.version.id, name=name, channel="email", **kw)

    def enroll(self, sid: Any = 1) -> Any:
        return self.dd.enroll(self.key, {"type": "User", "id": sid}, data={"email": f"u{sid}@x.io"})

    def executions(self, enrollment: Any) -> list[Any]:
        return self.dd.list_executions(enrollment.id)


@pytest.fixture
def flow(dd: Any) -> Flow:
    return Flow(dd)


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``start_sink(delay=0.0)``: the chaos tests' webhook sink as its own process (it logs every
    request, checks its signature, before answering)."""
    from chaos_support import SinkProcess
    from scale_support import start_sink as start_sink_process

    sinks: list[SinkProcess] = []

    def start(delay: float = 0.0) -> SinkProcess:
        sink = start_sink_process(tmp_path / f"sink-{len(sinks) + 1}", delay)
        sinks.append(sink)
        return sink

    try:
        yield start
    finally:
        for sink in sinks:
            sink.stop()
