"""`dripdrop enroll` reports what it did; bad input ends any command with one line on stderr."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from dripdrop import DripDrop
from dripdrop.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def schema(database_url: str) -> Iterator[str]:
    """A schema with a sequence ``csv`` of one email step."""
    name = f"cli_in_{uuid.uuid4().hex[:8]}"
    dd = DripDrop(database_url, schema=name)
    dd.setup()
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name="CSV", key="csv")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(version.id, name="hi", channel="email", config={"subject": "Hi", "body": "b"})
    try:
        yield name
    finally:
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        dd.close()


def test_enroll_says_how_many_were_new_and_leaves_blank_cells_out(database_url, schema, tmp_path):
    common = ["--database-url", database_url, "--schema", schema]
    first = tmp_path / "first.csv"
    first.write_text("id,name,plan\n1,Ada,\n2,Bob,pro\n 3 ,Cy,  \n")
    result = runner.invoke(app, ["enroll", "csv", str(first), *common])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "enrolled 3"
    dd = DripDrop(database_url, schema=schema)
    try:
        assert dd.get_enrollment("csv", "User", "1").data == {"name": "Ada"}
        assert dd.get_enrollment("csv", "User", "2").data == {"name": "Bob", "plan": "pro"}
        assert dd.get_enrollment("csv", "User", "3").data == {"name": "Cy"}
    finally:
        dd.close()

    again = runner.invoke(app, ["enroll", "csv", str(first), *common])
    assert again.output.splitlines()[-1] == "enrolled 0 new; 3 already enrolled"

    second = tmp_path / "second.csv"  # Excel's byte order mark, a repeated id
    second.write_bytes("\ufeffid,name\n3,Cy\n4,Di\n5,Ed\n5,Ed\n".encode())
    result = runner.invoke(app, ["enroll", "csv", str(second), *common])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "enrolled 2 new; 1 already enrolled; 1 repeated id(s) in the file enrolled once"
    )


def _files(tmp_path):
    (tmp_path / "noid.csv").write_text("email,name\na@x.io,Ada\n")
    (tmp_path / "blankid.csv").write_text("id,name\n1,Ada\n,Bob\n")
    (tmp_path / "wide.csv").write_text("id,name\n1,Ada,extra\n")
    (tmp_path / "ok.csv").write_text("id,name\n1,Ada\n")
    (tmp_path / "binary.csv").write_bytes(b"id,name\n1,\xff\xfe\n")


BAD_INPUT = [
    # (arguments ({tmp} is a folder of CSV files), exit code, words the line must hold)
    (["enroll", "csv", "{tmp}/noid.csv"], 2, ["'id' column", "email, name", "--id-column"]),
    (["enroll", "csv", "{tmp}/ok.csv", "--id-column", "user_id"], 2, ["'user_id' column"]),
    (["enroll", "csv", "{tmp}/blankid.csv"], 2, ["line 3", "blank 'id'"]),
    (["enroll", "csv", "{tmp}/wide.csv"], 2, ["line 2", "more cells than columns"]),
    (["enroll", "csv", "{tmp}/binary.csv"], 2, ["binary.csv", "utf-8"]),
    (["enroll", "csv", "{tmp}/missing.csv"], 2, ["missing.csv", "No such file"]),
    (["enroll", "nosuch", "{tmp}/ok.csv"], 1, ["nosuch", "not found"]),
    (["simulate", "csv", "--data", "{bad"], 2, ["--data", "not valid JSON"]),
    (["simulate", "csv", "--data", "[1]"], 2, ["--data", "JSON object"]),
    (["simulate", "csv", "--event", "2d"], 2, ["--event", "no event key"]),
    (["simulate", "csv", "--event", "2d:paid:{x"], 2, ["--event", "not valid JSON"]),
    (["simulate", "csv", "--event", "soon:paid"], 2, ["--event", "'soon'"]),
    (["simulate", "csv", "--until", "forever"], 2, ["--until", "'forever'"]),
    (["simulate", "nosuch"], 1, ["nosuch", "not found"]),
    (["worker", "--concurrency", "0"], 2, ["--concurrency", "at least 1"]),
    (["worker", "--lease", "-1"], 2, ["--lease"]),
    (["setup", "--schema", "Bad Schema!"], 1, ["schema"]),
    (["status", "--schema", "never_set_up_x"], 1, ["does not exist", "dripdrop setup"]),
    (["rotate-key"], 1, ["DRIPDROP_ENCRYPTION_KEY"]),
]


@pytest.mark.parametrize(("args", "code", "words"), BAD_INPUT)
def test_bad_input_is_one_line_on_stderr(database_url, schema, tmp_path, args, code, words):
    _files(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--schema" not in args:
        args += ["--schema", schema]
    result = runner.invoke(
        app, [*args, "--database-url", database_url], env={"DRIPDROP_ENCRYPTION_KEY": ""}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("not a url", 2, ["--database-url", "not a database URL"]),
        ("postgresql://u:s3cret@host:port/x", 2, ["--database-url", "not a database URL"]),
        ("postgresql://u:s3cret@127.0.0.1:1/x", 1, ["database:", "connection"]),
    ],
)
def test_a_bad_database_url_is_one_line_on_stderr(url, code, words):
    result = runner.invoke(app, ["setup", "--database-url", url])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert "s3cret" not in lines[0]
