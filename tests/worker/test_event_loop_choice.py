"""The loops DripDrop runs itself: uvloop's by default, asyncio's on request, a clear error for
anything else (worker/loop_tuning.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from dripdrop.errors import ConfigurationError
from dripdrop.worker.loop_tuning import run


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIPDROP_EVENT_LOOP", raising=False)
    assert run(_loop_type()) is uvloop.Loop


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIPDROP_EVENT_LOOP", "asyncio")
    assert not issubclass(run(_loop_type()), uvloop.Loop)


def test_an_unknown_choice_names_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIPDROP_EVENT_LOOP", "trio")
    with pytest.raises(
        ConfigurationError, match="DRIPDROP_EVENT_LOOP must be 'uvloop' or 'asyncio'"
    ):
        run(_loop_type())


def test_run_due_works_on_either_loop(dd, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker_support import one_step_sequence

    one_step_sequence(dd)
    for choice, n in (("asyncio", 2), ("uvloop", 3)):
        monkeypatch.setenv("DRIPDROP_EVENT_LOOP", choice)
        for i in range(n):
            dd.enroll(
                "s", {"type": "User", "id": f"{choice}{i}"}, data={"email": f"{choice}{i}@x.io"}
            )
        assert dd.run_due().sent == n
