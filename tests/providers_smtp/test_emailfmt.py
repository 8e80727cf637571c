"""The MIME builder and its helpers."""

from __future__ import annotations

import email
from email import policy

import pytest

from dripdrop.channels.base import AdapterInfo, Message
from dripdrop.channels.emailfmt import (
    build_mime,
    html_to_text,
    make_message_id,
    unsubscribe_headers,
)
from dripdrop.errors import PermanentError

ADAPTER = AdapterInfo(
    id=None,
    name="smtp",
    channel="email",
    provider="smtp",
    config={"from": "News <news@example.com>"},
)


def _msg(key: str = "exec-1", **fields: object) -> Message:
    base = {"subject": "Hello", "body": "<p>Hi <a href='https://x.io/a?b=1&amp;c=2'>there</a></p>"}
    base.update(fields)
    return Message("email", "ann@example.org", base, "exec-1", key)


def test_html_to_text_keeps_links_breaks_and_entities() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<h1>Hi &amp; welcome</h1><p>Click <a href='https://x.io/a'>here</a> now.<br>Line 2</p>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"
    )
    assert html_to_text(html) == (
        "Hi & welcome\n\nClick here (https://x.io/a) now.\nLine 2\n\n- one\n- two"
    )


def test_html_to_text_does_not_repeat_bare_urls() -> None:
    assert html_to_text('<a href="https://x.io">https://x.io</a>') == "https://x.io"


def test_message_id_is_stable_and_uses_sender_domain() -> None:
    assert make_message_id("k-1", "Bob <bob@Mail.Example.com>") == "<k-1@mail.example.com>"
    assert make_message_id("k-1", None) == "<k-1@dripdrop.local>"
    odd = make_message_id("exec:1 step", "a@b.io")
    assert odd == make_message_id("exec:1 step", "a@b.io")
    assert odd != make_message_id("exec:2 step", "a@b.io")
    assert " " not in odd and ":" not in odd


def test_unsubscribe_headers() -> None:
    assert unsubscribe_headers(None) == {}
    assert unsubscribe_headers("https://u.io/x", "stop@u.io") == {
        "List-Unsubscribe": "<https://u.io/x>, <mailto:stop@u.io>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    # one-click needs https (RFC 8058)
    assert unsubscribe_headers("http://u.io/x") == {"List-Unsubscribe": "<http://u.io/x>"}
    assert unsubscribe_headers(None, "mailto:stop@u.io") == {
        "List-Unsubscribe": "<mailto:stop@u.io>"
    }
    with pytest.raises(PermanentError):
        unsubscribe_headers("javascript:alert(1)")


def test_build_mime_structure_and_headers() -> None:
    mime = build_mime(
        _msg(
            reply_to="help@example.com",
            cc=["c1@x.io", "c2@x.io"],
            headers={"X-Campaign": "spring"},
            unsubscribe_url="https://u.io/1",
        ),
        ADAPTER,
    )
    parsed = email.message_from_bytes(mime.as_bytes(), policy=policy.default)
    assert parsed["From"] == "News <news@example.com>"
    assert parsed["To"] == "ann@example.org"
    assert parsed["Cc"] == "c1@x.io, c2@x.io"
    assert parsed["Reply-To"] == "help@example.com"
    assert parsed["Message-ID"] == "<exec-1@example.com>"
    assert parsed["X-Campaign"] == "spring"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Date"]
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert parsed.get_body(("plain",)).get_content().strip() == "Hi there (https://x.io/a?b=1&c=2)"


def test_build_mime_text_only_and_explicit_text() -> None:
    mime = build_mime(_msg(body="", text="plain only"), ADAPTER)
    assert mime.get_content_type() == "text/plain"
    mime = build_mime(_msg(text="my own text"), ADAPTER)
    assert mime.get_body(("plain",)).get_content().strip() == "my own text"


def test_non_ascii_subject_round_trips() -> None:
    parsed = email.message_from_bytes(
        build_mime(_msg(subject="Grüße ✓"), ADAPTER).as_bytes(), policy=policy.default
    )
    assert parsed["Subject"] == "Grüße ✓"


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: victim@x.io"},
        {"reply_to": "a@x.io\nBcc: victim@x.io"},
        {"headers": {"X-Bad": "v\r\nBcc: victim@x.io"}},
        {"headers": {"Bad Name": "v"}},
        {"headers": {"Content-Type": "text/plain"}},
    ],
)
def test_header_injection_is_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(PermanentError):
        build_mime(_msg(**fields), ADAPTER)


def test_missing_from_or_body_is_permanent() -> None:
    bare = AdapterInfo(None, "smtp", "email", "smtp")
    with pytest.raises(PermanentError, match="no from address"):
        build_mime(_msg(), bare)
    with pytest.raises(PermanentError, match="no body"):
        build_mime(_msg(body=""), ADAPTER)
