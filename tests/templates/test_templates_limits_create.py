"""Creating a step never runs unbounded template code (issue 11).

Jinja folded ``{{ 'a' * 10**9 }}`` into a constant while compiling, so ``create_step`` spent 17 s
building a gigabyte. Now compiling evaluates nothing, and the sample render validation does (with
an empty context) runs under the render limits: a template that breaks a limit whatever the data
is a ValidationError on its field.
"""

from __future__ import annotations

import time

import pytest

from dripdrop import DripDrop
from dripdrop.errors import ValidationError
from dripdrop.templates import compile_template, validate_config_templates


def test_compiling_evaluates_nothing() -> None:
    start = time.monotonic()
    for source in ("{{ 'a' * 10**9 }}", "{{ 10 ** (10 ** 10) }}", "{{ 'a' | center(10**9) }}"):
        compile_template("jinja2", source)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    ("engine", "source", "limit"),
    [
        ("jinja2", "{{ 'a' * 10**9 }}", "output limit"),
        ("jinja2", "{{ lipsum(n=10**7) }}", "output limit"),
        ("jinja2", "{% for i in range(10**9) %}{% endfor %}", "range limit"),
        ("liquid", "{% for i in (1..1000000000) %}x{% endfor %}", "range limit"),
        (
            "liquid",
            "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}",
            "loop iteration limit",
        ),
    ],
)
def test_a_template_that_always_breaks_a_limit_is_a_validation_error(
    engine: str, source: str, limit: str
) -> None:
    start = time.monotonic()
    with pytest.raises(ValidationError) as info:
        validate_config_templates({"subject": "Hi", "body": source}, engine)
    assert time.monotonic() - start < 1.5
    assert list(info.value.errors) == ["config.body"]
    assert limit in info.value.errors["config.body"][0]


def test_validation_takes_at_most_the_time_limit() -> None:
    slow = "{% for i in (1..50000) %}{% assign s = (1..20000) | sort | first %}{% endfor %}"
    start = time.monotonic()
    with pytest.raises(ValidationError, match="time limit"):
        validate_config_templates({"subject": slow, "body": slow})
    assert time.monotonic() - start < 2.0  # one limit for the whole config, not one per field


@pytest.mark.parametrize(
    ("engine", "source"),
    [
        # Limits that depend on the data are checked when sending, not here.
        ("liquid", "{% for i in items %}{% for j in items %}x{% endfor %}{% endfor %}"),
        ("jinja2", "{{ 'a' * n }}"),
        ("liquid", "{{ n | divided_by: 0 }}"),  # fails without data: not a limit, not reported
        ("jinja2", "{{ name | upper }} {% for i in range(10) %}{{ i }}{% endfor %}"),
    ],
)
def test_templates_whose_cost_depends_on_data_are_valid(engine: str, source: str) -> None:
    validate_config_templates({"body": source}, engine)


def test_create_step_reports_the_field_quickly(dd: DripDrop) -> None:
    seq = dd.create_sequence(name="Limits", key="limits")
    version = dd.create_sequence_version(seq.id, active=True)
    start = time.monotonic()
    with pytest.raises(ValidationError) as info:
        dd.create_step(
            version.id,
            name="huge",
            channel="email",
            config={"subject": "{{ 'a' * 10**9 }}", "body": "b", "template_engine": "jinja2"},
        )
    assert time.monotonic() - start < 2.0
    assert "output limit" in info.value.errors["config.subject"][0]
