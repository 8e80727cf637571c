"""The worker raises the garbage collector's thresholds while it loops, and restores them."""

from __future__ import annotations

import gc
from typing import Any

from worker_support import enroll_n, one_step_sequence

from dripdrop.channels import AdapterInfo, DeliveryResult, Fields, Message, ProviderSpec, register
from dripdrop.worker.gc_tuning import RELAXED, relaxed_gc


def test_relaxed_gc_raises_thresholds_and_restores_them_after_nesting() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(500, 30, 5)
        with relaxed_gc():
            assert gc.get_threshold() == (RELAXED[0], 30, RELAXED[2])  # never lowered
            with relaxed_gc():
                assert gc.get_threshold()[0] == RELAXED[0]
            assert gc.get_threshold()[0] == RELAXED[0]  # the outer block still runs
        assert gc.get_threshold() == (500, 30, 5)
    finally:
        gc.set_threshold(*before)


THRESHOLDS_SEEN: list[tuple[int, int, int]] = []


class ThresholdProbe:
    """Delivers nothing; notes the collector's thresholds while the worker runs the job."""

    async def send(self, message: Message, adapter: AdapterInfo, ctx: Any) -> DeliveryResult:
        THRESHOLDS_SEEN.append(gc.get_threshold())
        return DeliveryResult(status="sent")


register(ProviderSpec("email", "gc_probe", Fields, Fields, ThresholdProbe, "Test probe"))


def test_run_due_relaxes_the_collector_only_while_it_drains(dd: Any) -> None:
    one_step_sequence(dd, provider="gc_probe")
    enroll_n(dd, 5)
    before = gc.get_threshold()
    THRESHOLDS_SEEN.clear()
    assert dd.run_due().sent == 5
    assert len(THRESHOLDS_SEEN) == 5
    assert all(t[0] >= RELAXED[0] and t[2] >= RELAXED[2] for t in THRESHOLDS_SEEN)
    assert gc.get_threshold() == before
