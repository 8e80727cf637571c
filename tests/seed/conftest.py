"""Fixtures of the seed tests: a clock at the seed's start, the recording server, the adapters."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from dripdrop.testing import FakeClock

sys.path.insert(0, str(Path(__file__).parent))  # seed_support and the seed's MyApp hook modules

from seed_support import START, Recorder, SeedAdapters, create_seed_adapters


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def server(httpserver: Any) -> Recorder:
    recorder = Recorder(httpserver.url_for("").rstrip("/"))
    httpserver.expect_request(re.compile(".*")).respond_with_handler(recorder.handle)
    return recorder


@pytest.fixture
def adapters(dd: Any, server: Recorder) -> SeedAdapters:
    return create_seed_adapters(dd, server)
