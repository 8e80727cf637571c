"""While it loops the worker raises the garbage collector's thresholds and shortens the GIL
switch interval, and restores both afterwards."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest
from worker_support import enroll_n, one_step_sequence

from dripdrop.channels import AdapterInfo, DeliveryResult, Fields, Message, ProviderSpec, register
from dripdrop.worker.loop_tuning import RELAXED, SWITCH_INTERVAL, loop_tuning


def test_loop_tuning_relaxes_and_restores_after_nesting() -> None:
    before = gc.get_threshold(), sys.getswitchinterval()
    try:
        gc.set_threshold(500, 30, 5)
        sys.setswitchinterval(0.004)
        with loop_tuning():
            assert gc.get_threshold() == (RELAXED[0], 30, RELAXED[2])  # never lowered
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
            with loop_tuning():
                assert gc.get_threshold()[0] == RELAXED[0]
            assert gc.get_threshold()[0] == RELAXED[0]  # the outer block still runs
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        assert gc.get_threshold() == (500, 30, 5)
        assert sys.getswitchinterval() == pytest.approx(0.004)
        sys.setswitchinterval(0.0001)  # a process that already switches faster keeps it
        with loop_tuning():
            assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    finally:
        gc.set_threshold(*before[0])
        sys.setswitchinterval(before[1])


SEEN: list[tuple[tuple[int, int, int], float]] = []


class ThresholdProbe:
    """Delivers nothing; notes the collector's thresholds while the worker runs the job."""

    async def send(self, message: Message, adapter: AdapterInfo, ctx: Any) -> DeliveryResult:
        SEEN.append((gc.get_threshold(), sys.getswitchinterval()))
        return DeliveryResult(status="sent")


register(ProviderSpec("email", "gc_probe", Fields, Fields, ThresholdProbe, "Test probe"))


def test_run_due_tunes_the_interpreter_only_while_it_drains(dd: Any) -> None:
    one_step_sequence(dd, provider="gc_probe")
    enroll_n(dd, 5)
    before = gc.get_threshold(), sys.getswitchinterval()
    SEEN.clear()
    assert dd.run_due().sent == 5
    assert len(SEEN) == 5
    assert all(t[0] >= RELAXED[0] and t[2] >= RELAXED[2] for t, _ in SEEN)
    assert all(interval <= SWITCH_INTERVAL + 1e-6 for _, interval in SEEN)
    assert (gc.get_threshold(), sys.getswitchinterval()) == before
