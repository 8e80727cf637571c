"""Settings read from the environment (``DRIPDROP_*``) and the clock type."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from dripdrop.errors import ValidationError

Clock = Callable[[], datetime]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def system_clock() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(UTC)


def validate_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain lowercase identifiers pass."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema) or schema.startswith("pg_"):
        raise ValidationError.single(
            "schema",
            f"invalid schema name {schema!r}: use lowercase letters, digits and _ "
            "(at most 63 characters, not starting with a digit or pg_)",
        )
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
