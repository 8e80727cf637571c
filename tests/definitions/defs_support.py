"""Helpers shared by the definitions tests (imported as a top-level module, like
tests/providers/cases.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dripdrop.errors import ValidationError


def errors_of(call: Callable[[], Any]) -> dict[str, list[str]]:
    """The ``.errors`` of the ValidationError ``call`` raises (fails the test when none)."""
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.errors
