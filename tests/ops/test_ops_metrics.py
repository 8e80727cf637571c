"""Prometheus metrics: outcomes by channel and provider, claim lag, lease recoveries, delivery
and hook latency, the due-now gauge; ``/metrics`` on the web app and who may read it; no-ops
without prometheus-client."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from ops_support import SRC, enroll_n, sql, two_step_sequence
from pytest_httpserver import HTTPServer

from dripdrop.observability import metrics
from dripdrop.web import create_app


def value(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_outcomes_claims_and_lag_are_counted(env) -> None:
    dd, s = env.dd, env.dd.schema
    two_step_sequence(dd, second_delay_days=1)
    enroll_n(dd, 5)
    dd.run_due()
    env.advance_and_run(days=2)  # the second steps are claimed a day late
    sent = dict(schema=s, outcome="sent", channel="email", provider="memory")
    assert value("dripdrop_executions_total", **sent) == 10
    assert value("dripdrop_claimed_executions_total", schema=s) == 10
    assert value("dripdrop_lag_seconds_count", schema=s) == 10
    assert value("dripdrop_lag_seconds_bucket", schema=s, le="0.1") == 5
    assert value("dripdrop_lag_seconds_bucket", schema=s, le="14400.0") == 5
    assert value("dripdrop_lag_seconds_bucket", schema=s, le="86400.0") == 10
    assert value("dripdrop_lag_seconds_sum", schema=s) == pytest.approx(5 * 86400)
    assert value("dripdrop_lease_recoveries_total", schema=s) == 0


def test_failures_retries_and_latency_per_provider(env, httpserver: HTTPServer) -> None:
    dd, s = env.dd, env.dd.schema
    httpserver.expect_request("/score").respond_with_json({"score": 80})
    httpserver.expect_request("/ok").respond_with_data("fine")
    httpserver.expect_request("/busy").respond_with_data("later", status=503)
    httpserver.expect_request("/bad").respond_with_data("no", status=400)
    seq = dd.create_sequence(name="W", key="w")
    version = dd.create_sequence_version(seq.id, active=True)
    hook = dd.create_http_hook(
        seq.id,
        name="Score",
        key="score",
        url=httpserver.url_for("/score"),
        response_path="score",
        response_type="number",
        retry_count=0,
    )
    dd.create_channel_adapter(
        name="hooks",
        channel="webhook",
        provider="http",
        config={"base_url": httpserver.url_for("/")},
        is_default=True,
    )
    step = dd.create_step(version.id, name="ping", channel="webhook", config={"url": "{{ path }}"})
    dd.create_condition(
        step.id, condition_type="hook", http_hook_id=hook.id, operator="gt", expected_value="1"
    )
    for i, path in enumerate(("ok", "busy", "bad")):
        dd.enroll(sequence_key="w", subscriber={"type": "User", "id": i}, data={"path": path})
    summary = dd.run_due()
    assert (summary.sent, summary.retried, summary.failed) == (1, 1, 1)
    for outcome in ("sent", "retried", "failed"):
        labels = dict(schema=s, outcome=outcome, channel="webhook", provider="http")
        assert value("dripdrop_executions_total", **labels) == 1
    assert value("dripdrop_delivery_seconds_count", schema=s, provider="http") == 3
    assert value("dripdrop_delivery_seconds_sum", schema=s, provider="http") > 0
    assert value("dripdrop_hook_seconds_count", schema=s, kind="http") == 3
    # In-process providers are not timed: their microseconds say nothing.
    assert value("dripdrop_delivery_seconds_count", schema=s, provider="memory") == 0


def test_lease_recoveries_are_counted(env) -> None:
    dd, s = env.dd, env.dd.schema
    two_step_sequence(dd)
    enroll_n(dd, 3)
    # A worker claimed them and died: their leases ran out.
    sql(
        dd,
        "UPDATE {s}.step_executions SET lease_token = gen_random_uuid(), locked_by = 'dead', "
        "locked_until = clock_timestamp() - interval '1 second'",
    )
    env.dd.run_due()
    assert value("dripdrop_lease_recoveries_total", schema=s) == 3
    assert value("dripdrop_claimed_executions_total", schema=s) == 6


def test_the_due_now_gauge_reads_the_due_index(env) -> None:
    dd, s = env.dd, env.dd.schema
    two_step_sequence(dd)
    enroll_n(dd, 7)
    env.clock.advance(timedelta(seconds=120))
    metrics.refresh_due(dd.runtime, force=True)
    assert value("dripdrop_due_now", schema=s) == 7
    assert value("dripdrop_oldest_due_seconds", schema=s) == pytest.approx(120, abs=1)
    dd.run_due()
    metrics.refresh_due(dd.runtime)  # within 15 s of the last refresh: not asked again
    assert value("dripdrop_due_now", schema=s) == 7
    metrics.refresh_due(dd.runtime, force=True)
    assert value("dripdrop_due_now", schema=s) == 0


def test_metrics_on_the_web_app_need_a_key_or_the_metrics_token(env) -> None:
    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 2)
    key = dd.create_api_key("ops", scopes=("read",))
    with TestClient(create_app(dd, metrics_token="scrape-me")) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        for token in (key.secret, "scrape-me"):
            answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert f'dripdrop_due_now{{schema="{dd.schema}"}} 2.0' in answer.text
            assert "scrape-me" not in answer.text and key.secret not in answer.text
        assert "/metrics" not in client.get("/api/v1/openapi.json").text
    with TestClient(create_app(dd, metrics_public=True)) as client:
        assert client.get("/metrics").status_code == 200


def test_without_prometheus_client_metrics_are_no_ops(env) -> None:
    """A process where prometheus-client cannot be imported still delivers."""
    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 2)
    script = f"""
import sys
sys.modules["prometheus_client"] = None  # as if not installed
from dripdrop import DripDrop
from dripdrop.observability import metrics
assert not metrics.ENABLED and metrics.REGISTRY is None
dd = DripDrop({dd.runtime.database_url!r}, schema={dd.schema!r}, clock=lambda: {env.clock()!r})
print(dd.run_due().sent, metrics.exposition()[0].decode().strip())
dd.close()
"""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datetime\n" + script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    sent, _, note = out.stdout.strip().partition(" ")
    assert sent == "4" and "prometheus-client is not installed" in note


def test_the_grafana_dashboard_reads_only_metrics_that_exist() -> None:
    import json
    import re

    dashboard = json.loads((SRC.parent / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for e in exprs
        for name in re.findall(r"dripdrop_[a-z_]+", e)
    }
    known = {family.name for family in metrics.REGISTRY.collect()}
    assert used - known == set()  # no panel reads a metric that does not exist
    assert known - used == set()  # and every metric has a panel


def test_simulations_are_not_counted(env) -> None:
    dd, s = env.dd, env.dd.schema
    two_step_sequence(dd, second_delay_days=1)
    timeline = dd.simulate("s", data={"email": "a@x.io"}, until=timedelta(days=3))
    assert [e.kind for e in timeline.entries].count("sent") == 2
    sent = dict(schema=s, outcome="sent", channel="email", provider="memory")
    assert value("dripdrop_executions_total", **sent) == 0
    assert value("dripdrop_claimed_executions_total", schema=s) == 0


def test_run_execution_is_counted_like_a_workers_claim(env) -> None:
    """What a custom or Celery scheduler runs through dd.run_execution shows in the same
    metrics: outcomes, claims with their lag, and the lease it took over from a dead worker."""
    dd, s = env.dd, env.dd.schema
    two_step_sequence(dd)
    enroll_n(dd, 2)
    ids = [r.id for r in sql(dd, "SELECT id FROM {s}.step_executions ORDER BY id")]
    sql(
        dd,
        "UPDATE {s}.step_executions SET lease_token = gen_random_uuid(), locked_by = 'dead', "
        "locked_until = clock_timestamp() - interval '1 second' WHERE id = :id",
        id=ids[0],
    )
    assert [dd.run_execution(i).outcome for i in ids] == ["sent", "sent"]
    sent = dict(schema=s, outcome="sent", channel="email", provider="memory")
    assert value("dripdrop_executions_total", **sent) == 2
    assert value("dripdrop_claimed_executions_total", schema=s) == 2
    assert value("dripdrop_lag_seconds_count", schema=s) == 2
    assert value("dripdrop_lease_recoveries_total", schema=s) == 1
