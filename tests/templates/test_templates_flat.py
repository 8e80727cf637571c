"""The precompiled flat-config renderer gives exactly what the general walker gives."""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop.errors import PermanentError
from dripdrop.templates import render_config
from dripdrop.templates.render import compile_flat

CONTEXT = {"name": "Ada", "n": 3, "plan": {"tier": "pro"}, "items": ["a", "b"]}

FLAT = [
    ({"subject": "Hi {{ name }}", "body": "Plan {{ plan.tier }}, {{ n | plus: 1 }}"}, "liquid"),
    ({"subject": "plain", "body": "no tags", "max": 3, "flag": True, "none": None}, "liquid"),
    ({"text": "{% for i in items %}{{ i }}{% endfor %}", "parse_mode": "{{ kept }}"}, "liquid"),
    ({"subject": "Hi {{name}}", "body": "{{#items}}{{.}}{{/items}}"}, "mustache"),
    ({"subject": "Hi {{ name|upper }}", "body": "{{ plan.tier }}"}, "jinja2"),
    (
        {"subject": "s", "body": "<mjml><mj-body><mj-text>{{ name }}</mj-text></mj-body></mjml>"},
        "liquid",
    ),
]


@pytest.mark.parametrize(("config", "engine"), FLAT)
def test_flat_render_matches_the_walker(config: dict[str, Any], engine: str) -> None:
    flat = compile_flat(config, engine, channel="email")
    assert flat is not None
    assert flat.render(CONTEXT) == render_config(config, CONTEXT, engine, channel="email")


@pytest.mark.parametrize(
    "config",
    [
        {"payload": {"nested": "{{ name }}"}},  # nested: the walker's job
        {"items": ["{{ name }}"]},
        {"subject": "{% if %}"},  # bad syntax: the walker reports it with its path
    ],
)
def test_configs_that_are_not_flat_go_to_the_walker(config: dict[str, Any]) -> None:
    assert compile_flat(config, "liquid") is None


def test_unknown_engine_is_left_to_the_walker() -> None:
    assert compile_flat({"subject": "x"}, "nope") is None


def test_a_runtime_template_error_names_the_field() -> None:
    flat = compile_flat({"subject": "{{ n | divided_by: 0 }}"}, "liquid")
    assert flat is not None
    with pytest.raises(PermanentError, match=r"config\.subject"):
        flat.render(CONTEXT)
    with pytest.raises(PermanentError, match=r"config\.subject"):
        render_config({"subject": "{{ n | divided_by: 0 }}"}, CONTEXT)


@pytest.mark.parametrize(
    "value", ["Ada", "", None, True, False, 3, 2.5, {"a": 1}, [1, 2], "<b>&</b>"]
)
@pytest.mark.parametrize("source", ["Hi {{ name }}!", "{{name}}", "Hi {{ name }} and {{ name }}"])
def test_plain_output_fast_paths_match_the_full_liquid_render(source: str, value: Any) -> None:
    # A tag makes the same template go through python-liquid itself.
    full = render_config({"s": "{% if true %}" + source + "{% endif %}"}, {"name": value})
    fast = compile_flat({"s": source}, "liquid")
    assert fast is not None
    assert fast.render({"name": value}) == full
    assert fast.render({}) == render_config({"s": "{% if true %}" + source + "{% endif %}"}, {})
