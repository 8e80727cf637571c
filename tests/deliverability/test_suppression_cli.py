"""``dripdrop suppressions import | export | list``: CSV round trip, bad rows with line numbers."""

from __future__ import annotations

import csv
import io

from typer.testing import CliRunner

from dripdrop.cli import app
from dripdrop.testing import TestEnv

runner = CliRunner()

GOOD_AND_BAD = """channel,recipient,reason,category,tenant_key
email, Ada@Example.com ,unsubscribe,marketing,
email,not an address,bounce,,
sms,+44 7700 900123,bounce,,acme
email,bo@example.com,,,acme
fax,x@example.com,manual,,
email,cy@example.com,sulking,,
email,ada@example.com,complaint,marketing,
"""


def _args(env: TestEnv, *args: str) -> list[str]:
    return [*args, "--database-url", env.dd.runtime.database_url, "--schema", env.schema]


def test_import_reports_bad_rows_and_imports_the_rest_then_exports_them(
    env, tmp_path, database_url
):
    source = tmp_path / "in.csv"
    source.write_text(GOOD_AND_BAD)
    result = runner.invoke(app, _args(env, "suppressions", "import", str(source)))
    assert result.exit_code == 1, result.output
    assert "line 3: recipient:" in result.output
    assert "line 6: channel: must be one of" in result.output
    assert "line 7: reason: must be one of" in result.output
    assert "imported 4 suppression(s); 3 bad row(s) skipped" in result.output

    rows = {
        (s.channel, s.recipient, s.reason, s.category, s.tenant_key)
        for s in env.dd.list_suppressions(all_tenants=True)
    }
    assert rows == {
        ("email", "ada@example.com", "complaint", "marketing", None),  # the stronger reason
        ("sms", "+447700900123", "bounce", None, "acme"),
        ("email", "bo@example.com", "manual", None, "acme"),
    }

    exported = tmp_path / "out.csv"
    result = runner.invoke(app, _args(env, "suppressions", "export", str(exported)))
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert {tuple(r.values()) for r in table} == {
        tuple("" if v is None else v for v in row) for row in rows
    }

    # the round trip: the export imported into another schema gives the same rows
    other = TestEnv(database_url)
    try:
        result = runner.invoke(app, _args(other, "suppressions", "import", str(exported)))
        assert result.exit_code == 0, result.output
        again = {
            (s.channel, s.recipient, s.reason, s.category, s.tenant_key)
            for s in other.dd.list_suppressions(all_tenants=True)
        }
        assert again == rows
        listed = runner.invoke(app, _args(other, "suppressions", "list", "--tenant", "acme"))
        assert listed.exit_code == 0
        assert "bo@example.com  manual  category=*  tenant=acme" in listed.output
        assert "ada@example.com" not in listed.output
    finally:
        other.close()


def test_export_to_stdout_and_a_missing_column(env, tmp_path):
    env.dd.suppress("email", "ada@example.com")
    result = runner.invoke(app, _args(env, "suppressions", "export"))
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "channel,recipient,reason,category,tenant_key",
        "email,ada@example.com,manual,,",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nada@example.com\n")
    result = runner.invoke(app, _args(env, "suppressions", "import", str(bad)))
    assert result.exit_code == 2
    assert "no channel, recipient column(s)" in result.output


def test_a_large_import_is_batched(env, tmp_path):
    source = tmp_path / "many.csv"
    lines = ["channel,recipient"] + [f"email,user{n}@example.com" for n in range(5000)]
    source.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, _args(env, "suppressions", "import", str(source)))
    assert result.exit_code == 0, result.output
    assert "imported 5000 suppression(s); 0 bad row(s) skipped" in result.output
    assert len(env.dd.list_suppressions()) == 5000
