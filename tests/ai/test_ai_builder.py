"""The AI template builder, offline: pydantic-ai's FunctionModel/TestModel script the model and
the real validator (engines, MJML, segments) decides what goes back to it."""

from __future__ import annotations

import asyncio
import os

import pytest
from pydantic_ai.models.test import TestModel
from scripted_models import BROKEN, WELCOME, Script

from dripdrop import ai
from dripdrop.errors import ValidationError
from dripdrop.templates.check import sms_segments

VARS = ["name", "trial_days_remaining"]


def test_a_broken_liquid_template_is_repaired_on_the_second_try() -> None:
    script = Script(BROKEN, WELCOME)
    result = ai.generate_template(
        "Welcome a trial user", "email", VARS, model=script.model, max_repairs=3
    )
    assert result.subject == WELCOME["subject"]
    assert result.repairs == 1
    assert result.usage.requests == 2
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert "subject: template syntax error" in script.feedback(1)
    assert set(result.variables) == {"name", "trial_days_remaining"}
    assert result.step_config == {
        "subject": WELCOME["subject"],
        "body": WELCOME["body"],
        "text": WELCOME["text"],
        "template_engine": "liquid",
    }


def test_an_unknown_variable_is_sent_back_and_removed() -> None:
    first = {**WELCOME, "body": "<p>Hi {{ name }}, your plan is {{ plan_name }}.</p>"}
    script = Script(first, WELCOME)
    result = ai.generate_template("Welcome", "email", VARS, model=script.model)
    assert "plan_name" in script.feedback(1) and "unknown variable" in script.feedback(1)
    assert "plan_name" not in result.body
    assert result.repairs == 1


def test_a_marketing_email_gets_its_unsubscribe_link() -> None:
    with_link = {
        **WELCOME,
        "body": WELCOME["body"] + '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
    }
    script = Script(WELCOME, with_link)
    result = ai.generate_template(
        "Spring sale", "email", VARS, category="marketing", model=script.model
    )
    assert "unsubscribe_url" in script.feedback(1)
    assert "{{ unsubscribe_url }}" in result.body
    assert "marketing email" in (script.instructions[0] or "")
    # Without the marketing category the same first answer is accepted as it is.
    plain = Script(WELCOME)
    assert ai.generate_template("Welcome", "email", VARS, model=plain.model).repairs == 0


def test_a_model_that_never_gets_it_right_ends_with_a_clear_error() -> None:
    script = Script({**WELCOME, "subject": "{% if name %}Hi"})
    with pytest.raises(ai.TemplateGenerationError) as caught:
        ai.generate_template("Welcome", "email", VARS, model=script.model, max_repairs=2)
    assert len(script.requests) == 3  # the first answer and two repairs
    assert caught.value.attempts == 3
    assert any(p.startswith("subject:") for p in caught.value.problems)
    assert "3 attempt(s)" in str(caught.value)


def test_no_repair_allowed_means_one_attempt() -> None:
    script = Script(BROKEN, WELCOME)
    with pytest.raises(ai.TemplateGenerationError):
        ai.generate_template("Welcome", "email", VARS, model=script.model, max_repairs=0)
    assert len(script.requests) == 1


def test_sms_segments_are_reported_and_the_limit_enforced() -> None:
    long_body = "Hi {{ name }}! " + "Your trial is ending soon. " * 20
    short = "Hi {{ name }}, {{ trial_days_remaining }} days left: upgrade now."
    script = Script({"body": long_body}, {"body": short})
    result = ai.generate_template(
        "Trial ending", "sms", VARS, model=script.model, max_sms_segments=2
    )
    assert "too long" in script.feedback(1) and "at most 2 segment(s)" in script.feedback(1)
    assert result.body == short
    assert result.sms is not None
    assert (result.sms.encoding, result.sms.segments, result.sms.per_segment) == ("GSM-7", 1, 160)
    emoji = Script({"body": "Hi {{ name }} 🎉"})
    result = ai.generate_template("Party", "sms", VARS, model=emoji.model)
    assert result.sms is not None and result.sms.encoding == "UCS-2"
    assert result.sms.non_gsm == ("🎉",)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", "GSM-7", 0, 0, 160),
        ("a" * 160, "GSM-7", 160, 1, 160),
        ("a" * 161, "GSM-7", 161, 2, 153),
        ("a" * 306, "GSM-7", 306, 2, 153),
        ("a" * 307, "GSM-7", 307, 3, 153),
        ("€" * 80, "GSM-7", 160, 1, 160),  # an extension character takes two septets
        ("{" * 81, "GSM-7", 162, 2, 153),
        ("é" * 160, "GSM-7", 160, 1, 160),  # é is in the GSM-7 basic set
        ("ç" * 70, "UCS-2", 70, 1, 70),  # ç is not
        ("ç" * 71, "UCS-2", 71, 2, 67),
        ("😀" * 35, "UCS-2", 70, 1, 70),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 72, 2, 67),
    ],
)
def test_sms_segment_counts(
    text: str, encoding: str, units: int, segments: int, per_segment: int
) -> None:
    info = sms_segments(text)
    assert (info.encoding, info.units, info.segments, info.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )


MJML_OK = (
    "<mjml><mj-head><mj-preview>{{ trial_days_remaining }} days left</mj-preview></mj-head>"
    "<mj-body><mj-section><mj-column><mj-text>Hi {{ name }}</mj-text></mj-column>"
    "</mj-section></mj-body></mjml>"
)


def test_mjml_bodies_compile_through_the_bounded_path() -> None:
    broken = {**WELCOME, "body": "<mjml><mj-body><mj-section><mj-column>"}
    not_mjml = {**WELCOME}  # HTML where an MJML document was asked for
    script = Script(broken, not_mjml, {**WELCOME, "body": MJML_OK})
    result = ai.generate_template("Welcome", "email", VARS, engine="mjml", model=script.model)
    assert "mjml error" in script.feedback(1)
    assert "not an MJML document" in script.feedback(2)
    assert result.engine == "mjml" and result.repairs == 2
    assert result.step_config["template_engine"] == "mjml"


def test_each_engine_is_analysed_with_its_own_parser() -> None:
    # Loop variables and section items are not subscriber variables: no repair needed.
    jinja = Script({"text": "{% for item in items %}{{ item.title }} {{ loop.index }}{% endfor %}"})
    result = ai.generate_template("List", "slack", ["items"], engine="jinja", model=jinja.model)
    assert (result.engine, result.repairs, result.variables) == ("jinja2", 0, ("items",))
    mustache = Script(
        {"text": "{{#items}}{{title}}{{/items}} {{nickname}}"},
        {"text": "{{#items}}{{title}}{{/items}} {{name}}"},
    )
    result = ai.generate_template(
        "List", "telegram", ["items", "name"], engine="mustache", model=mustache.model
    )
    assert (
        "nickname" in mustache.feedback(1)
        and "title" not in mustache.feedback(1).split("unknown variable(s):")[1].split(";")[0]
    )
    assert result.repairs == 1


def test_pydantic_ai_test_model_is_accepted() -> None:
    model = TestModel(custom_output_args={"text": "Deploy finished for {{ name }}"})
    result = ai.generate_template("Deploy done", "slack", ["name"], model=model)
    assert result.text == "Deploy finished for {{ name }}"
    assert result.repairs == 0 and result.usage.requests == 1


def test_improve_keeps_the_variables_the_template_reads() -> None:
    script = Script(
        {**WELCOME, "subject": "Your trial, {{ name }}: {{ coupon }}"},
        {**WELCOME, "subject": "Only {{ trial_days_remaining }} days left, {{ name }}"},
    )
    result = ai.improve_template(WELCOME, "make the subject more urgent", model=script.model)
    assert "make the subject more urgent" in script.prompt()
    assert WELCOME["body"] in script.prompt()
    assert "coupon" in script.feedback(1)  # not a variable the original read
    assert result.channel == "email" and result.repairs == 1
    assert result.subject.startswith("Only")


def test_translate_keeps_tags_and_is_validated() -> None:
    german = {
        "subject": "Willkommen, {{ name }}!",
        "preheader": "Noch {{ trial_days_remaining }} Tage",
        "body": "<p>Hallo {{ name }}, noch {{ trial_days_remaining }} Tage.</p>",
        "text": "Hallo {{ name }}, noch {{ trial_days_remaining }} Tage.",
    }
    script = Script({**german, "body": "<p>Hallo {{ nom }}</p>"}, german)
    original = ai.generate_template("Welcome", "email", VARS, model=Script(WELCOME).model)
    result = ai.translate_template(original, "German", model=script.model)
    assert "German" in script.prompt() and "German" in (script.instructions[0] or "")
    assert "nom" in script.feedback(1)
    assert result.subject == german["subject"] and result.repairs == 1


def test_async_functions_share_the_implementation() -> None:
    async def go() -> object:
        return await ai.agenerate_template(
            "Hi", "sms", ["name"], model=Script({"body": "Hi"}).model
        )

    result = asyncio.run(go())
    assert result.body == "Hi"  # type: ignore[attr-defined]


def test_the_sync_function_also_works_inside_a_running_loop() -> None:
    async def go() -> object:
        return ai.generate_template("Hi", "sms", [], model=Script({"body": "Hi"}).model)

    assert asyncio.run(go()).body == "Hi"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"channel": {"a": 1}}, "channel"),
        ({"engine": "handlebars"}, "engine"),
        ({"engine": "mjml", "channel": "sms"}, "engine"),
        ({"available_variables": "name"}, "available_variables"),
        ({"available_variables": ["first name"]}, "available_variables"),
        ({"available_variables": [None]}, "available_variables"),
        ({"category": "spam"}, "category"),
        ({"max_repairs": -1}, "max_repairs"),
        ({"max_repairs": 99}, "max_repairs"),
        ({"max_sms_segments": 0}, "max_sms_segments"),
        ({"provider": "gemini"}, "provider"),
        ({"provider": ["anthropic"]}, "provider"),
        ({"model": 42}, "model"),
        ({"description": ""}, "description"),
        ({"description": "a\x00b"}, "description"),
        ({"tone": 5}, "tone"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    args = {"description": "Welcome", "channel": "email", "model": Script(WELCOME).model}
    args.update(kwargs)
    with pytest.raises(ValidationError) as caught:
        ai.generate_template(**args)
    assert field in caught.value.errors


def test_without_a_key_or_model_the_error_says_what_to_set(monkeypatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DRIPDROP_AI_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    assert ai.available() is False
    assert ai.available(Script(WELCOME).model) is True
    with pytest.raises(ai.AIUnavailable, match="ANTHROPIC_API_KEY or OPENAI_API_KEY"):
        ai.generate_template("Welcome", "email", VARS)
    with pytest.raises(ai.AIUnavailable, match="OPENAI_API_KEY is not set"):
        ai.generate_template("Welcome", "email", VARS, provider="openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    assert ai.available() is True
    assert ai.unavailable_reason("anthropic") == (
        "ANTHROPIC_API_KEY is not set: the anthropic provider needs an API key"
    )


def test_the_facades_delegate(dd) -> None:
    from dripdrop import AsyncDripDrop

    result = dd.generate_template("Welcome", "email", VARS, model=Script(BROKEN, WELCOME).model)
    assert result.repairs == 1
    version = dd.create_sequence_version(
        dd.create_sequence(name="Onboarding", key="onb").id, active=True
    )
    step = dd.create_step(version.id, name="Welcome", channel="email", config=result.step_config)
    improved = dd.improve_template(step, "shorter", model=Script(WELCOME).model)
    assert improved.channel == "email"

    async def go() -> object:
        adb = AsyncDripDrop(dd.runtime.database_url, schema=dd.schema)
        try:
            return await adb.translate_template(result, "French", model=Script(WELCOME).model)
        finally:
            await adb.close()

    assert asyncio.run(go()).subject == WELCOME["subject"]  # type: ignore[attr-defined]


KEYS = [k for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY") if os.environ.get(k)]


@pytest.mark.skipif(not KEYS, reason="live smoke test: needs ANTHROPIC_API_KEY or OPENAI_API_KEY")
def test_live_provider_smoke() -> None:
    result = ai.generate_template(
        "A short welcome email for a new trial user", "email", VARS, category="marketing"
    )
    assert "unsubscribe_url" in result.variables
    assert result.usage.requests >= 1 and result.usage.output_tokens > 0


def test_example_values_make_the_render_and_the_segments_real() -> None:
    numeric = {"text": "{% if plan > 1 %}Upgrade{% endif %} {{ name }}"}
    # With invented values ("Sample plan" > 1 fails in Jinja) a render error is not held
    # against the template: real data decides, as when a step is created.
    result = ai.generate_template(
        "Nudge", "slack", ["plan", "name"], engine="jinja", model=Script(numeric).model
    )
    assert result.repairs == 0
    # With example values, the render counts: a string plan breaks the comparison.
    script = Script(numeric, {"text": "{% if plan == 'gold' %}Thanks{% endif %} {{ name }}"})
    result = ai.generate_template(
        "Nudge",
        "slack",
        {"plan": "gold", "name": "Ada"},
        engine="jinja",
        model=script.model,
    )
    assert result.repairs == 1 and "template error" in script.feedback(1)
    long_name = {"name": "N" * 200}
    result = ai.generate_template(
        "Hi", "sms", long_name, model=Script({"body": "{{ name }}"}).model
    )
    assert result.sms is not None and (result.sms.units, result.sms.segments) == (200, 2)
    with pytest.raises(ValidationError) as caught:
        ai.generate_template("Hi", "sms", {"bad name": 1}, model=Script({"body": "x"}).model)
    assert "available_variables" in caught.value.errors
