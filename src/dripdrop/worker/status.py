"""A snapshot of the queue for ``dripdrop status`` and the dashboard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


def queue_status(rt: Any) -> dict[str, Any]:
    """Executions by state, how many are due now, held, in flight, and the next due time."""
    s = f'"{rt.schema}"'
    now = rt.now()
    with rt.engine.begin() as conn:
        by_state = dict(
            conn.execute(
                text(f"SELECT state, count(*) FROM {s}.step_executions GROUP BY state")
            ).all()
        )
        due = conn.execute(
            text(
                f"SELECT count(*) FROM {s}.step_executions WHERE state = 'scheduled' AND NOT held "
                "AND scheduled_for <= :now"
            ),
            {"now": now},
        ).scalar()
        nxt = conn.execute(
            text(
                f"SELECT min(scheduled_for) FROM {s}.step_executions WHERE state = 'scheduled' "
                "AND NOT held AND scheduled_for > :now"
            ),
            {"now": now},
        ).scalar()
        sending, expired = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE locked_until > clock_timestamp()), "
                "count(*) FILTER (WHERE locked_until <= clock_timestamp()) "
                f"FROM {s}.step_executions WHERE state = 'scheduled' AND locked_until IS NOT NULL"
            )
        ).one()
        enrollments = dict(
            conn.execute(text(f"SELECT state, count(*) FROM {s}.enrollments GROUP BY state")).all()
        )
    out: dict[str, Any] = {f"executions {k}": v for k, v in sorted(by_state.items())}
    out.update({f"enrollments {k}": v for k, v in sorted(enrollments.items())})
    out.update(
        {
            "due now": due,
            "next due": nxt.isoformat() if nxt else "-",
            "sending now": sending,
            "expired leases (claimable again)": expired,
        }
    )
    return out
