"""MJML is checked for size and depth before the native compiler sees it (issue 11).

mrml parses recursively: about 1,500 nested elements overflow its stack and the process dies with
SIGSEGV, so a value from enrollment data could kill the worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dripdrop.errors import PermanentError, ValidationError
from dripdrop.templates import compile_mjml, render_config, validate_config_templates


def nested(depth: int, tag: str = "mj-wrapper") -> str:
    return f"<{tag}>" * depth + f"</{tag}>" * depth


def test_markup_from_enrollment_data_cannot_crash_the_process() -> None:
    # In a child process: on a crash only the child dies, and the test sees its signal.
    script = textwrap.dedent(
        """
        from dripdrop.errors import PermanentError
        from dripdrop.templates import render_config
        deep = "<mj-wrapper>" * 5000 + "</mj-wrapper>" * 5000
        body = "<mjml><mj-body>{{ fragment }}</mj-body></mjml>"
        try:
            render_config({"body": body}, {"fragment": deep}, channel="email")
        except PermanentError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "config.body" in done.stdout
    assert "MJML depth limit" in done.stdout


@pytest.mark.parametrize("tag", ["mj-wrapper", "mj-section", "div"])
def test_markup_deeper_than_the_limit_is_refused(tag: str) -> None:
    inner = nested(150, tag)
    if tag == "div":
        inner = f"<mj-raw>{inner}</mj-raw>"
    body = f"<mjml><mj-body>{inner}</mj-body></mjml>"
    with pytest.raises(PermanentError, match=r"config\.body.*MJML depth limit"):
        render_config({"body": body}, {}, channel="email")
    with pytest.raises(ValidationError) as info:
        validate_config_templates({"body": body})
    assert "MJML depth limit" in info.value.errors["config.body"][0]


def test_depth_counts_elements_the_template_repeats() -> None:
    opening = "{% for i in (1..200) %}<mj-wrapper>{% endfor %}"
    body = f"<mjml><mj-body>{opening}{{{{ rest }}}}</mj-body></mjml>"
    with pytest.raises(PermanentError, match="MJML depth limit"):
        render_config({"body": body}, {"rest": "</mj-wrapper>" * 200}, channel="email")


def test_mjml_larger_than_the_limit_is_refused() -> None:
    sections = "<mj-section><mj-column><mj-text>hello</mj-text></mj-column></mj-section>" * 3000
    body = f"<mjml><mj-body>{sections}</mj-body></mjml>"
    with pytest.raises(PermanentError, match="MJML size limit"):
        render_config({"body": body}, {}, channel="email")


def test_compiled_html_longer_than_the_output_limit_is_refused() -> None:
    # 150 kB of MJML (under the size limit) expands to about 4 MB of HTML.
    body = "<mjml><mj-body>" + "<mj-section></mj-section>" * 6000 + "</mj-body></mjml>"
    with pytest.raises(PermanentError, match=r"config\.body.*output limit"):
        render_config({"body": body}, {}, channel="email")


def test_real_email_markup_is_not_mistaken_for_deep_nesting() -> None:
    text = "a<br>b<img src='x.png'><hr/><!-- <div><div><div> --><p>done</p>" * 60
    column = f"<mj-column><mj-image src='x.png' /><mj-text>{text}</mj-text></mj-column>"
    body = "<mjml><mj-body>" + f"<mj-section>{column}</mj-section>" * 5 + "</mj-body></mjml>"
    html = compile_mjml(body)
    assert html.count("done") == 300
    deep_but_fine = "<mjml><mj-body><mj-raw>" + nested(90, "div") + "</mj-raw></mj-body></mjml>"
    compile_mjml(deep_but_fine)
