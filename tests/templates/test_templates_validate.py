"""Syntax errors are found at create time and keyed by the field's dotted path."""

from __future__ import annotations

import pytest

from dripdrop.errors import ValidationError
from dripdrop.templates import ENGINES, validate_config_templates


def _errors(config: object, engine: str = "liquid", **kwargs: str) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        validate_config_templates(config, engine, **kwargs)
    return info.value.errors


def test_engine_names() -> None:
    assert ENGINES == ("liquid", "mustache", "jinja2", "mjml")


@pytest.mark.parametrize(
    ("engine", "good", "bad"),
    [
        ("liquid", "Hi {{ name }}{% if a %}x{% endif %}", "{{ name"),
        ("liquid", "ok", "{% if %}x{% endif %}"),
        ("liquid", "ok", "{{ name | no_such_filter }}"),
        ("mustache", "Hi {{name}}{{#a}}x{{/a}}", "{{#a}}never closed"),
        ("mustache", "ok", "{{#a}}x{{/b}}"),
        ("mustache", "ok", "{{name"),
        ("jinja2", "Hi {{ name }}{% for i in xs %}{{ i }}{% endfor %}", "{% for %}"),
        ("jinja2", "ok", "{{ name | no_such_filter }}"),
        ("mjml", "Hi {{ name }}", "{{ name"),
    ],
)
def test_syntax_errors_are_keyed_by_path(engine: str, good: str, bad: str) -> None:
    config = {"subject": good, "payload": {"items": ["fine", bad], "n": 1}}
    errors = _errors(config, engine)
    assert list(errors) == ["config.payload.items.1"]
    assert errors["config.payload.items.1"][0].startswith("template syntax error: ")


def test_every_bad_field_is_reported_with_its_line() -> None:
    errors = _errors({"subject": "{{ name", "body": "line one\n{% if %}{% endif %}"})
    assert set(errors) == {"config.subject", "config.body"}
    assert "line 1" in errors["config.subject"][0]
    assert "line 2" in errors["config.body"][0]


def test_valid_config_passes_for_every_engine() -> None:
    for engine in ENGINES:
        validate_config_templates({"subject": "Hi", "payload": {"a": ["b", 1, None]}}, engine)


def test_field_prefix_changes_keys() -> None:
    errors = _errors({"url": "{{ x"}, field_prefix="hooks.score")
    assert list(errors) == ["hooks.score.url"]


def test_top_level_string_config() -> None:
    assert list(_errors("{{ x")) == ["config"]


def test_unknown_engine_is_reported_on_template_engine() -> None:
    errors = _errors({"subject": "hi"}, "eex")
    assert list(errors) == ["template_engine"]
    assert "liquid" in errors["template_engine"][0]


def test_skipped_keys_are_not_validated() -> None:
    config = {
        key: "{{ broken"
        for key in (
            "template_engine",
            "on_failure",
            "max_retries",
            "channel_adapter_rotation",
            "channel_adapter_id",
            "parse_mode",
            "method",
            "timeout_ms",
        )
    }
    validate_config_templates(config)
    config["subject"] = "{{ broken"
    assert list(_errors(config)) == ["config.subject"]


@pytest.mark.parametrize("engine", ["liquid", "mjml"])
def test_malformed_mjml_body_is_reported(engine: str) -> None:
    body = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ name }}</mj-text>"
    errors = _errors({"subject": "ok", "body": body}, engine)
    assert list(errors) == ["config.body"]
    assert errors["config.body"][0].startswith("mjml error")


def test_well_formed_mjml_body_with_liquid_passes() -> None:
    body = (
        "<mjml><mj-body><mj-section><mj-column>"
        '<mj-button href="https://x.test/{{ id }}">Go {{ name }}</mj-button>'
        "{% if vip %}<mj-text>VIP</mj-text>{% endif %}"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    validate_config_templates({"body": body}, "mjml")
