"""The embedded PostgreSQL is stopped by the close() of its last user, and by a CLI command that
started it; never while another instance or process still uses it."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from dripdrop import AsyncDripDrop, DripDrop
from dripdrop.cli import app
from dripdrop.db.embedded import embedded_server_running

CHILD = """
import sys
from sqlalchemy import text
from dripdrop import AsyncDripDrop, DripDrop

dd = DripDrop()
print("ready", flush=True)
sys.stdin.readline()
with dd.runtime.engine.connect() as conn:
    conn.execute(text("SELECT 1"))
dd.close()
print("closed", flush=True)
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("DRIPDROP_DATABASE_URL", raising=False)
    monkeypatch.setenv("DRIPDROP_HOME", str(tmp_path))
    return tmp_path


def _works(dd: DripDrop | AsyncDripDrop) -> None:
    with dd.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_close_stops_the_embedded_server_when_nothing_else_uses_it(home):
    a, b = DripDrop(), AsyncDripDrop()
    assert a.runtime.embedded and embedded_server_running(home)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        a.close()
        assert embedded_server_running(home)  # b uses it
        _works(b)
        asyncio.run(b.close())
        assert embedded_server_running(home)  # the other process uses it
        c = DripDrop()  # this process takes it again
        out, _ = child.communicate("\n", timeout=60)
        assert out.strip() == "closed" and child.returncode == 0
        assert embedded_server_running(home)  # c uses it
        _works(c)
        c.close()
        assert not embedded_server_running(home)
        c.close()  # again: nothing more
    finally:
        if child.poll() is None:
            child.kill()


def test_a_cli_command_stops_the_embedded_server_it_started(home, tmp_path):
    result = CliRunner().invoke(app, ["setup"])
    assert result.exit_code == 0, result.output
    assert not embedded_server_running(home)
    # Also when the command fails.
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n")
    result = CliRunner().invoke(app, ["enroll", "nosuch", str(tmp_path / "people.csv")])
    assert result.exit_code == 1 and "not found" in result.stderr
    assert not embedded_server_running(home)
