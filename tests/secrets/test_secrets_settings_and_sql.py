"""Configuration and database errors show no secret: ``Settings`` hides the database password
and the encryption key, and neither engine puts statement parameters (rendered content,
recipients) into an error's text (items 4 and 5 of the issue)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dripdrop import DripDrop
from dripdrop.config import Settings
from dripdrop.crypto import generate_key
from dripdrop.db.engine import make_async_engine, make_engine
from dripdrop.runtime import Runtime

PASSWORD = "pg-Pa55word-xyz"
KEY = generate_key()
CONTENT = "Dear Ada, your reset code is 918273"


def test_settings_show_neither_the_password_nor_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIPDROP_DATABASE_URL", f"postgresql://app:{PASSWORD}@db.internal/app")
    monkeypatch.setenv("DRIPDROP_ENCRYPTION_KEY", KEY)
    settings = Settings()
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert PASSWORD not in shown and KEY not in shown
        assert "db.internal" in shown  # still says where it connects
    # The values themselves stay usable by the code that needs them.
    assert settings.encryption_key == KEY
    assert PASSWORD in settings.model_dump()["database_url"]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app@db.internal/app?password={PASSWORD}",
        f"not a url {PASSWORD}",
    ],
)
def test_a_password_elsewhere_in_the_url_is_hidden_too(url: str) -> None:
    assert PASSWORD not in repr(Settings(database_url=url))


def test_a_runtime_and_an_instance_show_no_secret(database_url: str) -> None:
    rt = Runtime(database_url, encryption_key=KEY, settings=Settings(database_url=database_url))
    try:
        shown = f"{rt!r} {rt.settings!r} {rt.keyring!r} {rt.engine!r}"
        assert KEY not in shown
    finally:
        rt.dispose()
    dd = DripDrop(database_url, encryption_key=KEY)
    try:
        assert KEY not in repr(dd)
    finally:
        dd.close()


def _failing(params: dict[str, Any]) -> Any:
    # Division by zero: PostgreSQL's own message quotes no value, so what remains is SQLAlchemy's.
    return text("SELECT CAST(:content AS text), CAST(:recipient AS text), 1 / 0"), params


PARAMS = {"content": CONTENT, "recipient": "ada@example.com"}


def _assert_hidden(exc: BaseException) -> None:
    for shown in (str(exc), repr(exc)):
        assert CONTENT not in shown and "ada@example.com" not in shown
    assert "hidden" in str(exc)  # it says they were left out


@pytest.mark.parametrize("which", ["engine", "worker_engine"])
def test_sync_engine_errors_carry_no_parameters(dd: Any, which: str) -> None:
    engine = getattr(dd.runtime, which)
    with pytest.raises(DBAPIError) as info, engine.connect() as conn:
        conn.execute(*_failing(PARAMS))
    _assert_hidden(info.value)


def test_a_fresh_sync_engine_hides_parameters(database_url: str) -> None:
    engine = make_engine(database_url, "public")
    try:
        with pytest.raises(DBAPIError) as info, engine.connect() as conn:
            conn.execute(*_failing(PARAMS))
        _assert_hidden(info.value)
    finally:
        engine.dispose()


async def test_async_engine_errors_carry_no_parameters(database_url: str) -> None:
    engine = make_async_engine(database_url, "public")
    try:
        with pytest.raises(DBAPIError) as info:
            async with engine.connect() as conn:
                await conn.execute(*_failing(PARAMS))
        _assert_hidden(info.value)
    finally:
        await engine.dispose()
