"""Checks of values arriving at the public API.

Every public call either succeeds or raises a :class:`~dripdrop.errors.ValidationError` naming
the field: bad input must never reach PostgreSQL, ``json`` or the template engines, whose errors
(DataError, RecursionError, OverflowError, …) name neither the field nor what is allowed.

Limits (each also stated in its error message):

* identifiers — subscriber ids and types, tenant keys, event keys, sequence keys looked up:
  a non-empty string of at most ``MAX_ID_LENGTH`` (255) characters (a subscriber id may be an
  int or UUID, counted as its text); definition keys keep their pattern and 200 characters
  (``common.check_key``); names at most ``MAX_NAME_LENGTH`` (255), descriptions and templates
  ``MAX_TEXT_LENGTH`` (100,000); human timing phrases 200, cron expressions 255 (``timing``);
* any string: no NUL character and no lone surrogate (PostgreSQL text and UTF-8 have neither);
* JSON values (``data``, ``metadata``, ``event_data``, configs, credentials, ``trigger_data``,
  ``template_content``, expected values): dicts with string keys, lists, tuples, strings,
  booleans, None, integers in the 64-bit range and finite floats, at most ``MAX_JSON_DEPTH`` (32)
  lists/dicts deep and about ``MAX_JSON_SIZE`` (1,000,000) characters once serialised (configs,
  credentials and timings 100,000; expected values 10,000);
* integers stored in INTEGER columns (positions, versions): 0 … 2,147,483,647; booleans must be
  True or False (not "yes", not 1).
"""

from __future__ import annotations

import difflib
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from dripdrop.errors import ValidationError

MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
MAX_TEXT_LENGTH = 100_000
MAX_JSON_DEPTH = 32
MAX_JSON_SIZE = 1_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1

# NUL is refused by PostgreSQL text and jsonb; lone surrogates cannot be encoded as UTF-8.
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_JSON_TYPES = "dict, list, str, int, float, bool or None"

Checker = Callable[[Any, str], Any]
Errors = dict[str, list[str]]


def describe(value: Any, limit: int = 40) -> str:
    """A short, always printable rendering of user input for messages: repr() of a huge int
    raises, of a deep list recurses, of a megabyte string floods the message."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else "a very large integer"
    if isinstance(value, uuid.UUID):
        return str(value)
    return f"a {type(value).__name__}"


def add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def gather(errors: Errors, check: Checker, value: Any, field: str) -> Any:
    """Run one check, moving its ValidationError into ``errors``; None when it failed."""
    try:
        return check(value, field)
    except ValidationError as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(key, []).extend(messages)
        return None


def check_all(values: Mapping[str, Any], checks: Mapping[str, Checker]) -> None:
    """Check each value that has a checker; raise every problem at once."""
    errors: Errors = {}
    for field, value in values.items():
        if field in checks:
            gather(errors, checks[field], value, field)
    if errors:
        raise ValidationError(errors)


def chars_problem(value: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    found = _BAD_CHAR.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL (\\x00) characters"
    return "must not contain lone surrogates (it is not valid Unicode)"


def text_problem(value: Any, max_length: int) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {describe(value)}"
    if len(value) > max_length:
        return f"is too long ({len(value):,} characters; at most {max_length:,})"
    return chars_problem(value)


def check_text(
    value: Any,
    field: str,
    *,
    max_length: int = MAX_TEXT_LENGTH,
    optional: bool = False,
    blank: bool = True,
) -> str | None:
    """A string of at most ``max_length`` characters (None passes when ``optional``)."""
    if value is None and optional:
        return None
    if value is None or (not blank and isinstance(value, str) and not value.strip()):
        raise ValidationError.single(field, "is required")
    if problem := text_problem(value, max_length):
        raise ValidationError.single(field, problem)
    return value


def text(
    max_length: int = MAX_TEXT_LENGTH, *, optional: bool = False, blank: bool = True
) -> Checker:
    return lambda v, f: check_text(v, f, max_length=max_length, optional=optional, blank=blank)


def check_name(value: Any, field: str = "name") -> str:
    """A required, non-blank display name."""
    return check_text(value, field, max_length=MAX_NAME_LENGTH, blank=False)  # type: ignore[return-value]


def check_identifier(value: Any, field: str, *, optional: bool = False) -> str | None:
    """An id, type or key given by the application: 1 to 255 characters."""
    if value is None and optional:
        return None
    if isinstance(value, str) and not value:
        raise ValidationError.single(field, "must not be empty")
    if problem := text_problem(value, MAX_ID_LENGTH):
        raise ValidationError.single(field, problem)
    return value


def identifier(*, optional: bool = False) -> Checker:
    return lambda v, f: check_identifier(v, f, optional=optional)


def check_tenant(value: Any, field: str = "tenant_key") -> str | None:
    """None (global) or a tenant key; "" is refused because it would collide with global."""
    return check_identifier(value, field, optional=True)


def check_bool(value: Any, field: str, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise ValidationError.single(field, f"must be {allowed}, not {describe(value)}")
    return value


def boolean(*, optional: bool = False) -> Checker:
    return lambda v, f: check_bool(v, f, optional=optional)


def check_int(
    value: Any, field: str, *, minimum: int, maximum: int, optional: bool = False
) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValidationError.single(
            field, f"must be an integer from {minimum:,} to {maximum:,}, not {describe(value)}"
        )
    return value


def integer(minimum: int, maximum: int, *, optional: bool = False) -> Checker:
    return lambda v, f: check_int(v, f, minimum=minimum, maximum=maximum, optional=optional)


def check_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValidationError.single(
            field, f"must be one of {', '.join(choices)}, not {describe(value)}"
        )
    return value


def _path(crumbs: Any) -> str:
    parts: list[str] = []
    while crumbs is not None:
        crumbs, key = crumbs
        parts.append(str(key)[:32])  # keys are user input: a long one stays a short field name
    return ".".join(reversed(parts))


def json_problem(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_size: int = MAX_JSON_SIZE
) -> tuple[str, str] | None:
    """Why ``value`` cannot be stored as JSON, as (dotted path of the bad part, message), or None.
    Too deep or too large is reported on the whole value (path "").

    Walks the value without recursion, so a 10,000-deep value is refused rather than blowing
    the stack; stops as soon as the size budget is spent."""
    size = 0
    # (item, depth, crumbs): crumbs is a (parent crumbs, key) chain, built into a path on error.
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        item, depth, crumbs = stack.pop()
        problem: str | None = None
        if isinstance(item, str):
            size += len(item) + 2
            problem = chars_problem(item)
        elif item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            size += 20
            if not INT64_MIN <= item <= INT64_MAX:
                problem = "integers must be within the 64-bit range (±9.2e18)"
        elif isinstance(item, float):
            size += 24
            if not math.isfinite(item):
                problem = "numbers must be finite (NaN and Infinity are not JSON)"
        elif isinstance(item, dict | list | tuple):
            size += 2 + len(item)
            if depth >= max_depth:
                return "", f"is nested too deeply (at most {max_depth} levels of lists and dicts)"
            if isinstance(item, dict):
                for key, sub in item.items():
                    if not isinstance(key, str):
                        problem = f"keys must be strings, not {describe(key)}"
                        break
                    if key_problem := chars_problem(key):
                        problem = f"a key {key_problem}"
                        break
                    size += len(key) + 2
                    if size > max_size:
                        break
                    stack.append((sub, depth + 1, (crumbs, key)))
            elif size <= max_size:
                stack.extend((sub, depth + 1, (crumbs, i)) for i, sub in enumerate(item))
        else:
            problem = f"{describe(item)} is not JSON (use {_JSON_TYPES})"
        if problem:
            return _path(crumbs), problem
        if size > max_size:
            return "", f"is too large (more than {max_size:,} characters as JSON)"
    return None


def check_json(
    value: Any,
    field: str,
    *,
    expect_dict: bool = True,
    optional: bool = True,
    max_size: int = MAX_JSON_SIZE,
) -> Any:
    """A JSON-able value (a dict unless ``expect_dict=False``); None passes when ``optional``.
    Used for data, metadata, event_data, configs, credentials and trigger_data. A problem is
    reported on ``field``, its message saying where: "at data.address.zip: …"."""
    if value is None and optional:
        return None
    if expect_dict and not isinstance(value, dict):
        raise ValidationError.single(field, f"must be a dict, not {describe(value)}")
    if found := json_problem(value, max_size=max_size):
        raise ValidationError.single(field, json_message(field, *found))
    return value


def json_message(field: str, path: str, problem: str) -> str:
    return f"at {field}.{path}: {problem}" if path else problem


def json_dict(*, optional: bool = True, max_size: int = MAX_JSON_SIZE) -> Checker:
    return lambda v, f: check_json(v, f, optional=optional, max_size=max_size)


def json_any(*, max_size: int = MAX_JSON_SIZE) -> Checker:
    return lambda v, f: check_json(v, f, expect_dict=False, max_size=max_size)


def unknown_keys(
    given: Mapping[Any, Any], allowed: Iterable[str], prefix: str, hint: str = ""
) -> Errors:
    """One error per key of ``given`` not in ``allowed``, with a "did you mean" suggestion: a
    misspelt ``subjet`` stored silently would be ignored at every send."""
    names = sorted(allowed)
    errors: Errors = {}
    for key in given:
        if key in names:
            continue
        name = str(key)[:64]  # a stray megabyte key must not become the field name
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
        if close:
            message = f"unknown field; did you mean {close[0]!r}?"
        else:
            message = f"unknown field; expected one of {', '.join(names) or 'none'}"
        errors[f"{prefix}.{name}" if prefix else name] = [message + (f" ({hint})" if hint else "")]
    return errors


def json_text(value: Any, field: str) -> str:
    """``value`` (a dict) as JSON text, held to the rules of :func:`check_json`. orjson refuses most
    bad values itself (lone surrogates, huge ints, non-string keys, very deep nesting); what it
    lets through — NaN and Infinity written as null, NUL characters, 33 to 255 levels, huge
    sizes — can only be present when the text shows a null, an escaped NUL or many brackets,
    and only then is the value walked in full."""
    if not isinstance(value, dict):
        raise ValidationError.single(field, f"must be a dict, not {describe(value)}")
    try:
        dumped = orjson.dumps(value).decode()
    except (TypeError, ValueError):  # walked below, for a message naming the place
        dumped = None
    if (
        dumped is None
        or "null" in dumped
        or "\\u0000" in dumped
        or len(dumped) > MAX_JSON_SIZE
        # 33 levels take at least 66 characters: shorter text needs no counting.
        or (
            len(dumped) > 2 * MAX_JSON_DEPTH
            and dumped.count("{") + dumped.count("[") > MAX_JSON_DEPTH
        )
    ):
        check_json(value, field)
    if dumped is None:  # check_json found nothing orjson minded: say what orjson said
        raise ValidationError.single(field, "must be JSON-serialisable")
    return dumped
