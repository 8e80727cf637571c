"""Timings in words and forms from provider declarations (no database, no browser)."""

from __future__ import annotations

from dripdrop.channels.registry import get_spec
from dripdrop.web.dashboard import provider_forms
from dripdrop.web.dashboard.pages.common import Form
from dripdrop.web.dashboard.words import timing_in_words


def test_timings_read_as_sentences():
    assert timing_in_words({"type": "immediate"}, first=True) == "immediately at enrollment"
    assert timing_in_words({"type": "immediate"}) == "immediately after the previous step"
    assert timing_in_words({"type": "delay", "delay_amount": 1, "delay_unit": "days"}, True) == (
        "1 day after enrollment"
    )
    assert (
        timing_in_words(
            {
                "type": "delay",
                "delay_amount": 2,
                "delay_unit": "hours",
                "relative_to": "previous_step",
            }
        )
        == "2 hours after the previous step"
    )
    cron = {"type": "cron", "cron_expression": "0 9 * * MON", "timezone": "America/New_York"}
    assert timing_in_words(cron) == "At 09:00, only on Monday (New York)"
    event = {"type": "event", "trigger_event": "paid", "timeout_amount": 3, "timeout_unit": "days"}
    assert timing_in_words(event) == "when paid happens (or after 3 days)"


def test_adapter_form_fields_come_from_the_declaration():
    spec = get_spec("sms", "twilio")
    fields = {f.input_name: f for f in provider_forms.form_fields(spec)}
    assert fields["credentials.auth_token"].secret and fields["credentials.auth_token"].required
    assert fields["config.from"].group == "config"  # the alias, as stored
    assert fields["config.timeout_ms"].kind == "number"
    # An edit that leaves the write-only fields empty keeps the stored credentials.
    stored = {"account_sid": "AC1", "auth_token": "tok"}
    creds, config, errors = provider_forms.read(spec, Form({"config.from": ["+1555"]}), stored)
    assert creds is None and config == {"from": "+1555"} and errors == {}
    creds, _, _ = provider_forms.read(spec, Form({"credentials.auth_token": ["new"]}), stored)
    assert creds == {"account_sid": "AC1", "auth_token": "new"}
    _, _, errors = provider_forms.read(spec, Form({"config.timeout_ms": ["soon"]}), stored)
    assert errors == {"config.timeout_ms": ["must be a number"]}
