"""Static checks of templates, shared by ``dripdrop templates check`` and the AI builder.

* :func:`template_variables` — the top-level names a template reads, from each engine's own
  parser: python-liquid's ``global_variables()``, Jinja2's ``meta.find_undeclared_variables`` (in
  the same sandbox that renders), pystache's parse tree (names inside a section may come from the
  section's item, so only the names outside sections and the section names count).
* :func:`sample_data` — plausible values for names, when no real data is at hand.
* :func:`sms_segments` — GSM-7 or UCS-2, and how many segments an SMS body takes.
* :func:`check_config` — one step config: syntax, variables outside what is known, a render with
  sample data through the same bounded path as sending (:func:`render_config`, MJML included),
  SMS length and the unsubscribe link of marketing emails.

A leaf like the rest of ``templates/``: it never imports the engine, the worker or the client.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Mapping
from typing import Any

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pystache
from pystache.parsed import ParsedTemplate
from pystache.parser import ParsingError, _InvertedNode

from dripdrop.errors import PermanentError
from dripdrop.records import SmsSegments
from dripdrop.templates.base import TemplateSyntaxError
from dripdrop.templates.engines import ENGINES, compile_template, is_engine, text_engine
from dripdrop.templates.render import _strings, render_config

#: What every step's context holds besides the enrollment data (see engine/context.py), and the
#: signed unsubscribe link of emails.
BUILTIN_NAMES = frozenset(
    {
        "subscriber_id",
        "subscriber_type",
        "enrollment_id",
        "sequence_key",
        "step_key",
        "data",
        "unsubscribe_url",
    }
)
#: The engine names users may write; "jinja" is the common spelling of "jinja2".
ENGINE_ALIASES = {"jinja": "jinja2"}
SAMPLE_UNSUBSCRIBE_URL = "https://example.com/u/sample-unsubscribe-token"
#: Longest SMS a check accepts by default (3 segments: 459 GSM-7 or 201 UCS-2 characters).
DEFAULT_MAX_SMS_SEGMENTS = 3

# GSM 03.38 (3GPP TS 23.038): one segment holds 160 septets, or 153 with the concatenation
# header; UCS-2: 70 UTF-16 units, or 67.
_GSM_SINGLE, _GSM_MULTI = 160, 153
_UCS2_SINGLE, _UCS2_MULTI = 70, 67


def normalize_engine(engine: Any) -> str | None:
    """The engine name a step config uses (``jinja`` → ``jinja2``), or None when unknown."""
    if not isinstance(engine, str):
        return None
    name = ENGINE_ALIASES.get(engine, engine)
    return name if is_engine(name) else None


def engine_choices() -> str:
    return ", ".join((*ENGINES, *ENGINE_ALIASES))


def template_variables(source: str, engine: str = "liquid") -> frozenset[str]:
    """The top-level variables ``source`` reads (``{{ user.name }}`` → ``user``); raises
    TemplateSyntaxError when it does not compile. ``engine`` is a name of ENGINES."""
    text = text_engine(engine)
    if "{" not in source:
        return frozenset()
    compiled = compile_template(text, source)  # the syntax check, and the cache of sends
    if text != "mustache":
        return compiled.names
    try:
        parsed = pystache.parse(source, raise_on_mismatch=True)
    except ParsingError as exc:  # compile_template has already refused it; kept for clarity
        raise TemplateSyntaxError(str(exc)) from exc
    return frozenset(_mustache_names(parsed))


def _mustache_names(parsed: ParsedTemplate) -> set[str]:
    names: set[str] = set()
    for node in parsed._parse_tree:
        key = getattr(node, "key", None)
        if isinstance(key, str) and key != ".":
            names.add(key.split(".", 1)[0].strip())
        # A section's body resolves names against the section's item first: only an inverted
        # section ({{^a}}, rendered when ``a`` is empty) reads its body from the outer context.
        if isinstance(node, _InvertedNode):
            names |= _mustache_names(node.parsed_section)
    return names


def config_variables(config: Any, engine: str) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """(field path → variables read, field path → syntax error) for every template string in a
    step config (``config.subject``, ``config.payload.items.0``…)."""
    names: dict[str, frozenset[str]] = {}
    errors: dict[str, str] = {}
    for path, source, _is_body in _strings(config, "config"):
        try:
            names[path] = template_variables(source, engine)
        except TemplateSyntaxError as exc:
            errors[path] = str(exc)
        except RecursionError:  # absurd nesting some parsers recurse on
            errors[path] = "template syntax error: nested too deeply"
    return names, errors


def sample_value(name: str) -> Any:
    """A plausible value for a variable called ``name`` (for renders without real data)."""
    lowered = name.lower()
    if "email" in lowered:
        return "ada@example.com"
    if "phone" in lowered or lowered in ("mobile", "msisdn"):
        return "+15550100000"
    if "chat_id" in lowered:
        return "100000001"
    if lowered.endswith(("url", "link", "href")):
        return f"https://example.com/{lowered}"
    if lowered.endswith(("days", "count", "hours", "minutes", "remaining", "total", "number")):
        return 3
    if lowered.endswith(("amount", "price", "balance")):
        return 42.5
    if lowered.startswith(("is_", "has_")):
        return True
    if "date" in lowered or lowered.endswith("_at"):
        return "2026-01-15"
    return f"Sample {name.replace('_', ' ')}"


def sample_data(names: Iterable[str]) -> dict[str, Any]:
    """Sample values for ``names`` (the built-in names are not invented: the caller sets them)."""
    return {name: sample_value(name) for name in sorted(set(names) - BUILTIN_NAMES)}


def builtin_context(
    sequence_key: str = "sample_sequence", step_key: str = "sample_step"
) -> dict[str, Any]:
    """The values the engine adds to every context, as a check renders them."""
    return {
        "subscriber_id": "sample-subscriber",
        "subscriber_type": "User",
        "enrollment_id": "00000000-0000-0000-0000-000000000000",
        "sequence_key": sequence_key,
        "step_key": step_key,
        "unsubscribe_url": SAMPLE_UNSUBSCRIBE_URL,
    }


def sms_segments(text: str) -> SmsSegments:
    """The encoding and segment count of an SMS ``text``."""
    non_gsm = []
    for char in dict.fromkeys(text):  # each distinct character once, in order
        try:
            codecs.encode(char, "gsm03.38")
        except UnicodeEncodeError:
            non_gsm.append(char)
    if not non_gsm:
        units = len(codecs.encode(text, "gsm03.38"))  # extension characters are 2 septets
        single, multi, encoding = _GSM_SINGLE, _GSM_MULTI, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2  # characters outside the BMP take 2 units
        single, multi, encoding = _UCS2_SINGLE, _UCS2_MULTI, "UCS-2"
    per_segment = single if units <= single else multi
    segments = 0 if units == 0 else -(-units // per_segment)
    return SmsSegments(encoding, units, segments, per_segment, tuple(non_gsm))


def describe_sms(info: SmsSegments) -> str:
    text = f"{info.units} {info.encoding} units, {info.segments} segment(s) of {info.per_segment}"
    if info.non_gsm:
        text += f"; UCS-2 because of {''.join(info.non_gsm[:10])!r}"
    return text


_WHERE = re.compile(r"^(template error in )?(config[\w.]*): (.*)$", re.DOTALL)

# (field, kind, message, severity)
Problem = tuple[str, str, str, str]


def check_config(
    config: Mapping[str, Any],
    *,
    channel: str,
    engine: str,
    context: Mapping[str, Any],
    known_names: frozenset[str] | None = None,
    unknown_severity: str = "error",
    marketing: bool = False,
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS,
) -> tuple[list[Problem], dict[str, Any] | None]:
    """The problems of one step config, and its render with ``context`` (None when it could not
    be rendered).

    ``known_names``: the variables the data provides (BUILTIN_NAMES are always known); names read
    outside them are reported with ``unknown_severity``. An email body of engine ``mjml`` must be
    an MJML document; marketing emails must show ``context["unsubscribe_url"]`` in the body.
    """
    problems: list[Problem] = []
    name = normalize_engine(engine)
    if name is None:
        message = f"unknown template engine {engine!r}; choose one of {engine_choices()}"
        return [("config.template_engine", "syntax", message, "error")], None
    variables, syntax = config_variables(config, name)
    for path, message in syntax.items():
        problems.append((path, "syntax", message, "error"))
    if known_names is not None:
        known = known_names | BUILTIN_NAMES
        for path, names in variables.items():
            unknown = sorted(names - known)
            if unknown:
                listed = ", ".join(unknown)
                message = f"unknown variable(s): {listed}; known: {', '.join(sorted(known))}"
                problems.append((path, "unknown_variable", message, unknown_severity))
    if syntax:
        return problems, None
    try:
        rendered = render_config(dict(config), context, name, channel=channel)
    except PermanentError as exc:
        text = str(exc)
        kind = "mjml" if "mjml error" in text else "render"
        where = _WHERE.match(text)  # "config.body: …" / "template error in config.body: …"
        if where is None:
            problems.append(("config", kind, text, "error"))
        else:
            prefix = "template error: " if where.group(1) else ""
            problems.append((where.group(2), kind, prefix + where.group(3), "error"))
        return problems, None
    problems.extend(_rendered_problems(config, rendered, channel, name, context, marketing))
    if channel == "sms" and isinstance(rendered.get("body"), str):
        info = sms_segments(rendered["body"])
        if info.segments > max_sms_segments:
            message = f"too long: {describe_sms(info)}; at most {max_sms_segments} segment(s)"
            problems.append(("config.body", "sms_length", message, "error"))
    return problems, rendered


def _rendered_problems(
    config: Mapping[str, Any],
    rendered: dict[str, Any],
    channel: str,
    engine: str,
    context: Mapping[str, Any],
    marketing: bool,
) -> list[Problem]:
    found: list[Problem] = []
    if channel != "email":
        return found
    body = rendered.get("body")
    # render_config compiled a body that rendered to "<mjml…" into HTML; any other stayed as is.
    if engine == "mjml" and isinstance(body, str) and not body.lstrip().startswith("<!doctype"):
        message = "not an MJML document: it must start with <mjml>"
        found.append(("config.body", "mjml", message, "error"))
    link = context.get("unsubscribe_url")
    if marketing and isinstance(link, str) and link:
        shown = any(
            isinstance(rendered.get(key), str) and link in rendered[key] for key in ("body", "text")
        )
        if not shown:
            found.append(
                (
                    "config.body",
                    "unsubscribe",
                    "a marketing email must link to {{ unsubscribe_url }} in its body",
                    "error",
                )
            )
    return found
