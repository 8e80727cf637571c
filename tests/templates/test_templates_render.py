"""Each engine renders a step config: subject, body and a nested pubsub payload."""

from __future__ import annotations

import pytest

from dripdrop.errors import PermanentError
from dripdrop.templates import render_config, render_string

CONTEXT = {
    "name": "Ada",
    "plan": {"tier": "pro"},
    "items": [{"sku": "A1"}, {"sku": "B2"}],
    "nothing": None,
}

CONFIGS = {
    "liquid": {
        "subject": "Hi {{ name }}",
        "body": "<p>{{ name | upcase }} on {{ plan.tier }}</p>",
        "payload": {
            "user": {"name": "{{ name }}", "skus": ["{% for i in items %}{{ i.sku }}{% endfor %}"]},
            "count": 2,
        },
    },
    "mustache": {
        "subject": "Hi {{name}}",
        "body": "<p>{{name}} on {{plan.tier}}</p>",
        "payload": {
            "user": {"name": "{{name}}", "skus": ["{{#items}}{{sku}}{{/items}}"]},
            "count": 2,
        },
    },
    "jinja2": {
        "subject": "Hi {{ name }}",
        "body": "<p>{{ name | upper }} on {{ plan.tier }}</p>",
        "payload": {
            "user": {"name": "{{ name }}", "skus": ["{% for i in items %}{{ i.sku }}{% endfor %}"]},
            "count": 2,
        },
    },
}


@pytest.mark.parametrize("engine", sorted(CONFIGS))
def test_each_engine_renders_subject_body_and_nested_payload(engine: str) -> None:
    out = render_config(CONFIGS[engine], CONTEXT, engine)
    assert out["subject"] == "Hi Ada"
    assert out["body"] in ("<p>ADA on pro</p>", "<p>Ada on pro</p>")
    assert out["payload"]["user"] == {"name": "Ada", "skus": ["A1B2"]}
    assert out["payload"]["count"] == 2


@pytest.mark.parametrize("engine", sorted(CONFIGS))
def test_render_returns_a_copy_and_leaves_the_config_alone(engine: str) -> None:
    config = CONFIGS[engine]
    before = repr(config)
    out = render_config(config, CONTEXT, engine)
    out["payload"]["user"]["skus"].append("x")
    assert repr(config) == before


@pytest.mark.parametrize(
    ("engine", "source"),
    [
        ("liquid", "[{{ missing }}|{{ nothing }}]"),
        ("mustache", "[{{missing}}|{{nothing}}]"),
        ("jinja2", "[{{ missing }}|{{ nothing }}|{{ missing.deeper }}]"),
    ],
)
def test_undefined_and_none_render_empty(engine: str, source: str) -> None:
    assert render_string(source, CONTEXT, engine).replace("|", "") == "[]"


@pytest.mark.parametrize(
    ("engine", "source"),
    [("liquid", "{{ html }}"), ("mustache", "{{html}}"), ("jinja2", "{{ html }}")],
)
def test_no_engine_escapes_html(engine: str, source: str) -> None:
    assert render_string(source, {"html": "<b>&</b>"}, engine) == "<b>&</b>"


def test_jinja_escapes_when_the_template_asks() -> None:
    assert render_string("{{ html | e }}", {"html": "<b>"}, "jinja2") == "&lt;b&gt;"


def test_skipped_keys_are_copied_untouched() -> None:
    config = {
        "subject": "{{ name }}",
        "method": "{{ name }}",
        "parse_mode": "{{ oops",
        "channel_adapter_rotation": ["{{ name }}", "b"],
        "max_retries": 3,
        "on_failure": {"action": "{{ name }}"},
    }
    out = render_config(config, CONTEXT)
    assert out["subject"] == "Ada"
    for key in ("method", "parse_mode", "channel_adapter_rotation", "max_retries", "on_failure"):
        assert out[key] == config[key]
    assert out["channel_adapter_rotation"] is not config["channel_adapter_rotation"]


def test_nested_key_named_like_a_setting_is_still_a_template() -> None:
    out = render_config({"payload": {"method": "{{ name }}"}}, CONTEXT)
    assert out == {"payload": {"method": "Ada"}}


def test_tuples_and_non_string_leaves_keep_their_types() -> None:
    out = render_config({"a": ("{{ name }}", 1.5, None, True)}, CONTEXT)
    assert out == {"a": ("Ada", 1.5, None, True)}


def test_runtime_filter_error_is_permanent_and_names_the_field() -> None:
    with pytest.raises(PermanentError, match=r"config\.payload\.n"):
        render_config({"payload": {"n": "{{ 10 | divided_by: 0 }}"}}, {})


def test_syntax_error_at_render_time_is_permanent_with_path() -> None:
    with pytest.raises(PermanentError, match=r"config\.subject.*syntax"):
        render_config({"subject": "{{ name"}, CONTEXT)


def test_unknown_engine_at_render_time_is_permanent() -> None:
    with pytest.raises(PermanentError, match="eex"):
        render_config({"subject": "x"}, {}, "eex")
    with pytest.raises(PermanentError):
        render_string("x", {}, "eex")


def test_render_string_single_template() -> None:
    url = render_string(
        "https://api.test/users/{{ id }}?plan={{ plan.tier }}", {"id": 7, **CONTEXT}
    )
    assert url == "https://api.test/users/7?plan=pro"
