"""Building email: the MIME message every email provider sends, and its helpers.

SMTP sends :func:`build_mime` as is; HTTP providers that take raw MIME (Amazon SES) send its
bytes, and the others reuse :func:`html_to_text`, :func:`make_message_id` and
:func:`unsubscribe_headers` so every provider produces the same headers.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from html.parser import HTMLParser
from typing import Any

from dripdrop.channels.base import AdapterInfo, Message
from dripdrop.errors import PermanentError

__all__ = [
    "build_mime",
    "from_address",
    "html_to_text",
    "make_message_id",
    "unsubscribe_headers",
]

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "hr",
        "address",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
# Headers that describe the MIME structure: extra headers must not change them.
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ':'
_ID_LEFT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class _TextExtractor(HTMLParser):
    """Collects readable text; block elements become line breaks, links keep their target."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
            self._pre += tag == "pre"
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            text = "".join(self.parts[start:]).strip()
            # A bare link, an in-page anchor or a link whose text is the URL needs no repeat.
            if href and not href.startswith("#") and href.removeprefix("mailto:") != text:
                self.parts.append(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text alternative of an HTML body.

    Links become ``text (url)``; paragraphs, ``<br>`` and list items become line breaks; tags are
    dropped and entities unescaped.
    """
    html = html or ""
    if "<" not in html and "&" not in html:
        # No tag and no entity: the parser would hand back the text with its whitespace runs
        # collapsed to one space, so no line is left to strip (str.split and re's \s agree on
        # what whitespace is).
        return " ".join(html.split())
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def make_message_id(idempotency_key: str, from_address: str | None) -> str:
    """A stable ``<key@domain>`` Message-ID: the same key always gives the same id.

    The domain is the sender's (``dripdrop.local`` when it has none); a key that is not a valid
    RFC 5322 id-left is replaced by its SHA-256 so the id stays well-formed.
    """
    left = (
        idempotency_key
        if _ID_LEFT.match(idempotency_key or "")
        else (hashlib.sha256((idempotency_key or "").encode()).hexdigest()[:40])
    )
    domain = _sender_domain(from_address) if from_address else "dripdrop.local"
    return f"<{left}@{domain}>"


@functools.lru_cache(maxsize=1024)
def _sender_domain(from_address: str) -> str:
    # An adapter sends from the same address all day: parse it once.
    addr = parseaddr(from_address)[1]
    candidate = addr.rpartition("@")[2].lower() if "@" in addr else ""
    return candidate if _DOMAIN.match(candidate) else "dripdrop.local"


def unsubscribe_headers(url: str | None, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369) and, for an https URL, one-click ``List-Unsubscribe-Post``.

    RFC 8058 one-click requires an HTTPS URI, so the Post header is only added for one.
    """
    targets: list[str] = []
    if url:
        _check_header_value("unsubscribe_url", url)
        if not url.lower().startswith(("https://", "http://")) or any(c in url for c in "<> "):
            raise PermanentError(f"unsubscribe_url must be an http(s) URL, got {url!r}")
        targets.append(f"<{url}>")
    if mailto:
        _check_header_value("unsubscribe mailto", mailto)
        address = mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}"
        targets.append(f"<{address}>")
    if not targets:
        return {}
    headers = {"List-Unsubscribe": ", ".join(targets)}
    if url and url.lower().startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def from_address(message: Message, adapter: AdapterInfo) -> str:
    """The sender: the step's ``from`` or the adapter's; a PermanentError when neither has one."""
    sender = message.fields.get("from") or adapter.config.get("from")
    if not sender:
        raise PermanentError("no from address: set the step's 'from' or the adapter's config.from")
    return str(sender)


def recipient_address(message: Message) -> str:
    """The recipient: the message's recipient or the step's ``to``."""
    to = message.recipient or message.fields.get("to")
    if not to:
        raise PermanentError("no recipient address")
    return ", ".join(_as_list(to))


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v]
    return [str(value)]


def _check_header_value(name: str, value: str) -> None:
    # CR/LF would let a template value start a new header (header injection).
    if "\r" in value or "\n" in value or "\0" in value:
        raise PermanentError(f"header {name!r} contains a line break")


def _set(msg: EmailMessage, name: str, value: str) -> None:
    _check_header_value(name, value)
    if name in msg:
        del msg[name]
    msg[name] = value


def build_mime(
    message: Message, adapter: AdapterInfo, *, now: datetime | None = None
) -> EmailMessage:
    """The complete MIME message for an email step.

    ``multipart/alternative`` with ``text/plain`` first (``fields["text"]`` or the HTML converted)
    then ``text/html`` (``fields["body"]``). The Message-ID comes from the idempotency key, so a
    retried delivery carries the same id. Header values with line breaks raise PermanentError.
    """
    fields = message.fields
    sender = from_address(message, adapter)
    msg = EmailMessage(policy=policy.SMTP)
    _set(msg, "From", sender)
    _set(msg, "To", recipient_address(message))
    if cc := _as_list(fields.get("cc")):
        _set(msg, "Cc", ", ".join(cc))
    if reply_to := _as_list(fields.get("reply_to") or adapter.config.get("reply_to")):
        _set(msg, "Reply-To", ", ".join(reply_to))
    _set(msg, "Subject", str(fields.get("subject") or ""))
    _set(msg, "Date", format_datetime(now or datetime.now(UTC)))
    _set(msg, "Message-ID", make_message_id(message.idempotency_key, sender))
    unsubscribe = fields.get("unsubscribe_url") or adapter.config.get("unsubscribe_url")
    mailto = fields.get("unsubscribe_mailto") or adapter.config.get("unsubscribe_mailto")
    for name, value in unsubscribe_headers(unsubscribe, mailto).items():
        _set(msg, name, value)
    for name, value in (fields.get("headers") or {}).items():
        if not _HEADER_NAME.match(str(name)) or str(name).lower() in _STRUCTURAL:
            raise PermanentError(f"invalid extra header name {name!r}")
        _set(msg, str(name), str(value))

    html = fields.get("body") or ""
    text = fields.get("text") or (html_to_text(html) if html else "")
    if not html and not text:
        raise PermanentError("email has no body")
    msg.set_content(text or "", subtype="plain", charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg
