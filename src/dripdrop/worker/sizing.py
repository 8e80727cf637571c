"""How big a worker's claims are: the default batch, and how ``concurrency`` is shared out
between lanes. It imports nothing, so the public faces can name the default without loading
the worker.
"""

from __future__ import annotations

# Rows per claim. A batch's fixed costs (three statements, a commit, per-statement reference
# checks, a thread hand-off) are paid once per claim: measured in bench/dispatch.py, 500 drains
# about a fifth faster than 100, and 1000 no faster than 500.
BATCH_SIZE = 500


def lane_sizes(concurrency: int, batch_size: int) -> list[int]:
    """Rows per claim of each lane of a worker with ``concurrency`` deliveries in flight: at
    least two lanes when there is room for two, more once ``concurrency`` exceeds two batches,
    and ``concurrency`` shared out between them to the last row."""
    concurrency = max(1, concurrency)
    lanes = max(min(2, concurrency), -(-concurrency // max(1, batch_size)))
    share, extra = divmod(concurrency, lanes)
    return [share + (1 if i < extra else 0) for i in range(lanes)]
