"""The template builder's form in the browser: describe → generated (and validated) template →
"use in step", with a scripted pydantic-ai model (offline)."""

from __future__ import annotations

from typing import Any

from dashboard_support import shoot, sign_in
from playwright.sync_api import expect

WELCOME = {
    "subject": "Welcome, {{ name }}",
    "preheader": "Your trial has started",
    "body": "<p>Hi {{ name }}, you have {{ trial_days_remaining }} days left.</p>",
    "text": "Hi {{ name }}, you have {{ trial_days_remaining }} days left.",
}
UNKNOWN_VARIABLE = {**WELCOME, "subject": "Welcome, {{ first_name }}"}


def _scripted(*answers: dict[str, Any]) -> Any:
    from pydantic_ai.messages import ModelResponse, ToolCallPart
    from pydantic_ai.models.function import FunctionModel

    sent: list[Any] = []

    def answer(messages: list[Any], info: Any) -> ModelResponse:
        sent.append(messages)
        reply = answers[min(len(sent), len(answers)) - 1]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, reply)])

    model = FunctionModel(answer, model_name="scripted")
    model.sent = sent  # type: ignore[attr-defined]
    return model


def test_generate_then_use_in_a_step(dd, app, server, admin_key, page) -> None:
    seq = dd.create_sequence(name="Trial", key="trial")
    draft = dd.create_sequence_version(seq.id)
    app.state.template_model = model = _scripted(UNKNOWN_VARIABLE, WELCOME)
    sign_in(page, server, admin_key)
    page.goto(server.url + "/template-builder")
    page.fill("textarea[name=description]", "Welcome a trial user")
    page.fill("input[name=variables]", "name, trial_days_remaining")
    page.click("button:has-text('Generate')")
    generated = page.locator("#generated")
    expect(generated).to_contain_text("Welcome, {{ name }}")
    expect(generated).to_contain_text("1 repair")  # first_name was sent back for repair
    assert len(model.sent) == 2
    shoot(page, "template-builder-generated")
    page.select_option("select[name=version_id]", str(draft.id))
    page.fill("input[name=name]", "Welcome email")
    page.click("button:has-text('Use in step')")
    page.wait_for_url(f"**/versions/{draft.id}")
    (step,) = dd.list_steps(draft.id)
    assert step.name == "Welcome email" and step.channel == "email"
    assert step.config["subject"] == "Welcome, {{ name }}"
    assert step.config["template_engine"] == "liquid"


def test_a_model_that_never_validates_shows_the_problems(dd, app, server, admin_key, page):
    app.state.template_model = _scripted(UNKNOWN_VARIABLE)
    sign_in(page, server, admin_key)
    page.goto(server.url + "/template-builder")
    page.fill("textarea[name=description]", "Welcome a trial user")
    page.fill("input[name=variables]", "name")
    page.click("button:has-text('Generate')")
    expect(page.locator("form.form-grid")).to_contain_text("first_name")
    expect(page.locator("#generated")).to_have_count(0)
