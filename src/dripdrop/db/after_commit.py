"""Work that waits for a transaction's commit: telling a system outside PostgreSQL about a change
(a scheduler's job withdrawn when its execution is cancelled) must never happen inside the
transaction — a slow or unreachable outside system would keep its row locks held — and never
for a change that was rolled back.

- In DripDrop's own transaction (the facade's ``_call``, which :func:`collecting`), the actions
  run on the caller's thread right after the commit (:func:`run_all`), before the call returns:
  the database change is made and visible whatever the actions do; their failures are logged.
- In a host's transaction (``connection=``), they run on a background thread once the host
  commits (the commit never waits for them) and are dropped if it rolls back.

Actions are best effort by design: the database row stays the source of truth.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, event

log = logging.getLogger("dripdrop")

Action = Callable[[], None]

#: The actions of the facade's transaction running in this context (None: not the facade's).
_collected: ContextVar[list[Action] | None] = ContextVar("dripdrop_after_commit", default=None)


@contextmanager
def collecting() -> Iterator[list[Action]]:
    """Collect the actions deferred within the block; the caller runs them once its transaction
    has committed (:func:`run_all`) and drops them when it has not."""
    actions: list[Action] = []
    token = _collected.set(actions)
    try:
        yield actions
    finally:
        _collected.reset(token)


def after_commit(conn: Connection, action: Action) -> None:
    """Run ``action`` once ``conn``'s transaction has committed; never if it rolls back."""
    actions = _collected.get()
    if actions is not None:
        actions.append(action)
        return
    _on_host_commit(conn, action)


def run_all(actions: list[Action]) -> None:
    """Run the actions of a committed transaction; one failing never stops the others."""
    for action in actions:
        try:
            action()
        except Exception as exc:  # the actions log their own failures; this is a last net
            log.warning("an action after commit failed: %s", type(exc).__name__)


#: Actions deferred in host transactions, by connection, until it commits or rolls back.
_waiting: weakref.WeakKeyDictionary[Connection, list[Action]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _on_host_commit(conn: Connection, action: Action) -> None:
    with _lock:
        actions = _waiting.get(conn)
        if actions is None:  # the first for this connection: listen to its transactions' ends
            actions = _waiting[conn] = []
            event.listen(conn, "commit", _committed)
            event.listen(conn, "rollback", _rolled_back)
        actions.append(action)


def _committed(conn: Connection) -> None:
    # Called as the host commits (just before the driver's COMMIT): an action may start a
    # moment before the commit ends. A commit that then fails leaves the row as it was; a job
    # withdrawn for it is handed out again when its reservation runs out.
    with _lock:
        actions = _waiting.get(conn)
        if not actions:
            return
        _waiting[conn] = []
    for action in actions:
        _put(action)


def _rolled_back(conn: Connection) -> None:
    with _lock:
        if conn in _waiting:
            _waiting[conn] = []


#: Actions waiting for the background thread (host transactions only). Bounded: past this, an
#: action is dropped with a warning rather than memory growing while an outside system hangs.
MAX_WAITING = 10_000
_queue: queue.Queue[Action] | None = None


def _put(action: Action) -> None:
    """Hand an action to the daemon thread that runs host transactions' actions."""
    global _queue
    with _lock:
        if _queue is None:
            _queue = queue.Queue(MAX_WAITING)
            threading.Thread(
                target=_drain, args=(_queue,), name="dripdrop-after-commit", daemon=True
            ).start()
        q = _queue
    try:
        q.put_nowait(action)
    except queue.Full:
        log.warning("%d actions wait for the after-commit thread: one dropped", MAX_WAITING)


def _drain(q: queue.Queue[Action]) -> None:
    while True:
        run_all([q.get()])


__all__ = ["after_commit", "collecting", "run_all"]
