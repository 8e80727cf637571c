"""Referenced names, lazy contexts and the compile cache."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import dripdrop.templates as templates
from dripdrop.errors import TransientError, ValidationError
from dripdrop.templates import compile_template, referenced_names, render_config


class LazyHooks(Mapping[str, Any]):
    """A context whose values are computed (and counted) only when looked up."""

    def __init__(self, values: dict[str, Any], fail: dict[str, Exception] | None = None):
        self.values = values
        self.fail = fail or {}
        self.calls: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.calls.append(key)
        if key in self.fail:
            raise self.fail[key]
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a lazy context must not be iterated")

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize(
    ("engine", "source", "expected"),
    [
        (
            "liquid",
            "Hi {{ name }} {{ lead_score | round }} {% if plan.tier %}x{% endif %}",
            {"name", "lead_score", "plan"},
        ),
        (
            "liquid",
            "{% assign y = foo %}{% for i in items %}{{ i.x }}{{ y }}{% endfor %}",
            {"foo", "items"},
        ),
        ("mjml", "{{ name }}", {"name"}),
        (
            "jinja2",
            "Hi {{ name }} {{ lead_score | round }} {% if plan.tier %}x{% endif %}",
            {"name", "lead_score", "plan"},
        ),
        (
            "jinja2",
            "{% set y = foo %}{% for i in items %}{{ i.x }}{{ range(2) }}{% endfor %}",
            {"foo", "items"},
        ),
        (
            "mustache",
            "Hi {{name}} {{{raw}}} {{&amp}} {{plan.tier}} {{#items}}{{.}}{{/items}}"
            "{{^none}}-{{/none}}{{! comment }}",
            {"name", "raw", "amp", "plan", "items", "none"},
        ),
    ],
)
def test_referenced_names(engine: str, source: str, expected: set[str]) -> None:
    assert referenced_names({"subject": source}, engine) == expected


def test_referenced_names_walks_nested_config_and_skips_settings() -> None:
    config = {
        "subject": "{{ a }}",
        "payload": {"deep": ["{{ b }}", {"c": "{{ c.d }}"}]},
        "method": "{{ not_a_template }}",
        "body": "{{ broken",
    }
    assert referenced_names(config) == {"a", "b", "c"}


def test_referenced_names_unknown_engine() -> None:
    with pytest.raises(ValidationError):
        referenced_names({"subject": "x"}, "eex")


@pytest.mark.parametrize(
    ("engine", "subject", "body"),
    [
        ("liquid", "Hi {{ name }}", "{{ name }}: {{ score }}"),
        ("mustache", "Hi {{name}}", "{{name}}: {{score}}"),
        ("jinja2", "Hi {{ name }}", "{{ name }}: {{ score }}"),
    ],
)
def test_lazy_context_is_read_once_per_name_and_only_when_named(
    engine: str, subject: str, body: str
) -> None:
    hooks = LazyHooks({"name": "Ada", "score": 42, "expensive": 1})
    out = render_config({"subject": subject, "body": body}, hooks, engine)
    assert out == {"subject": "Hi Ada", "body": "Ada: 42"}
    assert sorted(hooks.calls) == ["name", "score"]


def test_lazy_missing_names_render_empty_and_are_not_retried() -> None:
    hooks = LazyHooks({})
    out = render_config({"a": "[{{ ghost }}]", "b": "[{{ ghost }}]"}, hooks)
    assert out == {"a": "[]", "b": "[]"}
    assert hooks.calls == ["ghost"]


@pytest.mark.parametrize("engine", ["liquid", "mustache", "jinja2"])
def test_hook_errors_keep_their_type(engine: str) -> None:
    hooks = LazyHooks({}, fail={"score": TransientError("hook timed out", retry_after=5)})
    source = "{{score}}" if engine == "mustache" else "{{ score }}"
    with pytest.raises(TransientError) as info:
        render_config({"subject": source}, hooks, engine)
    assert info.value.retry_after == 5


def test_second_render_does_not_recompile() -> None:
    compile_template.cache_clear()
    config = {"subject": "Hi {{ name }} #cache-test", "body": "{{ name }} #cache-test"}
    render_config(config, {"name": "a"})
    first = compile_template.cache_info()
    assert first.misses == 2
    for n in range(5):
        assert render_config(config, {"name": str(n)})["subject"] == f"Hi {n} #cache-test"
    after = compile_template.cache_info()
    assert after.misses == 2
    assert after.hits == first.hits + 10


def test_validation_fills_the_cache_for_rendering() -> None:
    compile_template.cache_clear()
    templates.validate_config_templates({"subject": "{{ x }} #warm"}, "jinja2")
    templates.render_config({"subject": "{{ x }} #warm"}, {"x": 1}, "jinja2")
    assert compile_template.cache_info().misses == 1


def test_plain_text_is_not_compiled() -> None:
    compile_template.cache_clear()
    assert render_config({"subject": "no tags here"}, {}) == {"subject": "no tags here"}
    assert compile_template.cache_info().currsize == 0


def test_public_names() -> None:
    assert set(templates.__all__) >= {
        "ENGINES",
        "validate_config_templates",
        "render_config",
        "render_string",
        "referenced_names",
    }
    for name in templates.__all__:
        assert hasattr(templates, name)
