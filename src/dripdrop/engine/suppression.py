"""The suppression check of a claimed batch: one query for all of its recipients.

Before anything is rendered, each job's recipient is read the way ``resolve_recipient`` will
read it — the step's recipient field when it is plain text, else the enrollment data's field —
normalised, and the batch's recipients are looked up together (``SUPPRESSIONS_OF``). A job whose
recipient is suppressed is marked with the reason and ends ``skipped`` without being rendered or
sent (``process.run_job``). A step whose recipient field is a template is only known once
rendered: such a job is marked ``PENDING`` and checked on its own after rendering. A delivery that
had to wait (hooks, a slow lane) is checked again at the fence, in the fence's own query
(``fence_query``): a suppression committed while it waited stops it too.
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


def _params(targets: set[tuple[str, str]], tenants: set[str | None]) -> dict[str, str]:
    channels, recipients = zip(*targets, strict=True)
    return {
        "channels": "\n".join(channels),
        "recipients": "\n".join(recipients),
        "tenants": "\n".join(t for t in tenants if t is not None),
    }


def lookup(
    conn: Connection, schema: str, targets: set[tuple[str, str]], tenants: set[str | None]
) -> dict[tuple[str, str], list[Any]]:
    """The suppressions of these (channel, recipient) pairs, global or of one of ``tenants``."""
    from dripdrop.worker.batch import _fetch

    if not targets:
        return {}
    return found_by_target(_fetch(conn, SUPPRESSIONS_OF, schema, _params(targets, tenants)))


def found_by_target(rows: Any) -> dict[tuple[str, str], list[Any]]:
    """Rows of ``SUPPRESSIONS_OF`` (channel, recipient, tenant_key, category, reason), grouped."""
    found: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        found.setdefault((r[0], r[1]), []).append(tuple(r))
    return found


def targets_of(jobs: list[Any]) -> tuple[set[tuple[str, str]], set[str | None]]:
    """The (channel, recipient) pairs and tenants of jobs whose recipient is known."""
    targets: set[tuple[str, str]] = set()
    tenants: set[str | None] = set()
    for job in jobs:
        if job.step is not None and job.recipient_key not in (None, PENDING):
            targets.add((job.step.channel, job.recipient_key))
            tenants.add(job.enrollment.tenant_key)
    return targets, tenants


def verdicts(jobs: list[Any], found: dict[tuple[str, str], list[Any]]) -> list[str | None]:
    """For each job, the reason its recipient is suppressed (None: it is not)."""
    out: list[str | None] = []
    for job in jobs:
        rows = None
        if found and job.step is not None and job.recipient_key not in (None, PENDING):
            rows = found.get((job.step.channel, job.recipient_key))
        out.append(verdict(rows, job.enrollment.tenant_key, job.version.category) if rows else None)
    return out


def check_batch(rt: Any, conn: Connection, jobs: list[Any]) -> None:
    """Mark each job's ``recipient_key`` and, when its recipient is suppressed, ``suppressed``
    (the reason). One query for the batch; none when no job has a recipient to check."""
    region = rt.phone_region
    for job in jobs:
        if job.step is not None:
            job.recipient_key = recipient_before_rendering(
                job.step, job.enrollment.data or {}, region
            )
    found = lookup(conn, rt.schema, *targets_of(jobs))
    if not found:
        return
    for job, reason in zip(jobs, verdicts(jobs, found), strict=True):
        if reason is not None:
            job.suppressed = reason


def fence_query(fence: str) -> str:
    """The fence's query (``fence``: id, lease_token per execution still ours to deliver) and
    the suppressions of the batch's recipients (``SUPPRESSIONS_OF``) in one statement: rows with
    an ``id`` are claims, the others suppressions."""
    return f"""
        WITH claims AS ({fence}), found AS ({SUPPRESSIONS_OF})
        SELECT id, lease_token, NULL::text AS channel, NULL::text AS recipient,
               NULL::text AS tenant_key, NULL::text AS category, NULL::text AS reason
        FROM claims
        UNION ALL
        SELECT NULL, NULL, channel, recipient, tenant_key, category, reason FROM found
    """


def fence_params(jobs: list[Any]) -> dict[str, str] | None:
    """``fence_query``'s parameters for these jobs, None when none has a recipient to check."""
    targets, tenants = targets_of(jobs)
    return _params(targets, tenants) if targets else None


def check_one(
    rt: Any, conn: Connection, channel: str, recipient: str, tenant_key: Any, category: Any
) -> str | None:
    """The suppression reason of one rendered recipient (a templated recipient field), or None."""
    found = lookup(conn, rt.schema, {(channel, recipient)}, {tenant_key})
    rows = found.get((channel, recipient))
    return verdict(rows, tenant_key, category) if rows else None
