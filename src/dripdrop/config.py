"""Settings read from the environment (``DRIPDROP_*``) and the clock type."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from dripdrop.engine.notify import channel_name
from dripdrop.errors import ValidationError

Clock = Callable[[], datetime]

# NOTIFY channel names are identifiers, at most 63 bytes: pg_notify() refuses a longer one
# ("channel name too long", so every enroll would fail) while LISTEN silently cuts it. Workers
# listen on channel_name(schema), "dripdrop_<schema>": the schema gets what is left.
MAX_IDENTIFIER_BYTES = 63
MAX_SCHEMA_LENGTH = MAX_IDENTIFIER_BYTES - len(channel_name(""))
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def system_clock() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(UTC)


def validate_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain lowercase identifiers pass; and
    short enough that the workers' NOTIFY channel name fits PostgreSQL's 63 bytes."""
    rule = (
        "use lowercase letters, digits and _ (not starting with a digit or pg_), at most "
        f"{MAX_SCHEMA_LENGTH} characters so the NOTIFY channel {channel_name('<schema>')!r} fits "
        f"PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte limit"
    )
    if not isinstance(schema, str):
        raise ValidationError.single("schema", f"must be a string: {rule}")
    if len(schema) > MAX_SCHEMA_LENGTH:
        raise ValidationError.single(
            "schema", f"schema name is too long ({len(schema):,} characters): {rule}"
        )
    if not _SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise ValidationError.single("schema", f"invalid schema name {schema!r}: {rule}")
    return schema


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("dripdrop", appauthor=False))


def masked_url(url: str | None) -> str | None:
    """A database URL fit to print: its password replaced by ``***`` (all of it, when it cannot
    be parsed or carries a password in its query)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # unparseable: it may still hold a password somewhere
        return "***"
    if any("pass" in key.lower() for key in parsed.query):
        return "***"
    return parsed.render_as_string(hide_password=True)


class Settings(BaseSettings):
    """Environment configuration. Explicit ``DripDrop(...)`` arguments win over these.

    ``repr`` and ``str`` never show the encryption key nor the database password; the values
    themselves (attributes, ``model_dump()``) stay as given, for the code that needs them.
    """

    model_config = SettingsConfigDict(env_prefix="DRIPDROP_", extra="ignore")

    database_url: str | None = None
    schema_name: str = "dripdrop"
    encryption_key: str | None = None
    home: Path | None = None
    allow_private_network: bool = False

    def data_home(self) -> Path:
        return (self.home or default_home()).expanduser()

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = masked_url(value)
            elif name == "encryption_key" and value is not None:
                value = "***"
            yield name, value


def aware(dt: datetime) -> datetime:
    """Reject naive datetimes: every time DripDrop stores is UTC-aware."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: DripDrop needs timezone-aware datetimes (clock())")
    return dt.astimezone(UTC)
