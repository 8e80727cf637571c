"""The fence's lookahead (worker/fence.py): a fence query also confirms the executions next in
line; such an answer is used only while fresh (AHEAD_FRESH) and for the recipient it checked,
otherwise the execution is confirmed again by a query of its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

from dripdrop.worker import fence as fence_module
from dripdrop.worker.fence import AHEAD_FRESH, LOOKAHEAD, Ahead, Fence


class Direct:
    """The fence's connection, answering from ``tokens`` (execution id → lease token): each
    query is recorded with the ids it asked about."""

    def __init__(self) -> None:
        self.tokens: dict[str, Any] = {}
        self.queries: list[list[str]] = []

    async def confirm(self, jobs: list[Any]) -> tuple[dict[str, Any], list[str | None]]:
        ids = [job.execution.id_text for job in jobs]
        self.queries.append(ids)
        return {i: self.tokens[i] for i in ids if i in self.tokens}, [None] * len(jobs)

    async def aclose(self) -> None:
        pass


def make_jobs(n: int, direct: Direct) -> list[Any]:
    batch: list[Any] = []
    for i in range(n):
        id_text = str(uuid.uuid4())
        token = uuid.uuid4()
        direct.tokens[id_text] = token
        execution = SimpleNamespace(
            id_text=id_text, scheduled_for=None, retry_count=0, adapter_id=None
        )
        batch.append(
            SimpleNamespace(
                execution=execution,
                token=token,
                recipient_key=None,
                step=None,
                now=None,
                batch=batch,
                position=i,
                ahead=None,
                confirmed_at=None,
            )
        )
    return batch


def new_fence(direct: Direct) -> Fence:
    return Fence(SimpleNamespace(rt=None), direct)  # type: ignore[arg-type]


async def test_one_query_confirms_the_next_executions_and_they_need_none_of_their_own() -> None:
    direct = Direct()
    jobs = make_jobs(LOOKAHEAD + 1, direct)
    fence = new_fence(direct)
    assert await fence.check(jobs[0]) is None
    assert direct.queries == [[j.execution.id_text for j in jobs]]
    for job in jobs[1:]:
        assert await fence.check(job) is None
        assert job.confirmed_at is not None
    assert len(direct.queries) == 1


async def test_an_answer_taken_ahead_that_grew_old_is_asked_again_and_sees_the_change() -> None:
    direct = Direct()
    jobs = make_jobs(2, direct)
    fence = new_fence(direct)
    assert await fence.check(jobs[0]) is None
    assert jobs[1].ahead is not None  # confirmed ahead, as valid
    # Since then its claim was lost (paused, or its lease passed on) and time went by.
    direct.tokens[jobs[1].execution.id_text] = uuid.uuid4()
    await asyncio.sleep(AHEAD_FRESH * 2)
    outcome = await fence.check(jobs[1])
    assert outcome is not None and outcome.kind == "fenced"
    assert len(direct.queries) == 2 and direct.queries[1] == [jobs[1].execution.id_text]


async def test_an_answer_taken_ahead_for_another_recipient_is_not_used() -> None:
    direct = Direct()
    jobs = make_jobs(2, direct)
    fence = new_fence(direct)
    await fence.check(jobs[0])
    jobs[1].recipient_key = "x@example.com"  # rendering told the recipient after the answer
    await fence.check(jobs[1])
    assert len(direct.queries) == 2


async def test_a_confirmation_records_when_its_query_was_asked() -> None:
    direct = Direct()
    [job] = make_jobs(1, direct)
    fence = new_fence(direct)
    before = time.monotonic()
    await fence.check(job)
    assert job.confirmed_at is not None and before <= job.confirmed_at <= time.monotonic()


def test_the_lookahead_skips_executions_whose_recipient_only_rendering_tells() -> None:
    direct = Direct()
    jobs = make_jobs(4, direct)
    jobs[2].recipient_key = fence_module.PENDING
    found = fence_module.upcoming(jobs[0], {jobs[0].execution.id_text})
    assert found == [jobs[1], jobs[3]]


def test_an_answer_taken_ahead_half_way_to_stale_is_taken_again_a_fresh_one_is_not() -> None:
    direct = Direct()
    jobs = make_jobs(4, direct)
    now = time.monotonic()
    jobs[1].ahead = Ahead(now, jobs[1].token, None, None)  # fresh: it stays as it is
    jobs[2].ahead = Ahead(now - AHEAD_FRESH * 0.6, jobs[2].token, None, None)  # expires soon
    found = fence_module.upcoming(jobs[0], {jobs[0].execution.id_text})
    assert found == [jobs[2], jobs[3]]


# -- pauses racing a real drain ---------------------------------------------------------------

SENT_AT: dict[str, float] = {}  # enrollment id -> monotonic time its request reached the provider


class _Clocked:
    """A network provider (fenced, not in-process) that notes when each request arrives."""

    async def send(self, message: Any, adapter: Any, ctx: Any) -> Any:
        from dripdrop.channels import DeliveryResult

        SENT_AT[message.metadata["enrollment_id"]] = time.monotonic()
        await asyncio.sleep(0.02)
        return DeliveryResult(status="sent")


def _register_clocked() -> None:
    from dripdrop.channels import Fields, ProviderSpec, register

    register(ProviderSpec("email", "clocked_test", Fields, Fields, _Clocked))


def test_pauses_racing_a_drain_stop_every_request_confirmed_before_them(dd) -> None:
    """A drain at concurrency 10 (the lookahead confirms executions up to 32 ahead) while
    another thread pauses a third of the enrollments one by one. A request may reach the
    provider after its enrollment's pause committed only on a confirmation asked before the
    commit and at most FENCE_FRESH old: so never later than FENCE_FRESH after the commit
    returned. Every other enrollment gets its message once; a paused one that did not is
    held, and sent once resumed."""
    import random
    import threading

    from worker_support import one_step_sequence

    from dripdrop.errors import ValidationError
    from dripdrop.worker.slots import FENCE_FRESH

    _register_clocked()
    SENT_AT.clear()
    one_step_sequence(dd, provider="clocked_test")
    enrollments = [
        dd.enroll("s", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"}) for i in range(300)
    ]
    # From the later ones (claims go in order), so that most pauses come before their turn.
    targets = sorted(random.Random(7).sample(enrollments[50:], 100), key=lambda e: str(e.id))
    paused_at: dict[str, float] = {}
    started = threading.Event()

    def pauser() -> None:
        started.wait(10)
        for e in targets:
            try:
                dd.pause_enrollment(e.id)
            except ValidationError:  # completed already: its message went out before
                continue
            paused_at[str(e.id)] = time.monotonic()  # after the commit returned

    thread = threading.Thread(target=pauser)
    thread.start()
    original = _Clocked.send

    async def first_send_starts_the_pauser(self: Any, message: Any, adapter: Any, ctx: Any) -> Any:
        started.set()
        return await original(self, message, adapter, ctx)

    _Clocked.send = first_send_starts_the_pauser  # type: ignore[method-assign]
    try:
        summary = dd.run_due(concurrency=10)
    finally:
        _Clocked.send = original  # type: ignore[method-assign]
        thread.join(30)
    late = {
        k: round((SENT_AT[k] - at) * 1000, 1)
        for k, at in paused_at.items()
        if k in SENT_AT and SENT_AT[k] > at + FENCE_FRESH
    }
    assert not late, f"sent this many ms after the pause committed: {late}"
    held = [k for k in paused_at if k not in SENT_AT]
    assert len(held) >= 10, "too few pauses came in time to stop a request: no race was run"
    assert summary.sent == len(SENT_AT) == 300 - len(held)
    for k in held:
        dd.resume_enrollment(uuid.UUID(k))
    assert dd.run_due(concurrency=10).sent == len(held)
    assert len(SENT_AT) == 300
