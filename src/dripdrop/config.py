"""Settings read from the environment (``DRIPDROP_*``) and the clock type."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

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


class Settings(BaseSettings):
    """Environment configuration. Explicit ``DripDrop(...)`` arguments win over these."""

    model_config = SettingsConfigDict(env_prefix="DRIPDROP_", extra="ignore")

    database_url: str | None = None
    schema_name: str = "dripdrop"
    encryption_key: str | None = None
    home: Path | None = None
    allow_private_network: bool = False

    def data_home(self) -> Path:
        return (self.home or default_home()).expanduser()


def aware(dt: datetime) -> datetime:
    """Reject naive datetimes: every time DripDrop stores is UTC-aware."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: DripDrop needs timezone-aware datetimes (clock())")
    return dt.astimezone(UTC)
