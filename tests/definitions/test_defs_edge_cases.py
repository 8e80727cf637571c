"""Edge cases found while reviewing the definitions API."""

from __future__ import annotations

import pytest

from dripdrop import DripDrop, ValidationError


def test_an_inactive_default_does_not_block_the_next_adapter(dd):
    dd.create_channel_adapter(
        name="off", channel="email", provider="memory", active=False, is_default=True
    )
    assert dd.get_default_adapter("email") is None
    on = dd.create_channel_adapter(name="on", channel="email", provider="memory")
    assert on.is_default and dd.get_default_adapter("email").id == on.id


def test_time_window_days_must_be_real_days(dd, step):
    ok = dd.create_condition(
        step.id,
        condition_type="time_window",
        config={"timezone": "UTC", "days": ["monday", "tue"], "start": "09:00", "end": "17:00"},
    )
    assert ok.config["days"] == ["monday", "tue"]
    with pytest.raises(ValidationError) as info:
        dd.create_condition(
            step.id,
            condition_type="time_window",
            config={"timezone": "UTC", "days": ["monkey"], "start": "09:00", "end": "17:00"},
        )
    assert "config.days" in info.value.errors


def test_empty_schema_name_is_refused(database_url):
    with pytest.raises(ValidationError) as info:
        DripDrop(database_url, schema="")
    assert "schema" in info.value.errors


def test_an_empty_credential_counts_as_missing(dd):
    with pytest.raises(ValidationError) as info:
        dd.create_channel_adapter(
            name="mg",
            channel="email",
            provider="mailgun",
            credentials={"api_key": "  "},
            config={"domain": "mg.example.com"},
        )
    assert "credentials.api_key" in info.value.errors
