"""``dripdrop templates generate`` through Typer's CliRunner, with scripted models loaded by
``--model-object`` (tests/ai/scripted_models.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dripdrop.cli import app

runner = CliRunner()


def test_generate_prints_the_repaired_template() -> None:
    result = runner.invoke(
        app,
        [
            "templates", "generate", "Welcome a trial user",
            "--channel", "email", "--var", "name", "--var", "trial_days_remaining",
            "--model-object", "scripted_models:repairing",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Welcome, {{ name }}!" in result.output
    assert "repairs: 1" in result.output


def test_generate_json_output() -> None:
    result = runner.invoke(
        app,
        [
            "templates", "generate", "Welcome", "--var", "name", "--var", "trial_days_remaining",
            "--model-object", "scripted_models:repairing", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["repairs"] == 1 and body["step_config"]["template_engine"] == "liquid"


def test_generate_fails_clearly_after_the_repair_limit() -> None:
    result = runner.invoke(
        app,
        [
            "templates", "generate", "Welcome", "--var", "name",
            "--model-object", "scripted_models:never_valid", "--max-repairs", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "2 attempt(s)" in result.output and "secret_plan" in result.output


def test_generate_refuses_bad_input_and_missing_keys(monkeypatch) -> None:
    result = runner.invoke(
        app,
        [
            "templates",
            "generate",
            "x",
            "--channel",
            "fax",
            "--model-object",
            "scripted_models:repairing",
        ],
    )
    assert result.exit_code == 1 and "channel" in result.output
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DRIPDROP_AI_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["templates", "generate", "x"])
    assert result.exit_code == 1 and "ANTHROPIC_API_KEY" in result.output
    result = runner.invoke(app, ["templates", "generate", "x", "--model-object", "nowhere"])
    assert result.exit_code == 2 and "MODULE:ATTRIBUTE" in result.output


def test_generate_takes_example_values() -> None:
    result = runner.invoke(
        app,
        [
            "templates", "generate", "Welcome", "--var", "name=Ada",
            "--var", "trial_days_remaining=3", "--model-object", "scripted_models:repairing",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["variables"] == ["name", "trial_days_remaining"]
