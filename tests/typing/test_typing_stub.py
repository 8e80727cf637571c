"""Type checkers see the facade: ``client.pyi`` (generated from OPERATIONS) and ``py.typed``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import dripdrop
from dripdrop import _stubgen
from dripdrop.operations import OPERATIONS

PACKAGE = Path(dripdrop.__file__).parent


def test_the_stub_matches_the_facade():
    on_disk = _stubgen.STUB_PATH.read_text() if _stubgen.STUB_PATH.exists() else ""
    assert _stubgen.generate() == on_disk, (
        f"src/dripdrop/client.pyi is out of date: run `{_stubgen.COMMAND}`"
    )


def test_the_stub_has_every_operation_on_both_faces():
    tree = ast.parse(_stubgen.STUB_PATH.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    sync = {f.name: f for f in classes["DripDrop"].body if isinstance(f, ast.FunctionDef)}
    asyn = {f.name: f for f in classes["AsyncDripDrop"].body if isinstance(f, ast.AsyncFunctionDef)}
    for name in [*OPERATIONS, "run_due", "run_worker", "simulate", "test_http_hook", "setup"]:
        assert name in sync and name in asyn, name
    for name in ("close", "__enter__", "__exit__"):
        assert name in sync
    for name in ("close", "__aenter__", "__aexit__"):
        assert name in asyn
    assert (PACKAGE / "py.typed").exists()


SNIPPET = """
from datetime import timedelta

from dripdrop import AsyncDripDrop, DripDrop

dd = DripDrop("postgresql://u@127.0.0.1/app", schema="app")
reveal_type(dd.enroll("onboarding", {"type": "User", "id": 1}, data={"plan": "pro"}))
reveal_type(dd.get_enrollment("onboarding", "User", 1))
reveal_type(dd.list_sequences())
reveal_type(dd.run_worker(lease_seconds=5.0, grace=1.0))
reveal_type(dd.simulate("onboarding", until=timedelta(days=3)))
dd.enroll("onboarding", {"type": "User", "id": 1}, dat={})
dd.run_worker(lease=5)


async def main() -> None:
    add = AsyncDripDrop()
    reveal_type(await add.enroll("onboarding", {"type": "User", "id": 1}))
    reveal_type(await add.run_worker(lease_seconds=5.0))
    async with add as same:
        reveal_type(same)
"""


def test_mypy_reads_the_facade(tmp_path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    cache = Path(tempfile.gettempdir()) / "dripdrop-mypy-cache"  # a cold run takes ~20 s
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), snippet.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    # Older mypy versions spell builtins in full.
    revealed = [t.replace("builtins.", "") for t in re.findall(r'Revealed type is "([^"]+)"', out)]
    assert revealed == [
        "dripdrop.records.Enrollment",
        "dripdrop.records.Enrollment | None",
        "list[dripdrop.records.Sequence]",
        "dripdrop.records.RunSummary",
        "dripdrop.engine.simulate.Timeline",
        "dripdrop.records.Enrollment",
        "dripdrop.records.RunSummary",
        "dripdrop.client.AsyncDripDrop",
    ], out
    assert 'Unexpected keyword argument "dat" for "enroll" of "DripDrop"' in out
    assert 'Unexpected keyword argument "lease" for "run_worker" of "DripDrop"' in out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out  # nothing else: the package is typed (py.typed)
