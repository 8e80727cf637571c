"""What the model is told: the channel's fields, the engine's syntax, the variables it may use
and the rules the validator will hold it to (so most answers pass the first time)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dripdrop.ai.validate import Spec

ENGINE_GUIDE = {
    "liquid": (
        "Liquid: print with {{ name }}, defaults with {{ name | default: 'there' }}, "
        "conditions with {% if trial_days_remaining > 0 %}…{% endif %}."
    ),
    "mjml": (
        "The body is a complete MJML document: <mjml><mj-head><mj-preview>the preheader"
        "</mj-preview></mj-head><mj-body><mj-section><mj-column><mj-text>…</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>. Every field uses Liquid for variables: "
        "{{ name }}, {{ name | default: 'there' }}, {% if x %}…{% endif %}."
    ),
    "mustache": (
        "Mustache: print with {{name}}, show a block when a value is set with "
        "{{#has_plan}}…{{/has_plan}} and when it is not with {{^has_plan}}…{{/has_plan}}. "
        "There are no filters."
    ),
    "jinja2": (
        "Jinja2 (sandboxed): print with {{ name }}, defaults with {{ name | default('there') }}, "
        "conditions with {% if x %}…{% endif %}."
    ),
}

CHANNEL_GUIDE = {
    "email": (
        "Write an email: `subject` (one line, under 80 characters), `preheader` (the inbox "
        "preview line, under 120 characters), `body` ({body}) and `text` (the plain-text "
        "alternative with the same content, no markup)."
    ),
    "sms": (
        "Write an SMS `body`: plain text, no markup, at most {segments} segment(s). A segment "
        "holds 160 GSM-7 characters (153 each when the message is longer); one character "
        "outside GSM-7 (emoji, curly quotes, most accents) switches the whole message to UCS-2, "
        "70 characters (67), so prefer plain characters."
    ),
    "chat": (
        "Write a {channel} message `text`: short, plain text with the channel's light "
        "formatting at most."
    ),
}

HTML_BODY = "HTML for the email body, starting with the preheader in a hidden element"
MJML_BODY = "an MJML document whose <mj-preview> holds the preheader"


def instructions(spec: Spec, tone: str | None, language: str | None) -> str:
    """The system instructions of a builder run."""
    if spec.channel in ("email", "sms"):
        guide = CHANNEL_GUIDE[spec.channel]
    else:
        guide = CHANNEL_GUIDE["chat"]
    body = MJML_BODY if spec.engine == "mjml" else HTML_BODY
    lines = [
        "You write message templates for DripDrop, a messaging sequence engine.",
        guide.format(body=body, segments=spec.max_sms_segments, channel=spec.channel),
        f"Template engine: {ENGINE_GUIDE[spec.engine]}",
    ]
    if spec.variables:
        names = ", ".join(sorted(spec.variables))
        lines.append(
            f"Use only these variables: {names}; also available: sequence_key, step_key, "
            "subscriber_id and unsubscribe_url. Never invent another variable."
        )
    else:
        lines.append(
            "No subscriber variables are available: write text without variables (only "
            "unsubscribe_url may be used)."
        )
    if spec.category == "marketing":
        lines.append(
            "This is a marketing email: the body and the text must contain a link to "
            "{{ unsubscribe_url }} (an unsubscribe link)."
        )
    if tone:
        lines.append(f"Tone: {tone}.")
    if language:
        lines.append(f"Write in this language: {language}.")
    lines.append(
        "Your answer is checked: when something is wrong you get the problems back and answer "
        "again with the whole corrected template."
    )
    return "\n".join(lines)


def improve_prompt(fields: Mapping[str, str], instruction: str) -> str:
    return (
        "Here is the current template, as JSON:\n"
        f"{json.dumps(dict(fields), ensure_ascii=False, indent=2)}\n\n"
        f"Improve it as follows: {instruction}\n"
        "Keep its channel, template engine and variables."
    )


def translate_prompt(fields: Mapping[str, str], language: str) -> str:
    return (
        f"Translate this template into {language}. Keep every template tag, variable, URL and "
        "piece of markup exactly as it is; translate only the words a reader sees.\n"
        f"{json.dumps(dict(fields), ensure_ascii=False, indent=2)}"
    )
