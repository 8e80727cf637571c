"""Fixtures of the flow-control tests: memory adapters for every channel used."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from flow_support import Flow


@pytest.fixture
def flow(dd: Any) -> Flow:
    for channel in ("email", "sms", "slack", "webhook"):
        dd.create_channel_adapter(name=f"mem-{channel}", channel=channel, provider="memory")
    return Flow(dd)
