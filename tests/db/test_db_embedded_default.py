"""DripDrop() with no database URL starts an embedded PostgreSQL and keeps a key beside it."""

from __future__ import annotations

import logging

from dripdrop import DripDrop
from dripdrop.db.embedded import embedded_server_running


def test_no_url_means_an_embedded_database(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DRIPDROP_DATABASE_URL", raising=False)
    monkeypatch.delenv("DRIPDROP_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("DRIPDROP_HOME", str(tmp_path))
    caplog.set_level(logging.WARNING, logger="dripdrop")
    dd = DripDrop()
    try:
        assert dd.runtime.embedded
        assert (tmp_path / "pgdata").is_dir()
        assert str(tmp_path / "pgdata") in caplog.text  # it says where
        dd.setup()
        adapter = dd.create_channel_adapter(
            name="mg",
            channel="email",
            provider="mailgun",
            credentials={"api_key": "key-embedded"},
            config={"domain": "mg.example.com"},
        )
        key_file = tmp_path / "encryption.key"
        assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert "generated an encryption key" in caplog.text
        # A second instance reuses the server and the stored key.
        again = DripDrop()
        assert again.get_channel_adapter(adapter.id).credentials.reveal() == {
            "api_key": "key-embedded"
        }
        again.close()
    finally:
        dd.close()
    assert not embedded_server_running(tmp_path)  # the last close stopped it
