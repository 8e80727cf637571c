"""Secret hides its value everywhere but reveal(); redact masks credentials for display."""

from __future__ import annotations

import pickle

import pytest

from dripdrop.crypto import REDACTED, Secret, redact


def test_repr_and_str_hide_the_value() -> None:
    secret = Secret("sk_live_abc123")
    assert "sk_live_abc123" not in repr(secret)
    assert "sk_live_abc123" not in str(secret)
    assert str(secret) == "**********"
    assert "sk_live_abc123" not in f"{secret}"
    assert "sk_live_abc123" not in repr({"key": secret})


def test_dict_secret_hides_keys_and_values() -> None:
    secret = Secret({"username": "apiuser", "password": "pa55word"})
    for text in (repr(secret), str(secret)):
        assert "apiuser" not in text
        assert "pa55word" not in text
    assert secret.reveal() == {"username": "apiuser", "password": "pa55word"}


def test_reveal_returns_the_value() -> None:
    assert Secret("token").reveal() == "token"
    assert Secret(Secret("token")).reveal() == "token"


def test_equality_by_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret({"x": 1}) == Secret({"x": 1})
    assert Secret({"x": 1}) != Secret({"x": 2})
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    with pytest.raises(TypeError):
        hash(Secret({"x": 1}))


def test_pickle_keeps_the_value() -> None:
    assert pickle.loads(pickle.dumps(Secret("v"))).reveal() == "v"


def test_redact_all_values_when_no_fields_given() -> None:
    creds = {"api_key": "key-1", "domain": "mg.example.com", "port": 587}
    shown = redact(creds)
    assert shown == {"api_key": REDACTED, "domain": REDACTED, "port": REDACTED}
    assert creds["api_key"] == "key-1"  # a copy: the original is untouched
    assert shown is not creds


def test_redact_only_named_fields_and_secret_values() -> None:
    config = {
        "api_key": "key-1",
        "region": "eu",
        "token": Secret("t"),
        "from_email": "a@example.com",
    }
    shown = redact(config, secret_fields=["api_key"])
    assert shown == {
        "api_key": REDACTED,
        "region": "eu",
        "token": REDACTED,
        "from_email": "a@example.com",
    }


def test_redact_accepts_any_iterable_of_fields() -> None:
    fields = (name for name in ["password"])
    assert redact({"password": "p", "user": "u"}, fields) == {"password": REDACTED, "user": "u"}
