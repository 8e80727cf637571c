"""The Jinja2 sandbox, and MJML compilation of email bodies."""

from __future__ import annotations

import pytest

from dripdrop.errors import PermanentError
from dripdrop.templates import compile_mjml, is_mjml, render_config, render_string

MJML_BODY = """
  <mjml>
    <mj-body>
      <mj-section><mj-column>
        <mj-text>Welcome {{ name }}!</mj-text>
      </mj-column></mj-section>
    </mj-body>
  </mjml>"""


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ items.__class__.__base__ }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_jinja_sandbox_leaks_no_class_info(source: str) -> None:
    try:
        out = render_string(source, {"items": [1]}, "jinja2")
    except PermanentError as exc:
        out = str(exc)
        assert "unsafe" in out
    for leak in ("<class", "object", "type", "__builtins__"):
        assert leak not in out.replace("unsafe", "")


def test_jinja_sandbox_blocks_subclass_walk() -> None:
    with pytest.raises(PermanentError, match="unsafe"):
        render_string("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, "jinja2")


def test_jinja_sandbox_cannot_mutate_context() -> None:
    items = [1, 2]
    data = {"k": "v"}
    with pytest.raises(PermanentError, match=r"config\.subject"):
        render_config({"subject": "{{ items.append(1) }}"}, {"items": items}, "jinja2")
    with pytest.raises(PermanentError):
        render_string("{{ data.update(k='x') }}", {"data": data}, "jinja2")
    assert items == [1, 2]
    assert data == {"k": "v"}


def test_is_mjml() -> None:
    assert is_mjml("  \n<mjml><mj-body></mj-body></mjml>")
    assert not is_mjml("<p>Hi</p>")


@pytest.mark.parametrize("engine", ["mjml", "liquid"])
def test_mjml_email_body_compiles_after_the_text_engine(engine: str) -> None:
    config = {"subject": "Hi {{ name }}", "body": MJML_BODY}
    out = render_config(config, {"name": "Grace"}, engine, channel="email")
    assert out["subject"] == "Hi Grace"
    html = out["body"]
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<table" in html
    assert "Welcome Grace!" in html
    assert "mj-" not in html.replace("mj-outlook", "").replace("mj-column", "")


def test_mjml_only_for_email_and_only_the_top_level_body() -> None:
    sms = render_config({"body": MJML_BODY}, {"name": "G"}, "mjml", channel="sms")
    assert sms["body"].strip().startswith("<mjml>")
    nested = render_config({"payload": {"body": MJML_BODY}}, {"name": "G"}, "mjml")
    assert nested["payload"]["body"].strip().startswith("<mjml>")


def test_non_mjml_body_with_mjml_engine_is_plain_liquid() -> None:
    out = render_config({"body": "<p>{{ name }}</p>"}, {"name": "G"}, "mjml", channel="email")
    assert out["body"] == "<p>G</p>"


def test_value_that_breaks_mjml_at_send_time_is_permanent() -> None:
    body = "<mjml><mj-body>{{ fragment }}</mj-body></mjml>"
    with pytest.raises(PermanentError, match=r"config\.body.*mjml"):
        render_config({"body": body}, {"fragment": "<mj-section>"}, "mjml", channel="email")


def test_compile_mjml_direct() -> None:
    html = compile_mjml("<mjml><mj-body><mj-text>x</mj-text></mj-body></mjml>")
    assert "<html" in html
