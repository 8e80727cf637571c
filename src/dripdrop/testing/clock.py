"""A controllable clock for tests and simulations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock that only moves when told to. Call it to read the time (it is a ``clock=``)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by a timedelta or by keyword parts: ``advance(days=3, hours=2)``."""
        step = (delta or timedelta()) + timedelta(**kwargs)
        if step < timedelta():
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to an aware datetime."""
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)
            return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
