"""Analytics rollups kept current as executions finish.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Analytics read hourly and daily counts, never ``step_executions``. The counts are kept by the
writes themselves: statement-level AFTER triggers over transition tables turn each statement's
state changes into a handful of aggregated rows (per hour, version, step, channel, adapter and
metric), so the worker pays once per batch, not once per execution, and every writer — the
worker, an API cancel, ``enroll_many``, a provider's webhook — is counted the same way.

Contention: the triggers only ever INSERT into ``analytics_pending`` (append-only, no row
another transaction could hold), so concurrent workers never wait on each other and can never
deadlock over a counter. Every ``FOLD_EVERY``-th pending row, the statement that wrote it folds
the pending rows into ``analytics_hourly`` and ``analytics_daily`` — if it gets the schema's
fold lock at once (``pg_try_advisory_xact_lock``; otherwise the next one folds). Only the holder
of that lock writes those two tables, so their upserts never wait either. A fold takes only the pending
rows its snapshot sees (committed ones): rows of transactions still open stay for the next
fold, so no count is lost or counted twice. Readers add the few pending rows to the hourly
ones in one statement (one snapshot: a fold is seen whole or not at all).

Metrics (``metric``):
- per step (``step_id`` set): ``sent``, ``failed``, ``skipped``, ``cancelled`` (an execution left
  ``scheduled`` for that state) and ``retried`` (an attempt failed and was rescheduled); with the
  provider's answer time (``delivery_ms``, a new column the worker writes) as a histogram.
- per version (``step_id`` NULL): ``enrolled`` (new or restarted), ``completed``, ``exited``
  (ended early: an exit event, a goal, a holdout …), ``cancelled`` (unenrolled, halted),
  ``restarted`` (a running enrollment started over), ``converted`` (a goal reached), and
  ``ended:<exit_reason>`` for the breakdown.
- per step, from provider events (``delivery_events``): ``delivery.<type>`` (delivered, bounced,
  complained, opened, clicked …), in the hour the provider gives.

``analytics_rebuild()`` recomputes everything from the base tables (the backfill below, and
``dd.rebuild_analytics()``). Executions pruned later keep their counts: there is no DELETE
trigger on purpose.
"""

from __future__ import annotations

import itertools

from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Upper bounds (exclusive) of the latency histogram's buckets, in ms; the last bucket is open.
#: dripdrop.engine.analytics.LATENCY_BOUNDS_MS must stay equal (a test checks it).
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
#: One column per bucket: ms_lt_1 (under 1 ms), ms_lt_2 … ms_lt_30000, ms_ge_30000.
HISTOGRAM = [f"ms_lt_{b}" for b in LATENCY_BOUNDS_MS] + [f"ms_ge_{LATENCY_BOUNDS_MS[-1]}"]
#: What a rollup row sums.
MEASURES = ["count", "latency_count", "latency_sum_ms", *HISTOGRAM]
#: A fold is tried once every this many pending rows.
FOLD_EVERY = 64
#: The advisory lock namespace of folds (the key is the schema's hash).
FOLD_LOCK_NAMESPACE = 0x0D21D5

NIL = "'00000000-0000-0000-0000-000000000000'::uuid"
#: The identity of a rollup row (also the unique indexes, in this order).
KEY = (
    f"sequence_version_id, bucket, (COALESCE(step_id, {NIL})), "
    f"(COALESCE(adapter_id, {NIL})), (COALESCE(channel, '')), metric"
)
DIMENSIONS = [
    "bucket",
    "sequence_id",
    "sequence_version_id",
    "step_id",
    "adapter_id",
    "channel",
    "metric",
    "tenant_key",
]
COLUMNS = ", ".join(DIMENSIONS + MEASURES)
#: The rollups: per hour, and per UTC day for long ranges (both written by the fold).
ROLLUPS = {"analytics_hourly": "hour", "analytics_daily": "day"}


def _latency(ms: str) -> str:
    """The latency measures of the rows in a group: how many have ``ms``, its sum, and the
    count in each histogram bucket."""
    edges = (None, *LATENCY_BOUNDS_MS, None)
    parts = [f"count({ms}) AS latency_count", f"COALESCE(sum({ms}), 0) AS latency_sum_ms"]
    for (lo, hi), column in zip(itertools.pairwise(edges), HISTOGRAM, strict=True):
        test = " AND ".join(t for t in (lo and f"{ms} >= {lo}", hi and f"{ms} < {hi}") if t)
        parts.append(f"count(*) FILTER (WHERE {test}) AS {column}")
    return ", ".join(parts)


#: The latency measures of facts without a latency.
NO_LATENCY = ", ".join(f"0 AS {c}" for c in MEASURES[1:])


def _rollup_table(s: str, name: str, first: str = "", last: str = "") -> str:
    """A rollup rows' table (``analytics_pending`` adds an id: the order rows came in)."""
    measures = ",\n            ".join(f"{c} bigint NOT NULL" for c in MEASURES)
    return f"""
        CREATE TABLE {s}.{name} (
            {first}
            bucket timestamptz NOT NULL,
            sequence_id uuid NOT NULL,
            sequence_version_id uuid NOT NULL,
            step_id uuid,
            adapter_id uuid,
            channel text,
            metric text NOT NULL,
            tenant_key text,
            {measures}
            {last}
        )"""


def _merged(source: str, grain: str) -> str:
    """``source``'s rows summed per rollup row at ``grain`` (hour or day), in the unique
    index's order."""
    sums = ", ".join(f"sum({c})" for c in MEASURES)
    return f"""
        SELECT date_trunc('{grain}', bucket, 'UTC'), min(sequence_id::text)::uuid,
               sequence_version_id, step_id, adapter_id, channel, metric, min(tenant_key),
               {sums}
        FROM {source} AS g
        GROUP BY 1, sequence_version_id, step_id, adapter_id, channel, metric
        ORDER BY 3, 1, 4, 5, 6, 7
    """


UPSERT = f"""
        ON CONFLICT ({KEY}) DO UPDATE SET
            {", ".join(f"{c} = r.{c} + excluded.{c}" for c in MEASURES)}
"""


def _sql(schema: str) -> list[str]:
    s = f'"{schema}"'
    lock = f"{FOLD_LOCK_NAMESPACE}, hashtext('{schema}')"
    hour = "date_trunc('hour', {0}, 'UTC')"
    # Executions leaving 'scheduled': the outcome, or a retry (rescheduled with one more try).
    executions = f"""
        SELECT {hour.format("n.updated_at")} AS bucket, n.step_id, n.adapter_id, n.channel,
               CASE WHEN n.state = 'scheduled' THEN 'retried' ELSE n.state END AS metric,
               n.tenant_key, count(*) AS count, {_latency("n.delivery_ms")}
        FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
        WHERE o.state = 'scheduled'
          AND (n.state IN ('sent', 'failed', 'skipped', 'cancelled')
               OR (n.state = 'scheduled' AND n.retry_count > o.retry_count))
        GROUP BY 1, 2, 3, 4, 5, 6
    """
    # Provider events (delivered, bounced, opened …) on the execution's step, in the hour the
    # provider says they happened.
    delivery = f"""
        SELECT {hour.format("d.occurred_at")} AS bucket, x.step_id,
               COALESCE(d.adapter_id, x.adapter_id) AS adapter_id, d.channel,
               'delivery.' || d.type AS metric, d.tenant_key, count(*) AS count, {NO_LATENCY}
        FROM {{events}} AS d JOIN {s}.step_executions AS x ON x.id = d.execution_id
        GROUP BY 1, 2, 3, 4, 5, 6
    """
    # Step facts get their version and sequence from the step (a few rows, after grouping).
    measures = ", ".join(f"f.{c}" for c in MEASURES)
    step_facts = f"""
        SELECT f.bucket, v.sequence_id, st.sequence_version_id, f.step_id, f.adapter_id,
               f.channel, f.metric, f.tenant_key, {measures}
        FROM ({{facts}}) AS f
        JOIN {s}.steps AS st ON st.id = f.step_id
        JOIN {s}.sequence_versions AS v ON v.id = st.sequence_version_id
    """
    # Why an enrollment ended, as a metric.
    ended = """CASE WHEN n.state = 'cancelled' THEN 'cancelled'
                    WHEN COALESCE(n.exit_reason, 'completed') IN ('completed', 'transition')
                    THEN 'completed' ELSE 'exited' END"""
    enrollment_facts = f"""
        SELECT {hour.format("f.at")}, f.sequence_id, f.sequence_version_id, NULL::uuid,
               NULL::uuid, NULL::text, f.metric, f.tenant_key, count(*), {NO_LATENCY}
        FROM ({{changes}}) AS f
        GROUP BY 1, 2, 3, 7, 8
    """
    inserted_enrollments = f"""
        SELECT n.started_at AS at, n.sequence_id, n.sequence_version_id, 'enrolled' AS metric,
               n.tenant_key FROM new_rows AS n
        UNION ALL
        SELECT COALESCE(n.completed_at, n.cancelled_at, n.started_at), n.sequence_id,
               n.sequence_version_id, {ended}, n.tenant_key
        FROM new_rows AS n WHERE n.state IN ('completed', 'cancelled')
    """
    updated_enrollments = f"""
        SELECT x.at, x.sequence_id, x.sequence_version_id, x.metric, x.tenant_key
        FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
        CROSS JOIN LATERAL (
            -- a restart: enrolled again (and the running one ended); only a restart moves the
            -- start or brings an ended enrollment back
            SELECT n.started_at AS at, n.sequence_id, n.sequence_version_id,
                   'enrolled' AS metric, n.tenant_key
            WHERE n.started_at IS DISTINCT FROM o.started_at
               OR (o.state IN ('completed', 'cancelled') AND n.state IN ('active', 'paused'))
            UNION ALL
            SELECT n.started_at, o.sequence_id, o.sequence_version_id, 'restarted', o.tenant_key
            WHERE n.started_at IS DISTINCT FROM o.started_at
              AND o.state IN ('active', 'paused')
            UNION ALL
            SELECT COALESCE(n.completed_at, n.cancelled_at, n.updated_at), n.sequence_id,
                   n.sequence_version_id, m.metric, n.tenant_key
            FROM (VALUES ({ended}), ('ended:' || n.exit_reason)) AS m(metric)
            WHERE o.state IN ('active', 'paused') AND n.state IN ('completed', 'cancelled')
              AND m.metric IS NOT NULL
            UNION ALL
            SELECT n.converted_at, n.sequence_id, n.sequence_version_id, 'converted',
                   n.tenant_key
            WHERE o.converted_at IS NULL AND n.converted_at IS NOT NULL
        ) AS x
    """

    def trigger_function(name: str, facts: str, guard: str = "") -> str:
        return f"""
CREATE FUNCTION {s}.{name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    fold boolean;
BEGIN
    {guard}
    WITH added AS (
        INSERT INTO {s}.analytics_pending ({COLUMNS})
        {facts}
        RETURNING id
    )
    SELECT bool_or(id % {FOLD_EVERY} = 0) INTO fold FROM added;
    IF fold THEN
        PERFORM {s}.analytics_fold(false);
    END IF;
    RETURN NULL;
END
$fn$"""

    # A claim or a lease renewal changes no state: skip the join for those statements.
    execution_guard = """IF NOT EXISTS (
        SELECT 1 FROM new_rows WHERE state <> 'scheduled' OR retry_count > 0
    ) THEN
        RETURN NULL;
    END IF;"""
    rebuild_executions = f"""
        SELECT {hour.format("x.updated_at")} AS bucket, x.step_id, x.adapter_id, x.channel,
               m.metric, x.tenant_key, sum(m.n) AS count, {_latency("m.ms")}
        FROM {s}.step_executions AS x
        CROSS JOIN LATERAL (
            SELECT x.state AS metric, 1 AS n, x.delivery_ms AS ms
            WHERE x.state IN ('sent', 'failed', 'skipped', 'cancelled')
            UNION ALL
            SELECT 'retried', x.retry_count, NULL WHERE x.retry_count > 0
        ) AS m
        GROUP BY 1, 2, 3, 4, 5, 6
    """
    rebuild_enrollments = f"""
        SELECT n.started_at AS at, n.sequence_id, n.sequence_version_id, 'enrolled' AS metric,
               n.tenant_key FROM {s}.enrollments AS n
        UNION ALL
        SELECT COALESCE(n.completed_at, n.cancelled_at, n.updated_at), n.sequence_id,
               n.sequence_version_id, m.metric, n.tenant_key
        FROM {s}.enrollments AS n
        CROSS JOIN LATERAL (VALUES ({ended}), ('ended:' || n.exit_reason)) AS m(metric)
        WHERE n.state IN ('completed', 'cancelled') AND m.metric IS NOT NULL
        UNION ALL
        SELECT n.converted_at, n.sequence_id, n.sequence_version_id, 'converted', n.tenant_key
        FROM {s}.enrollments AS n WHERE n.converted_at IS NOT NULL
    """
    tables = [
        _rollup_table(s, "analytics_hourly"),
        _rollup_table(s, "analytics_daily"),
        _rollup_table(
            s,
            "analytics_pending",
            first="id bigint GENERATED ALWAYS AS IDENTITY,",
            last=", CONSTRAINT pk_analytics_pending PRIMARY KEY (id)",
        ),
    ]
    for table in ROLLUPS:
        tables += [
            f"CREATE UNIQUE INDEX uq_{table}_key ON {s}.{table} ({KEY})",
            f"CREATE INDEX ix_{table}_adapter ON {s}.{table} (adapter_id, bucket) "
            "WHERE adapter_id IS NOT NULL",
        ]
    return [
        f"ALTER TABLE {s}.step_executions ADD COLUMN delivery_ms integer",
        *tables,
        # The fold: the pending rows this snapshot sees move into the hourly and daily rows.
        # ``wait`` (the rebuild) waits for a running fold; the triggers never wait.
        f"""
CREATE FUNCTION {s}.analytics_fold(wait boolean) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    folded bigint;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock({lock});
    ELSIF NOT pg_try_advisory_xact_lock({lock}) THEN
        RETURN 0;
    END IF;
    WITH gone AS (DELETE FROM {s}.analytics_pending RETURNING *),
    hourly AS (
        INSERT INTO {s}.analytics_hourly AS r ({COLUMNS})
        {_merged("gone", "hour")}
        {UPSERT}
    )
    INSERT INTO {s}.analytics_daily AS r ({COLUMNS})
    {_merged("gone", "day")}
    {UPSERT};
    GET DIAGNOSTICS folded = ROW_COUNT;
    RETURN folded;
END
$fn$""",
        # The backfill: every count again from the base tables. The pending rows are dropped in
        # the same statement (one snapshot) that reads the base tables, so a write committed
        # before it is counted once (from the base tables), one committed after it once (from
        # its pending rows). The days are summed from the hours.
        f"""
CREATE FUNCTION {s}.analytics_rebuild() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    written bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({lock});
    -- One pass over every execution: room to group it in memory rather than on disk.
    PERFORM set_config('work_mem', '256MB', true);
    DELETE FROM {s}.analytics_hourly;
    DELETE FROM {s}.analytics_daily;
    WITH gone AS (DELETE FROM {s}.analytics_pending RETURNING 1),
    facts AS (
        {step_facts.format(facts=rebuild_executions)}
        UNION ALL
        {step_facts.format(facts=delivery.format(events=f"{s}.delivery_events"))}
        UNION ALL
        {enrollment_facts.format(changes=rebuild_enrollments)}
    )
    INSERT INTO {s}.analytics_hourly AS r ({COLUMNS})
    {_merged("facts", "hour")};
    GET DIAGNOSTICS written = ROW_COUNT;
    INSERT INTO {s}.analytics_daily AS r ({COLUMNS})
    {_merged(f"{s}.analytics_hourly", "day")};
    RETURN written;
END
$fn$""",
        trigger_function(
            "analytics_executions_updated",
            step_facts.format(facts=executions),
            execution_guard,
        ),
        trigger_function(
            "analytics_delivery_events_inserted",
            step_facts.format(facts=delivery.format(events="new_rows")),
        ),
        trigger_function(
            "analytics_enrollments_inserted",
            enrollment_facts.format(changes=inserted_enrollments),
        ),
        trigger_function(
            "analytics_enrollments_updated",
            enrollment_facts.format(changes=updated_enrollments),
        ),
        f"""
CREATE TRIGGER analytics_executions_updated AFTER UPDATE ON {s}.step_executions
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {s}.analytics_executions_updated()""",
        f"""
CREATE TRIGGER analytics_delivery_events_inserted AFTER INSERT ON {s}.delivery_events
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {s}.analytics_delivery_events_inserted()""",
        f"""
CREATE TRIGGER analytics_enrollments_inserted AFTER INSERT ON {s}.enrollments
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {s}.analytics_enrollments_inserted()""",
        f"""
CREATE TRIGGER analytics_enrollments_updated AFTER UPDATE ON {s}.enrollments
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {s}.analytics_enrollments_updated()""",
    ]


#: Above this many executions the backfill is left to ``dd.rebuild_analytics()``: this
#: migration holds ``step_executions`` locked (ADD COLUMN) until it commits, and the rebuild of
#: millions of rows takes minutes, while run on its own it lets the workers go on.
BACKFILL_IN_MIGRATION = 1_000_000


def upgrade() -> None:
    schema = context.config.attributes["schema"]
    for statement in _sql(schema):
        op.execute(statement)
    s = f'"{schema}"'
    estimate = op.get_bind().exec_driver_sql(
        f"SELECT reltuples FROM pg_class WHERE oid = '{s}.step_executions'::regclass"
    )
    if (estimate.scalar() or 0) <= BACKFILL_IN_MIGRATION:
        op.execute(f"SELECT {s}.analytics_rebuild()")
    else:
        import logging

        logging.getLogger("dripdrop.migrations").warning(
            "schema %s: the analytics rollups are empty; run dd.rebuild_analytics() to fill "
            "them from the executions (online: the workers go on meanwhile)",
            schema,
        )


def downgrade() -> None:
    s = f'"{context.config.attributes["schema"]}"'
    for statement in (
        f"DROP TRIGGER analytics_executions_updated ON {s}.step_executions",
        f"DROP TRIGGER analytics_delivery_events_inserted ON {s}.delivery_events",
        f"DROP TRIGGER analytics_enrollments_inserted ON {s}.enrollments",
        f"DROP TRIGGER analytics_enrollments_updated ON {s}.enrollments",
        f"DROP FUNCTION {s}.analytics_executions_updated()",
        f"DROP FUNCTION {s}.analytics_delivery_events_inserted()",
        f"DROP FUNCTION {s}.analytics_enrollments_inserted()",
        f"DROP FUNCTION {s}.analytics_enrollments_updated()",
        f"DROP FUNCTION {s}.analytics_rebuild()",
        f"DROP FUNCTION {s}.analytics_fold(boolean)",
        f"DROP TABLE {s}.analytics_pending",
        f"DROP TABLE {s}.analytics_daily",
        f"DROP TABLE {s}.analytics_hourly",
        f"ALTER TABLE {s}.step_executions DROP COLUMN delivery_ms",
    ):
        op.execute(statement)
