"""The scale tests reuse the chaos tests' helpers: the webhook sink and `dripdrop worker`
processes (tests/chaos/chaos_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "chaos"))
