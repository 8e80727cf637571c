"""Channel adapters: defaults, encrypted credentials bound to their row, and secret-free reprs."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dripdrop import DripDrop
from dripdrop.errors import ConfigurationError, CryptoError

MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
HOOK_TOKEN = "tok-9f8e7d6c5b4a39281706"


def mailgun(dd, name: str = "Mailgun", **kw):
    return dd.create_channel_adapter(
        name=name,
        channel="email",
        provider="mailgun",
        credentials={"api_key": MAILGUN_KEY},
        config={"domain": "mg.example.com"},
        **kw,
    )


def raw_credentials(env, adapter_id) -> bytes | None:
    with env.dd.runtime.engine.connect() as conn:
        value = conn.execute(
            text(f'SELECT credentials FROM "{env.schema}".channel_adapters WHERE id = :id'),
            {"id": adapter_id},
        ).scalar_one()
    return None if value is None else bytes(value)


def test_first_adapter_of_a_channel_becomes_default(dd) -> None:
    first = dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    second = dd.create_channel_adapter(name="Console", channel="email", provider="console")
    sms = dd.create_channel_adapter(name="SMS", channel="sms", provider="memory")
    assert (first.is_default, second.is_default, sms.is_default) == (True, False, True)
    assert dd.get_default_adapter("email").id == first.id
    assert dd.get_default_adapter("sms").id == sms.id
    assert dd.get_default_adapter("slack") is None


def test_first_adapter_is_not_default_when_told_so_or_inactive(dd) -> None:
    assert (
        dd.create_channel_adapter(
            name="A", channel="email", provider="memory", is_default=False
        ).is_default
        is False
    )
    assert (
        dd.create_channel_adapter(
            name="B", channel="email", provider="memory", active=False
        ).is_default
        is False
    )
    assert dd.get_default_adapter("email") is None


def test_a_new_default_unsets_the_previous_one(dd) -> None:
    old = dd.create_channel_adapter(name="Old", channel="email", provider="memory")
    other_channel = dd.create_channel_adapter(name="SMS", channel="sms", provider="memory")
    new = mailgun(dd, is_default=True)
    assert new.is_default is True
    assert dd.get_channel_adapter(old.id).is_default is False
    assert dd.get_channel_adapter(other_channel.id).is_default is True
    assert dd.get_default_adapter("email").id == new.id
    # Through update as well.
    assert dd.update_channel_adapter(old.id, is_default=True).is_default is True
    assert dd.get_channel_adapter(new.id).is_default is False
    assert [a.id for a in dd.list_channel_adapters("email") if a.is_default] == [old.id]


def test_list_channel_adapters_by_channel(dd) -> None:
    b = dd.create_channel_adapter(name="B", channel="email", provider="memory")
    a = dd.create_channel_adapter(name="A", channel="email", provider="console")
    s = dd.create_channel_adapter(name="S", channel="sms", provider="memory")
    assert [x.id for x in dd.list_channel_adapters("email")] == [a.id, b.id]
    assert [x.id for x in dd.list_channel_adapters(channel="sms")] == [s.id]
    assert {x.id for x in dd.list_channel_adapters()} == {a.id, b.id, s.id}
    assert dd.list_channel_adapters("slack") == []


def test_deactivated_default_is_no_longer_returned(dd) -> None:
    adapter = dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    deactivated = dd.deactivate_channel_adapter(adapter.id)
    assert deactivated.active is False
    assert dd.get_channel_adapter(adapter.id).active is False
    assert dd.get_default_adapter("email") is None


def test_update_adapter_config_and_credentials(dd) -> None:
    adapter = mailgun(dd)
    renamed = dd.update_channel_adapter(
        adapter.id, name="Renamed", config={"domain": "mg2.example.com"}
    )
    assert renamed.name == "Renamed"
    assert renamed.config["domain"] == "mg2.example.com"
    assert renamed.credentials.reveal() == {"api_key": MAILGUN_KEY}  # kept
    rotated = dd.update_channel_adapter(adapter.id, credentials={"api_key": "key-new"})
    assert dd.get_channel_adapter(adapter.id).credentials.reveal() == {"api_key": "key-new"}
    assert rotated.credentials.reveal() == {"api_key": "key-new"}


def test_delete_adapter(dd) -> None:
    adapter = dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    dd.delete_channel_adapter(adapter.id)
    assert dd.list_channel_adapters() == []
    assert dd.get_default_adapter("email") is None


def test_credentials_are_encrypted_at_rest_and_decrypt_back(env) -> None:
    adapter = mailgun(env.dd)
    blob = raw_credentials(env, adapter.id)
    assert blob is not None and len(blob) > len(MAILGUN_KEY)
    assert MAILGUN_KEY.encode() not in blob
    assert b"api_key" not in blob
    assert env.dd.get_channel_adapter(adapter.id).credentials.reveal() == {"api_key": MAILGUN_KEY}


def test_adapters_without_credentials_store_none(env) -> None:
    adapter = env.dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    assert raw_credentials(env, adapter.id) is None
    assert adapter.credentials.reveal() == {}


def test_credentials_moved_to_another_row_do_not_decrypt(env) -> None:
    source = mailgun(env.dd)
    target = env.dd.create_channel_adapter(
        name="Other",
        channel="email",
        provider="mailgun",
        credentials={"api_key": "key-other"},
        config={"domain": "mg.example.com"},
    )
    with env.dd.runtime.engine.begin() as conn:
        conn.execute(
            text(f'UPDATE "{env.schema}".channel_adapters SET credentials = :blob WHERE id = :id'),
            {"blob": raw_credentials(env, source.id), "id": target.id},
        )
    with pytest.raises(CryptoError):
        env.dd.get_channel_adapter(target.id)
    assert env.dd.get_channel_adapter(source.id).credentials.reveal() == {"api_key": MAILGUN_KEY}


def test_reprs_never_show_credentials_or_hook_auth(dd) -> None:
    adapter = mailgun(dd)
    seq = dd.create_sequence(name="S", key="s")
    hook = dd.create_http_hook(
        seq.id,
        name="Score",
        key="score",
        url="https://example.com",
        auth_type="bearer",
        auth_config={"token": HOOK_TOKEN},
    )
    for shown in (
        repr(adapter),
        str(adapter),
        repr(dd.get_channel_adapter(adapter.id)),
        repr(dd.list_channel_adapters()),
        repr(dd.get_default_adapter("email")),
    ):
        assert MAILGUN_KEY not in shown
        assert "mailgun" in shown  # the record itself is shown
    for shown in (repr(hook), str(hook), repr(dd.get_http_hook(hook.id))):
        assert HOOK_TOKEN not in shown
        assert "score" in shown
    assert hook.auth_config.reveal() == {"token": HOOK_TOKEN}


def test_without_an_encryption_key_only_credential_free_adapters_can_be_stored(
    database_url: str, env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIPDROP_ENCRYPTION_KEY", raising=False)
    keyless = DripDrop(database_url, schema=env.schema, encryption_key=None)
    try:
        memory = keyless.create_channel_adapter(name="Mem", channel="email", provider="memory")
        assert keyless.get_channel_adapter(memory.id).provider == "memory"
        with pytest.raises(ConfigurationError, match="DRIPDROP_ENCRYPTION_KEY"):
            mailgun(keyless)
        assert [a.name for a in keyless.list_channel_adapters()] == ["Mem"]
    finally:
        keyless.close()
