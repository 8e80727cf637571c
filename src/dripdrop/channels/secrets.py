"""Scrubbing credentials out of what DripDrop keeps or shows: answers, error texts, logs.

A provider sends a credential in some form (raw in a header or a form field, inside a URL,
base64 in HTTP Basic or SMTP AUTH, percent-encoded in a query) and a careless server may echo
any of them back. :class:`Secrets` holds every form of every secret value, so one
:meth:`Secrets.scrub` replaces them all with ``***`` — before anything is cut to an excerpt,
since half a token cut at a boundary would no longer match.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from dripdrop.channels.memo import PerObject
from dripdrop.errors import DeliveryError, PermanentError, TransientError

__all__ = ["REDACTED", "Secrets"]

REDACTED = "***"
# Shorter values would mangle every text they happen to occur in.
MIN_LENGTH = 4
# Headers whose whole value is a credential, whatever the provider put there.
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
# "Bearer abc", "Basic dXNlcjpwYXNz", "Bot 123:abc", "token abc": the scheme word, then the token.
_SCHEME = re.compile(r"^[A-Za-z][\w.-]*\s+(\S+)$")


def _b64(raw: bytes) -> set[str]:
    """``raw`` in base64, alone and inside any longer base64 text: at each of the three byte
    offsets it can start at (``user:`` + token in HTTP Basic), the characters that only
    ``raw``'s bits decide."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        if len(raw) < 12:  # a short value's inner forms would match unrelated base64 text
            continue
        for shift in (1, 2):
            text = encode(b"\0" * shift + raw).decode("ascii")
            start = (shift * 4 + 2) // 3  # characters holding a padding bit come first
            end = (shift + len(raw)) * 8 // 6  # and the last may hold the tail's zero bits
            forms.add(text[start:end])
        forms.add(whole[: len(raw) * 8 // 6])  # followed by more bytes, as in "token:secret"
    return forms


def _encodings(value: str) -> set[str]:
    """``value`` as it may travel or be echoed: raw, percent-encoded, JSON-escaped, base64."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= _b64(value.encode("utf-8"))
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _parts(value: str) -> set[str]:
    """Pieces of a secret that are secret on their own: a URL's path and password, the token
    after a scheme word, the user:password pair inside HTTP Basic and its password."""
    parts: set[str] = set()
    if "://" in value:
        url = urlsplit(value)
        parts.add(value.split("://", 1)[1])  # Apprise and Redis URLs: tokens live in the host
        if len(url.path) > 1:  # chat webhooks keep their token in the path
            parts.add(urlunsplit(("", "", url.path, url.query, "")))
        if url.password:
            parts |= {url.password, unquote(url.password)}
    match = _SCHEME.match(value.strip())
    if match:
        token = match.group(1)
        parts.add(token)
        if value.strip().lower().startswith("basic "):
            try:
                pair = base64.b64decode(token, validate=True).decode("utf-8")
            except ValueError:
                pair = ""
            if ":" in pair:
                parts |= {pair, pair.split(":", 1)[1]}
    return {p for p in parts if len(p) >= MIN_LENGTH}


# A worker sends through the same few adapters over and over: the forms of a credential and the
# pattern of a set of forms are worked out once (a Secrets is built for every delivery).
@functools.lru_cache(maxsize=4096)
def _forms_of(value: str) -> frozenset[str]:
    forms: set[str] = set()
    for piece in {value, *_parts(value)}:
        forms |= _encodings(piece)
    return frozenset(forms)


def _secret_values(adapter: Any, credentials: Mapping[str, Any]) -> list[Any]:
    fields: tuple[str, ...] = ()
    try:
        from dripdrop.channels.registry import get_spec

        fields = get_spec(adapter.channel, adapter.provider).secret_fields
    except Exception:  # an app's own or unregistered provider: hide everything
        fields = ()
    names = [f for f in fields if f in credentials] if fields else list(credentials)
    return [credentials[name] for name in names]


_forms_by_adapter = PerObject()


@functools.lru_cache(maxsize=1024)
def _pattern_of(forms: frozenset[str]) -> re.Pattern[str]:
    # Longest first: a URL is replaced whole before its path, a pair before its password.
    ordered = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)))


class Secrets:
    """Values that must never be shown, in every form they may take.

    Build one per delivery with :meth:`of` (the adapter's secret credentials); HTTP sends add
    their ``Authorization`` header (:meth:`add_header`), so the base64 of a Basic pair is known
    whichever provider built it.
    """

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    @classmethod
    def of(cls, adapter: Any) -> Secrets:
        """The secret credentials of ``adapter`` (an AdapterInfo): the fields its provider marks
        secret, or every credential when the provider is unknown or marks none."""
        credentials = getattr(adapter, "credentials", None) or {}
        # Every delivery of an adapter builds one: its forms are worked out once per dict.
        forms = _forms_by_adapter.get(
            (credentials,),
            lambda: frozenset(cls(_secret_values(adapter, credentials))._forms),
            adapter.channel,
            adapter.provider,
        )
        made = cls()
        made._forms = set(forms)
        return made

    def add(self, value: Any) -> None:
        """Register a secret (strings; the values of dicts and lists) with its derived forms."""
        if isinstance(value, Mapping):
            for item in value.values():
                self.add(item)
        elif isinstance(value, list | tuple | set):
            for item in value:
                self.add(item)
        elif isinstance(value, str) and len(value.strip()) >= MIN_LENGTH:
            forms = _forms_of(value.strip())
            if not forms <= self._forms:
                self._forms |= forms
                self._pattern = None

    def add_header(self, name: str, value: Any) -> None:
        """Register a request header's value when the header carries credentials."""
        if str(name).lower() in AUTH_HEADERS:
            self.add(str(value))

    def scrub(self, obj: Any) -> Any:
        """A copy of ``obj`` (str, or dicts and lists of them) with every secret form replaced
        by ``***``; other values are returned as they are."""
        if not self._forms:
            return obj
        if isinstance(obj, str):
            return self._compiled().sub(REDACTED, obj)
        if isinstance(obj, Mapping):
            return {self.scrub(k): self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.scrub(v) for v in obj]
        return obj

    def found_in(self, text: str) -> bool:
        """Does ``text`` hold any form of a secret?"""
        return bool(self._forms) and self._compiled().search(text) is not None

    def scrub_error(self, err: DeliveryError) -> DeliveryError:
        """The same error (kind, status, Retry-After hint) with message and answer scrubbed."""
        message, response = self.scrub(str(err)), self.scrub(err.response)
        if isinstance(err, TransientError):
            return TransientError(
                message, retry_after=err.retry_after, response=response, status=err.status
            )
        return PermanentError(message, response=response, status=err.status)

    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            self._pattern = _pattern_of(frozenset(self._forms))
        return self._pattern

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._forms)} form(s)>"  # never the values
