"""``dripdrop rotate-key`` finishes the rows it can and names the ones it cannot (item 7), and
every ``dripdrop <command>`` a message tells users to run exists (item 8)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import text
from typer.testing import CliRunner

import dripdrop
from dripdrop import DripDrop
from dripdrop.cli import app
from dripdrop.crypto import KeyRing, generate_key
from dripdrop.definitions.rotation import rotate_all

runner = CliRunner()


def _blobs(dd: Any) -> dict[Any, bytes]:
    with dd.runtime.engine.begin() as conn:
        rows = conn.execute(text(f'SELECT id, credentials FROM "{dd.schema}".channel_adapters'))
        return {r.id: bytes(r.credentials) for r in rows}


def test_rotate_key_rotates_every_good_row_and_reports_the_bad_ones(database_url: str) -> None:
    schema = f"rot_{uuid.uuid4().hex[:8]}"
    old, new = generate_key(), generate_key()
    dd = DripDrop(database_url, schema=schema, encryption_key=old)
    dd.setup()
    try:
        ids = [
            dd.create_channel_adapter(
                name=f"mg{i}",
                channel="email",
                provider="mailgun",
                credentials={"api_key": f"key-{i}-secret"},
                config={"domain": "mg.example.com"},
            ).id
            for i in range(4)
        ]
        # The first row (in the order rotation walks) gets another row's ciphertext, which is
        # bound to that other row and cannot decrypt here: every good row comes after it.
        blobs = _blobs(dd)
        bad = sorted(ids)[0]
        donor = next(i for i in ids if i != bad)
        with dd.runtime.engine.begin() as conn:
            conn.execute(
                text(f'UPDATE "{schema}".channel_adapters SET credentials = :c WHERE id = :id'),
                {"c": blobs[donor], "id": bad},
            )
        args = ["rotate-key", "--database-url", database_url, "--schema", schema]
        result = runner.invoke(
            app, [*args, "--batch-size", "2"], env={"DRIPDROP_ENCRYPTION_KEY": f"{new},{old}"}
        )
        assert result.exit_code == 1, result.output
        assert "re-encrypted 3 row(s) of channel_adapters" in result.output
        assert f"channel_adapters {bad}" in result.output
        assert "key-" not in result.output  # reasons, never values
        ring = KeyRing.from_env_value(new)
        after = _blobs(dd)
        assert [i for i in ids if ring.needs_rotation(after[i])] == [bad]

        # The library call says the same, and a second run only finds the bad row again.
        rt = DripDrop(database_url, schema=schema, encryption_key=f"{new},{old}").runtime
        again = rotate_all(rt)
        assert again.counts["channel_adapters"] == 0
        assert [(f.table, f.id) for f in again.failed] == [("channel_adapters", bad)]
        assert "wrong row or tampered" in again.failed[0].reason
        rt.dispose()
    finally:
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        dd.close()


def _commands(group: Any) -> set[str]:
    return set(typer.main.get_command(group).commands)  # type: ignore[attr-defined]


def test_every_command_named_in_a_message_exists() -> None:
    """Messages and docstrings that say "run `dripdrop x`" name a real command."""
    source = Path(dripdrop.__file__).parent
    named: dict[str, list[str]] = {}
    for path in source.rglob("*.py"):
        for match in re.finditer(r"`+dripdrop ([a-z][a-z0-9-]*)", path.read_text()):
            named.setdefault(match.group(1), []).append(str(path.relative_to(source)))
    assert "gen-key" in named  # the scan sees the crypto messages
    commands = _commands(app)
    missing = {word: where for word, where in named.items() if word not in commands}
    assert not missing, f"messages name commands the CLI does not have: {missing}"
