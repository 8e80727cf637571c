"""Fixtures of the definitions tests: a sequence with a draft version, and a step in it."""

from __future__ import annotations

import pytest


@pytest.fixture
def version(dd):
    seq = dd.create_sequence(name="Onboarding", key="onboarding")
    return dd.create_sequence_version(seq.id)


@pytest.fixture
def step(dd, version):
    return dd.create_step(
        version.id,
        name="Welcome",
        channel="email",
        config={"subject": "Hi {{ name }}", "body": "Welcome"},
    )
