"""The curl examples of README.md's "REST API" section run, as written, against `dripdrop web`
(uvicorn on 127.0.0.1, a fresh schema): each must answer 2xx. With curl installed they are run
by curl; without it they are translated to httpx2 requests."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: ``NAME=$(curl ... | jq -r .field)``: a curl whose answer's field is kept as $NAME.
CAPTURE = re.compile(r"^(\w+)=\$\((curl\s.*)\|\s*jq -r \.(\w+)\)$", re.S)


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_commands() -> list[str]:
    """The shell commands of the section's curl block, continuation lines joined."""
    section = _section(README.read_text(encoding="utf-8"), "REST API")
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    (block,) = [b for b in blocks if "curl " in b]
    commands: list[str] = []
    current = ""
    for line in block.splitlines():
        current += line.rstrip().removesuffix("\\")
        if not line.rstrip().endswith("\\"):
            if current.strip():
                commands.append(current.strip())
            current = ""
        else:
            current += " "
    return commands


def _expand(command: str, variables: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in variables, f"README uses ${name}, which no earlier command set"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, command)


def _curl_argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == "curl", command
    return argv[1:]


def _run_curl(args: list[str]) -> tuple[int, str]:
    out = subprocess.run(
        ["curl", "--max-time", "20", *args, "-w", "\n%{http_code}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    body, _, status = out.stdout.rpartition("\n")
    return int(status), body


def _run_httpx(args: list[str]) -> tuple[int, str]:
    """The same request as curl ``args`` (the options the README uses)."""
    method, url, headers, data = None, None, {}, None
    items = iter(args)
    for arg in items:
        if arg in ("-s", "-S", "-sS"):
            continue
        if arg == "-X":
            method = next(items)
        elif arg == "-H":
            name, _, value = next(items).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data"):
            data = next(items)
        elif arg.startswith("-"):
            raise AssertionError(f"curl option {arg} not translated")
        else:
            url = arg
    assert url, args
    method = method or ("POST" if data is not None else "GET")
    answer = httpx2.request(method, url, headers=headers, content=data, timeout=20)
    return answer.status_code, answer.text


def test_the_section_has_the_examples_it_promises() -> None:
    commands = readme_commands()
    text = "\n".join(commands)
    for needed in (
        "/health",
        "POST",
        "/api/v1/sequences",
        "/api/v1/enrollments",
        "/executions",
        "Authorization: Bearer $DRIPDROP_TOKEN",
    ):
        assert needed in text, needed
    assert all(c.startswith("curl ") or CAPTURE.match(c) for c in commands), commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(env, database_url) -> Iterator[str]:
    """`dripdrop web` on a free port of 127.0.0.1 and the test's fresh schema; its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dripdrop.cli",
            "web",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--schema",
            env.schema,
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DRIPDROP_ENCRYPTION_KEY": ""},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx2.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        else:
            out = proc.communicate(timeout=10)[0] if proc.poll() is not None else ""
            pytest.fail(f"dripdrop web did not come up: {out}")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


# curl itself when the machine has it; the httpx2 variant sends the same requests everywhere.
RUNNERS = ["httpx2", *(["curl"] if shutil.which("curl") else [])]


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_readme_curl_examples_succeed(env, server, runner: str) -> None:
    run: Any = _run_curl if runner == "curl" else _run_httpx
    key = env.dd.create_api_key("readme", scopes=["admin"])
    variables = {"DRIPDROP_URL": server, "DRIPDROP_TOKEN": key.secret}
    answered: list[tuple[str, int]] = []
    for command in readme_commands():
        captured = CAPTURE.match(command)
        curl = captured.group(2) if captured else command
        status, body = run(_curl_argv(_expand(curl, variables)))
        assert 200 <= status < 300, f"{command}\n→ {status} {body}"
        answered.append((command, status))
        if captured:
            variables[captured.group(1)] = str(json.loads(body)[captured.group(3)])
    # The walk-through did what it says: the enrollment has its first execution scheduled.
    (enrollment,) = env.dd.list_active_enrollments("welcome")
    assert str(enrollment.id) == variables["ENROLLMENT_ID"]
    (execution,) = env.dd.list_executions(enrollment.id)
    assert execution.state == "scheduled" and execution.channel == "email"
    assert len(answered) == len(readme_commands())
