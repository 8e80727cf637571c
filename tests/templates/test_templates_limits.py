"""Every render is bounded: loop iterations, output size and time (issue 11).

Each case used to hang a worker (nested loops, huge ranges, exponential macros), allocate
gigabytes (``'a' * 10**9``, ``lipsum(n=10**7)``) or render and store a huge text. Now it fails
fast with a PermanentError naming the field and the limit. Only the public render functions are
used, so the same tests describe the old code's failures too.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dripdrop.errors import PermanentError
from dripdrop.templates import render_config, render_string
from dripdrop.templates.render import compile_flat

LIMITED_SECONDS = 3.0  # the time limit is 1 s; generous for a loaded machine


@contextmanager
def quickly(seconds: float = LIMITED_SECONDS) -> Iterator[None]:
    # The collector off while timed: late in a full run its passes over the whole session's
    # heap take seconds, which is not the render's time.
    gc.collect()
    gc.disable()
    try:
        start = time.monotonic()
        yield
        assert time.monotonic() - start < seconds
    finally:
        gc.enable()


def fails(config: dict[str, Any], context: dict[str, Any], engine: str, limit: str) -> str:
    """The PermanentError message of rendering ``config``; it must name the field and limit."""
    with quickly(), pytest.raises(PermanentError) as info:
        render_config(config, context, engine, channel="email")
    message = str(info.value)
    assert "config.body" in message
    assert limit in message
    return message


ITEMS = {"items": list(range(1000))}

# ---- loop iterations ------------------------------------------------------------------------

NESTED = {
    "liquid": (
        "{% for i in items %}{% for j in items %}{% for k in items %}x"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "jinja2": (
        "{% for i in items %}{% for j in items %}{% for k in items %}x"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "mustache": "{{#items}}{{#items}}{{#items}}x{{/items}}{{/items}}{{/items}}",
}


@pytest.mark.parametrize("engine", sorted(NESTED))
def test_nested_loops_over_enrollment_data_stop_at_the_iteration_limit(engine: str) -> None:
    fails({"body": NESTED[engine]}, ITEMS, engine, "loop iteration limit")


@pytest.mark.parametrize("engine", ["liquid", "jinja2"])
def test_sequential_loops_count_together(engine: str) -> None:
    loop = (
        "{% for i in (1..60000) %}{% endfor %}"
        if engine == "liquid"
        else "{% for i in range(60000) %}{% endfor %}"
    )
    fails({"body": loop * 2}, {}, engine, "loop iteration limit")


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in (1..1000000000) %}x{% endfor %}",
        "{% for i in (1..n) reversed %}x{% endfor %}",  # reversed() used to build the list first
        "{{ (1..n) | join: ',' }}",
        "{% assign r = (1..n) %}{{ r | sort | first }}",
    ],
)
def test_liquid_ranges_are_bounded(source: str) -> None:
    fails({"body": source}, {"n": 10**9}, "liquid", "range limit")


@pytest.mark.parametrize(
    "source", ["{% for i in range(n) %}x{% endfor %}", "{{ range(n) | join(',') }}"]
)
def test_jinja_ranges_are_bounded(source: str) -> None:
    fails({"body": source}, {"n": 10**9}, "jinja2", "range limit")


def test_jinja_exponential_macro_recursion_stops_at_the_call_limit() -> None:
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    fails({"body": source}, {}, "jinja2", "call limit")


# ---- time ------------------------------------------------------------------------------------

SLOW_BODY = {
    # Each iteration sorts 20,000 items: within the iteration limit, far beyond a second.
    "liquid": "{% for i in (1..50000) %}{% assign s = big | sort | first %}{% endfor %}",
    "jinja2": "{% for i in range(50000) %}{% set s = big | sort | first %}{% endfor %}",
}


@pytest.mark.parametrize("engine", sorted(SLOW_BODY))
def test_a_render_stops_at_the_time_limit(engine: str) -> None:
    start = time.monotonic()
    fails({"body": SLOW_BODY[engine]}, {"big": list(range(20000))}, engine, "time limit")
    assert time.monotonic() - start >= 0.9  # it really ran for about the limit


def test_the_time_limit_is_for_the_whole_config() -> None:
    config = {"subject": SLOW_BODY["liquid"], "body": SLOW_BODY["liquid"]}
    start = time.monotonic()
    with pytest.raises(PermanentError, match=r"config\.subject.*time limit"):
        render_config(config, {"big": list(range(20000))}, "liquid", time_limit=0.3)
    assert time.monotonic() - start < 1.0


# ---- output and values -----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["liquid", "jinja2", "mustache"])
def test_a_huge_value_from_enrollment_data_is_not_rendered_into_the_message(engine: str) -> None:
    body = "Hi {{ big }}" if engine != "mustache" else "Hi {{big}}"
    fails({"body": body}, {"big": "x" * 2_000_000}, engine, "output limit")
    flat = compile_flat({"body": body}, engine)
    assert flat is not None
    with pytest.raises(PermanentError, match=r"config\.body.*output limit"):
        flat.render({"big": "x" * 2_000_000})


def test_output_up_to_the_limit_is_fine() -> None:
    out = render_config({"body": "{{ big }}"}, {"big": "x" * 1_000_000})
    assert len(out["body"]) == 1_000_000


GROWING = {
    "liquid": "{% for i in items %}{{ big }}{% endfor %}",
    "jinja2": "{% for i in items %}{{ big }}{% endfor %}",
    "mustache": "{{#items}}{{big}}{{/items}}",
}


@pytest.mark.parametrize("engine", sorted(GROWING))
def test_output_stops_growing_at_the_limit(engine: str) -> None:
    # 100,000 times 100 kB would be 10 GB: it must stop at 1 MB, not after building it.
    context = {"items": list(range(100_000)), "big": "x" * 100_000}
    fails({"body": GROWING[engine]}, context, engine, "output limit")


@pytest.mark.parametrize(
    ("engine", "source"),
    [
        ("jinja2", "{{ 'a' * 10**9 }}"),
        ("jinja2", "{{ 'a' * n }}"),
        ("jinja2", "{{ lipsum(n=10**7) }}"),
        ("jinja2", "{{ 'a' | center(10**9) }}"),
        ("jinja2", "{{ 'a'.center(10**9) }}"),
        ("jinja2", "{{ '%1000000000s' | format('a') }}"),
        ("jinja2", "{{ '%1000000000s' % 'a' }}"),
        ("jinja2", "{{ '{:>1000000000}'.format('a') }}"),
        ("jinja2", "{{ big | replace('a', big) }}"),
        ("jinja2", "{{ big.replace('a', big) }}"),
        ("jinja2", "{{ big | list | join(big) }}"),
        ("jinja2", "{{ [1] | batch(10**9, 'x') | list }}"),
        ("liquid", "{{ big | replace: 'a', big }}"),
        ("liquid", "{{ big | split: '' | join: big }}"),
    ],
)
def test_operations_that_would_build_a_huge_value_are_refused_before(
    engine: str, source: str
) -> None:
    # A value of gigabytes is refused before it is built (building it took 17 s).
    fails({"body": source}, {"n": 10**9, "big": "a" * 100_000}, engine, "limit")


@pytest.mark.parametrize(
    "source",
    [
        "{{ x ** y }}",
        "{{ 10 ** (10 ** 10) }}",
        "{% set ns = namespace(n=x) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n }}",
    ],
)
def test_jinja_integer_blowups_are_refused(source: str) -> None:
    fails({"body": source}, {"x": 10, "y": 10**8}, "jinja2", "number limit")


def test_liquid_integer_blowups_are_refused() -> None:
    source = "{% for i in (1..30) %}{% assign n = n | times: n %}{% endfor %}{{ n }}"
    fails({"body": source}, {"n": 10}, "liquid", "number limit")


@pytest.mark.parametrize(
    "source",
    [
        # Each round doubles: 2**60 characters if nothing stops it.
        "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s }}",
        # Shared items: tiny in memory, 2**60 items once printed (printing is in C).
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l }}",
        "{% set a = [1] %}" + "{% set a = [a, a] %}" * 60 + "{{ a }}",
        # A capture of 100,000 references to a 100 kB string.
        "{% set c %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endset %}{{ c | length }}",
    ],
)
def test_jinja_doubling_stops_at_the_output_limit(source: str) -> None:
    fails({"body": source}, {"big": "x" * 100_000}, "jinja2", "output limit")


def test_jinja_namespaces_cannot_be_nested() -> None:
    # Built top-down, each namespace holding the next one twice: 2**40 once printed, though
    # every step looked small when it was made.
    made = "".join(f"{{% set n{i} = namespace(x=1) %}}" for i in range(40))
    link = "{{% set n{0}.a = n{1} %}}{{% set n{0}.b = n{1} %}}"
    linked = "".join(link.format(i, i + 1) for i in range(39))
    fails({"body": made + linked + "{{ n0 }}"}, {}, "jinja2", "namespace cannot be put")
    fails({"body": "{% set a = namespace() %}{{ [a, a] }}"}, {}, "jinja2", "namespace cannot")
    out = render_string(
        "{% set ns = namespace(n=0, seen=[]) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
        "{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.n }} {{ ns.seen }}",
        {},
        "jinja2",
    )
    assert out == "6 [0, 1, 2, 3]"


@pytest.mark.parametrize(
    "source",
    [
        "{% assign s = 'ab' %}{% for i in (1..60) %}{% assign s = s | append: s %}{% endfor %}",
        "{% capture s %}ab{% endcapture %}{% for i in (1..60) %}{% capture s %}{{ s }}{{ s }}"
        "{% endcapture %}{% endfor %}",
    ],
)
def test_liquid_doubling_stops(source: str) -> None:
    fails({"body": source}, {}, "liquid", "limit exceeded")


def test_render_string_is_bounded_too() -> None:
    with quickly(), pytest.raises(PermanentError, match="loop iteration limit"):
        render_string(NESTED["liquid"], ITEMS)


# ---- ordinary templates are unaffected -----------------------------------------------------

ORDINARY = {
    "liquid": (
        "{% for i in items %}{{ i.sku | upcase }}{% unless forloop.last %}, {% endunless %}"
        "{% endfor %} {{ name | replace: 'a', 'A' }} {{ items | map: 'sku' | join: '+' }}"
    ),
    "jinja2": (
        "{% for i in items %}{{ i.sku | upper }}{{ ', ' if not loop.last }}{% endfor %} "
        "{{ name | replace('a', 'A') }} {{ items | map(attribute='sku') | join('+') }}"
    ),
    "mustache": "{{#items}}{{sku}},{{/items}} {{name}} {{^missing}}-{{/missing}}",
}


@pytest.mark.parametrize("engine", sorted(ORDINARY))
def test_ordinary_templates_render_as_before(engine: str) -> None:
    context = {"name": "Ada", "items": [{"sku": "a1"}, {"sku": "b2"}]}
    out = render_config({"body": ORDINARY[engine]}, context, engine)["body"]
    expected = {
        "liquid": "A1, B2 AdA a1+b2",
        "jinja2": "A1, B2 AdA a1+b2",
        "mustache": "a1,b2, Ada -",
    }
    assert out == expected[engine]


def test_jinja_literals_and_operators_still_work() -> None:
    source = (
        "{% set a, b = 1, 2 %}{{ a + b }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} "
        "{{ {'k': 'v'}.k }} {{ '%05d' | format(42) }} {{ '{:>4}'.format('x') }} {{ 'a' ~ 'b' }}"
        " {% for k, v in {'x': 1} | dictsort %}{{ k }}={{ v }}{% endfor %}"
        " {{ 'x'.center(5) }}|{{ '-'.join(['a', 'b']) }}"
    )
    out = render_string(source, {}, "jinja2")
    assert out == "3 1024 ababab [1, 2, 3] v 00042    x ab x=1   x  |a-b"
