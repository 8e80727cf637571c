"""OpenTelemetry: an execution span with its hook call and provider request as children, the
W3C traceparent on webhooks and HTTP hooks, executions linked to the enroll that caused them;
nothing at all without a configured SDK."""

from __future__ import annotations

from ops_support import sql, tracer_provider
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.observability import tracing


def _traced_sequence(dd, httpserver: HTTPServer) -> None:
    seq = dd.create_sequence(name="T", key="t")
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
    step = dd.create_step(
        version.id, name="ping", channel="webhook", config={"url": "hook", "body": {"hi": 1}}
    )
    dd.create_condition(
        step.id, condition_type="hook", http_hook_id=hook.id, operator="gt", expected_value="50"
    )


def _record(seen: list[Request], answer: Response):
    def handler(request: Request) -> Response:
        seen.append(request)
        return answer

    return handler


def test_spans_links_and_traceparent_headers(dd, httpserver: HTTPServer) -> None:
    hook_calls: list[Request] = []
    webhooks: list[Request] = []
    httpserver.expect_request("/score").respond_with_handler(
        _record(hook_calls, Response('{"score": 80}', content_type="application/json"))
    )
    httpserver.expect_request("/hook").respond_with_handler(_record(webhooks, Response("ok")))
    _traced_sequence(dd, httpserver)
    with tracer_provider() as exporter:
        assert tracing.enabled()
        tracer = tracing.tracer()
        with tracer.start_as_current_span("POST /signup"):
            enrollment = dd.enroll(sequence_key="t", subscriber={"type": "User", "id": 1})
        summary = dd.run_due()
        spans = {s.name: s for s in exporter.get_finished_spans()}
    assert summary.sent == 1
    enroll, execution = spans["dripdrop.enroll"], spans["dripdrop.execution"]
    hook, deliver = spans["dripdrop.hook"], spans["dripdrop.deliver"]
    assert enroll.parent.span_id == spans["POST /signup"].context.span_id
    # The enrollment keeps the enroll span's traceparent; the execution (another trace) links to it.
    stored = sql(dd, "SELECT trace_parent FROM {s}.enrollments WHERE id = :id", id=enrollment.id)
    trace_id, span_id = (
        format(enroll.context.trace_id, "032x"),
        format(enroll.context.span_id, "016x"),
    )
    assert stored[0].trace_parent.startswith(f"00-{trace_id}-{span_id}-")
    assert [link.context.span_id for link in execution.links] == [enroll.context.span_id]
    assert execution.attributes["dripdrop.outcome"] == "sent"
    assert execution.attributes["dripdrop.enrollment_id"] == str(enrollment.id)
    # Hook call and provider request are the execution's children...
    assert hook.parent.span_id == execution.context.span_id
    assert deliver.parent.span_id == execution.context.span_id
    assert deliver.attributes["dripdrop.provider"] == "http"

    # ...and each request carried its own span as traceparent.
    def parent_of(request: Request) -> tuple[str, str]:
        _, trace, parent, _ = request.headers["traceparent"].split("-")
        return trace, parent

    execution_trace = format(execution.context.trace_id, "032x")
    assert parent_of(hook_calls[0]) == (execution_trace, format(hook.context.span_id, "016x"))
    assert parent_of(webhooks[0]) == (execution_trace, format(deliver.context.span_id, "016x"))
    # No recipient, rendered field or error text in any attribute.
    for span in spans.values():
        for value in (span.attributes or {}).values():
            assert "hi" not in str(value).split(":")


def test_without_an_sdk_nothing_is_traced_or_sent(dd, httpserver: HTTPServer) -> None:
    webhooks: list[Request] = []
    hook_calls: list[Request] = []
    httpserver.expect_request("/score").respond_with_handler(
        _record(hook_calls, Response('{"score": 80}', content_type="application/json"))
    )
    httpserver.expect_request("/hook").respond_with_handler(_record(webhooks, Response("ok")))
    _traced_sequence(dd, httpserver)
    assert not tracing.enabled()
    dd.enroll(sequence_key="t", subscriber={"type": "User", "id": 1})
    assert dd.run_due().sent == 1
    assert "traceparent" not in webhooks[0].headers and "traceparent" not in hook_calls[0].headers
    assert sql(dd, "SELECT trace_parent FROM {s}.enrollments")[0].trace_parent is None


def test_a_failed_delivery_marks_its_span_without_the_error_text(
    dd, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/score").respond_with_json({"score": 80})
    httpserver.expect_request("/hook").respond_with_data("secret-answer", status=400)
    _traced_sequence(dd, httpserver)
    with tracer_provider() as exporter:
        dd.enroll(sequence_key="t", subscriber={"type": "User", "id": 1})
        assert dd.run_due().failed == 1
        spans = {s.name: s for s in exporter.get_finished_spans()}
    execution, deliver = spans["dripdrop.execution"], spans["dripdrop.deliver"]
    assert execution.status.status_code.name == "ERROR"
    assert execution.attributes["dripdrop.outcome"] == "failed"
    assert deliver.status.status_code.name == "ERROR"
    assert "secret-answer" not in repr(execution.to_json()) + repr(deliver.to_json())


def test_run_execution_runs_in_an_execution_span_linked_to_its_enroll(
    dd, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/score").respond_with_json({"score": 80})
    httpserver.expect_request("/hook").respond_with_data("ok")
    _traced_sequence(dd, httpserver)
    with tracer_provider() as exporter:
        enrollment = dd.enroll(sequence_key="t", subscriber={"type": "User", "id": 1})
        [row] = sql(dd, "SELECT id FROM {s}.step_executions")
        assert dd.run_execution(row.id).outcome == "sent"
        spans = {s.name: s for s in exporter.get_finished_spans()}
    enroll, execution = spans["dripdrop.enroll"], spans["dripdrop.execution"]
    assert [link.context.span_id for link in execution.links] == [enroll.context.span_id]
    assert execution.attributes["dripdrop.enrollment_id"] == str(enrollment.id)
    assert spans["dripdrop.deliver"].parent.span_id == execution.context.span_id
