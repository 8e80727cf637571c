"""resolve_recipient: a recipient is exactly one destination (issue 11).

Enrollment data is user input; a list smuggled into it must fail the execution with a
PermanentError naming where the value came from, before any provider sees it.
"""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop.engine.recipients import resolve_recipient, single_email_address
from dripdrop.errors import PermanentError

SEVERAL = [
    "a@x.com, b@y.com",
    "a@x.com,b@y.com",
    "a@x.com; b@y.com",
    "a@x.com\nb@y.com",
    "a@x.com\r\nBcc: b@y.com",
    "a@x.com b@y.com",
    "a@x.com <b@y.com>",
    "team: a@x.com, b@y.com;",
]


@pytest.mark.parametrize("value", SEVERAL)
def test_email_from_enrollment_data_must_be_one_address(value: str) -> None:
    fields: dict[str, Any] = {"subject": "Hi"}
    with pytest.raises(PermanentError, match="enrollment data 'email'"):
        resolve_recipient("email", fields, {"email": value})


@pytest.mark.parametrize("value", [*SEVERAL, ["a@x.com", "b@y.com"]])
def test_email_from_the_step_must_be_one_address(value: Any) -> None:
    with pytest.raises(PermanentError, match="the step's 'to'"):
        resolve_recipient("email", {"to": value}, {})


@pytest.mark.parametrize("value", ["ann", "ann@", "@example.org", '"a@x.com, b@y.com"'])
def test_email_that_is_not_an_address_is_refused(value: str) -> None:
    with pytest.raises(PermanentError, match="enrollment data 'email'"):
        resolve_recipient("email", {}, {"email": value})


@pytest.mark.parametrize(
    "value",
    ["ann@example.org", "Ann <ann@example.org>", '"Doe, John" <j@example.org>', ["ann@x.io"]],
)
def test_one_email_address_passes_and_is_written_back(value: Any) -> None:
    fields: dict[str, Any] = {}
    recipient = resolve_recipient("email", fields, {"email": value})
    expected = value[0] if isinstance(value, list) else value
    assert recipient == fields["to"] == expected


@pytest.mark.parametrize(
    ("channel", "data"),
    [
        ("sms", {"phone": "+15550000001, +15550000002"}),
        ("sms", {"phone": "+15550000001;+15550000002"}),
        ("sms", {"phone": "+15550000001\n+15550000002"}),
        ("telegram", {"telegram_chat_id": "123,456"}),
    ],
)
def test_phone_and_chat_id_must_be_one(channel: str, data: dict[str, str]) -> None:
    with pytest.raises(PermanentError, match="enrollment data"):
        resolve_recipient(channel, {}, data)


def test_a_phone_number_with_spaces_is_one_recipient() -> None:
    assert resolve_recipient("sms", {}, {"phone": "+1 555 867 5310"}) == "+1 555 867 5310"
    assert resolve_recipient("telegram", {}, {"telegram_chat_id": -100123}) == "-100123"


def test_a_line_break_is_refused_on_every_channel() -> None:
    with pytest.raises(PermanentError, match="the step's 'url'"):
        resolve_recipient("webhook", {"url": "https://x.test/\r\nHost: evil"}, {})


def test_single_email_address_returns_the_addr_spec() -> None:
    assert single_email_address("Ann <ann@example.org>", "to") == "ann@example.org"
    with pytest.raises(PermanentError, match="recipient 'to'"):
        single_email_address("a@x.com, b@y.com", "to")
    with pytest.raises(PermanentError, match="no recipient"):
        single_email_address(None, "to")


@pytest.mark.parametrize(
    "address",
    ["u1@x.io", "ann.lee+tag@mail.example.org", "o'brien@x.co.uk", "a_b-c@sub-1.example.com"],
)
def test_the_plain_address_fast_path_agrees_with_the_full_parser(address: str) -> None:
    from email import policy

    from dripdrop.engine.recipients import _PLAIN_ADDRESS, _email_problem

    assert _PLAIN_ADDRESS.fullmatch(address)
    header = policy.default.header_factory("To", address)
    assert not header.defects and [a.addr_spec for a in header.addresses] == [address]
    assert _email_problem(address) == (None, address)
