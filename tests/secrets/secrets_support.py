"""Helpers for the secrets tests: local servers that echo credentials, the rows a run left, and
every form a secret could leak in."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import text

SUBSCRIBER = {"type": "User", "id": 1}


def forms(secret: str, user: str | None = None) -> set[str]:
    """What must never be found: the secret raw, percent-encoded, base64, and (with ``user``)
    the base64 of the HTTP Basic pair; plus each half, in case a cut left one."""
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    found.add(base64.b64encode(secret.encode()).decode())
    if user is not None:
        found.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    found |= {secret[: len(secret) // 2 + 1], secret[len(secret) // 2 :]}
    return found


def leaks(haystack: str, secret: str, user: str | None = None) -> list[str]:
    """The forms of ``secret`` found in ``haystack`` (empty when clean)."""
    return sorted(f for f in forms(secret, user) if f in haystack)


def execution_rows(dd: Any) -> list[Any]:
    """Every step execution of the instance's schema."""
    with dd.runtime.engine.begin() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id, state, response, response::text AS response_text, error_message "
                    f'FROM "{dd.schema}".step_executions ORDER BY scheduled_for'
                )
            )
        )


def one_step(dd: Any, channel: str, config: dict[str, Any], adapter_id: Any = None) -> None:
    """An active sequence ``s`` with one immediate step, and an enrollment in it."""
    seq = dd.create_sequence(name="S", key="s")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        version.id,
        name="only",
        channel=channel,
        config={**config, "max_retries": 0},
        channel_adapter_id=adapter_id,
    )
    dd.enroll("s", SUBSCRIBER, data={"email": "ada@example.com", "phone": "+15551234567"})


@contextmanager
def worker(dd: Any, **options: Any) -> Iterator[Callable[[Callable[[], bool]], None]]:
    """``run_worker`` in a thread; yields ``wait_for(predicate)``; stops it on exit."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            dd.run_worker(stop_event=stop, poll_interval=0.1, **options)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert not failure, failure
            assert time.monotonic() < deadline, "the worker did not get there in time"
            time.sleep(0.05)

    try:
        yield wait_for
    finally:
        stop.set()
        thread.join(30)
    assert not failure, failure
