"""The suppression check of a claimed batch: one query for all of its recipients.

Before anything is rendered, each job's recipient is read the way ``resolve_recipient`` will
read it — the step's recipient field when it is plain text, else the enrollment data's field —
normalised, and the batch's recipients are looked up together (``SUPPRESSIONS_OF``). A job whose
recipient is suppressed is marked with the reason and ends ``skipped`` without being rendered or
sent (``process.run_job``). A step whose recipient field is a template is only known once
rendered: such a job is marked ``PENDING`` and checked on its own after rendering.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from dripdrop.definitions.suppressions import _STRENGTH, CHANNELS, applies, engine_key
from dripdrop.engine.recipients import _PLAIN_ADDRESS, RECIPIENT_FIELDS

#: A job's recipient that only its rendering can tell (a templated recipient field).
PENDING = "\x00pending"

# A nested loop of index probes (uq_suppressions_target leads with channel, recipient): one per
# distinct recipient of the batch, whatever the size of the table.
# The lists travel as one text each, split by the server: psycopg dumps a Python list element by
# element (most of this query's cost on the worker's side). Normalised recipients hold no line
# break (normalise_recipient refuses them), so "\n" separates them.
SUPPRESSIONS_OF = """
    SELECT s.channel, s.recipient, s.tenant_key, s.category, s.reason
    FROM unnest(string_to_array(:channels, E'\\n'), string_to_array(:recipients, E'\\n'))
        AS t(channel, recipient)
    JOIN {s}.suppressions AS s ON s.channel = t.channel AND s.recipient = t.recipient
    WHERE s.tenant_key IS NULL OR s.tenant_key = ANY(string_to_array(:tenants, E'\\n'))
"""


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def recipient_before_rendering(step: Any, data: dict[str, Any], region: str | None) -> str | None:
    """The job's normalised recipient, ``PENDING`` when only rendering can tell it, None when it
    has none that could be suppressed (missing or malformed: the delivery reports that)."""
    if step.channel not in CHANNELS:  # webhooks, topics, team channels: nobody to suppress
        return None
    field, data_field = RECIPIENT_FIELDS.get(step.channel, ("to", None))
    value = step.message_config.get(field)
    if _templated(value):
        return PENDING
    if (value is None or value == "") and data_field:
        value = data.get(data_field)
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else None
    if value is None or value == "":
        return None
    if step.channel == "email" and isinstance(value, str):
        plain = value.strip()
        if _PLAIN_ADDRESS.fullmatch(plain):  # nearly every address: no parser, no checks
            return plain.lower()
    return engine_key(step.channel, value, region)


def strongest(reasons: list[str]) -> str:
    """The reason to report when several suppressions apply."""
    return max(reasons, key=_STRENGTH.index)


def verdict(rows: list[Any], tenant_key: str | None, category: str | None) -> str | None:
    """The reason a message of ``category`` in ``tenant_key`` is suppressed by these rows (all of
    one recipient), or None."""
    reasons = [
        r[4] for r in rows if (r[2] is None or r[2] == tenant_key) and applies(r[4], r[3], category)
    ]
    return strongest(reasons) if reasons else None


def lookup(
    conn: Connection, schema: str, targets: set[tuple[str, str]], tenants: set[str | None]
) -> dict[tuple[str, str], list[Any]]:
    """The suppressions of these (channel, recipient) pairs, global or of one of ``tenants``."""
    from dripdrop.worker.batch import _fetch

    if not targets:
        return {}
    channels, recipients = zip(*targets, strict=True)
    params = {
        "channels": "\n".join(channels),
        "recipients": "\n".join(recipients),
        "tenants": "\n".join(t for t in tenants if t is not None),
    }
    found: dict[tuple[str, str], list[Any]] = {}
    for r in _fetch(conn, SUPPRESSIONS_OF, schema, params):
        found.setdefault((r[0], r[1]), []).append(tuple(r))
    return found


def check_batch(rt: Any, conn: Connection, jobs: list[Any]) -> None:
    """Mark each job's ``recipient_key`` and, when its recipient is suppressed, ``suppressed``
    (the reason). One query for the batch; none when no job has a recipient to check."""
    targets: set[tuple[str, str]] = set()
    tenants: set[str | None] = set()
    region = rt.phone_region
    for job in jobs:
        step = job.step
        if step is None:
            continue
        key = recipient_before_rendering(step, job.enrollment.data or {}, region)
        job.recipient_key = key
        if key is not None and key is not PENDING:
            targets.add((step.channel, key))
            tenants.add(job.enrollment.tenant_key)
    found = lookup(conn, rt.schema, targets, tenants)
    if not found:
        return
    for job in jobs:
        if job.step is None or job.recipient_key in (None, PENDING):
            continue
        rows = found.get((job.step.channel, job.recipient_key))
        if rows:
            job.suppressed = verdict(rows, job.enrollment.tenant_key, job.version.category)


def check_one(
    rt: Any, conn: Connection, channel: str, recipient: str, tenant_key: Any, category: Any
) -> str | None:
    """The suppression reason of one rendered recipient (a templated recipient field), or None."""
    found = lookup(conn, rt.schema, {(channel, recipient)}, {tenant_key})
    rows = found.get((channel, recipient))
    return verdict(rows, tenant_key, category) if rows else None
