"""A DripDrop on a throwaway schema with a fake clock, for users' tests and ours."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from dripdrop.channels.providers.dev import DEFAULT_OUTBOX, SentMessage
from dripdrop.records import RunSummary
from dripdrop.testing.clock import FakeClock


def outbox(channel: str | None = None) -> list[SentMessage]:
    """Messages delivered by ``memory`` providers in this process (optionally one channel)."""
    return DEFAULT_OUTBOX.all(channel)


def clear_outbox() -> None:
    """Forget every memory delivery."""
    DEFAULT_OUTBOX.clear()


class TestEnv:
    """``dd`` on a fresh schema, ``clock`` to move time, ``advance_and_run`` to time-travel."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        database_url: str | None = None,
        *,
        schema: str | None = None,
        clock: FakeClock | None = None,
        **options: Any,
    ) -> None:
        from dripdrop import DripDrop
        from dripdrop.crypto import generate_key

        self.clock = clock or FakeClock()
        self.schema = schema or f"dd_test_{uuid.uuid4().hex[:12]}"
        url = database_url or os.environ.get("DRIPDROP_TEST_DATABASE_URL")
        options.setdefault("encryption_key", generate_key())
        self.dd = DripDrop(url, schema=self.schema, clock=self.clock, **options)
        self.dd.setup()
        clear_outbox()

    def advance_and_run(self, delta: timedelta | None = None, **kwargs: float) -> RunSummary:
        """Move the clock, then run everything due."""
        self.clock.advance(delta, **kwargs)
        return self.dd.run_due()

    def outbox(self, channel: str | None = None) -> list[SentMessage]:
        return outbox(channel)

    def close(self, drop: bool = True) -> None:
        """Drop the schema and release connections."""
        if drop:
            with self.dd.runtime.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self.dd.close()
        clear_outbox()
