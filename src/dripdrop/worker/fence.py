"""The fence: a delivery that had to wait (hooks, an external template, a slow lane) confirms its
claim just before the provider gets the message.

Between a claim and a delivery, an enrollment may be paused, unenrolled, restarted or exited, and
a lease may run out and pass to another worker. Deliveries reaching the fence at about the same
time share one query (``worker/queries.py: FENCE``), so a batch of webhooks costs a round trip or
two, not one each. In-process deliveries run right after their claim and skip it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dripdrop.engine.process import Job, Outcome, held_outcome, released_outcome
from dripdrop.worker.batch import confirm_claims

log = logging.getLogger("dripdrop.worker")


class Fence:
    def __init__(self, db: Any) -> None:
        self.db = db
        self._waiting: dict[str, tuple[Job, asyncio.Future[Outcome | None]]] = {}
        self._flushing: asyncio.Task[None] | None = None

    async def check(self, job: Job) -> Outcome | None:
        """None when the delivery may go ahead; else the outcome to record instead: held (the
        enrollment was paused or ended, or the claim is no longer ours — the record then writes
        nothing), or released when the database could not say."""
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._waiting[job.execution.id_text] = (job, future)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other deliveries of this moment reach the fence
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    tokens = await self.db.run(confirm_claims, list(batch))
                except Exception as exc:
                    log.warning("could not confirm %d claim(s) (%s): released", len(batch), exc)
                    for job, future in batch.values():
                        if not future.done():
                            future.set_result(released_outcome(job))
                    continue
                for id_text, (job, future) in batch.items():
                    if future.done():
                        continue
                    ok = tokens.get(id_text) == job.token
                    future.set_result(None if ok else held_outcome(job, "fenced"))
        finally:
            self._flushing = None
