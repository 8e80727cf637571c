"""Fixtures for the end-to-end channel tests: adapters, sequences and local servers.

This folder is put on ``sys.path`` so the engine can import ``e2e_templates`` (the module
templates' helper) by name, the way a host app's own module would be imported.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

SUBSCRIBER = {"type": "User", "id": 1}


@pytest.fixture
def closed_url() -> str:
    """A root URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def make_sequence(dd: Any) -> Callable[..., Any]:
    """``make_sequence(steps, version_config=None, key="s")``: a sequence with one active
    version; ``steps`` are ``create_step`` keyword dicts (name and channel required)."""

    def make(steps: list[dict[str, Any]], version_config: dict | None = None, key: str = "s"):
        seq = dd.create_sequence(name=key.upper(), key=key)
        version = dd.create_sequence_version(seq.id, active=True, config=version_config)
        created = [dd.create_step(version.id, **step) for step in steps]
        return seq, version, created

    return make
