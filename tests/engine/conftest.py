from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


class Flow:
    """Builds a sequence quickly: ``flow.step(...)`` appends steps to an active version."""

    def __init__(self, dd: Any, key: str = "flow", **seq: Any) -> None:
        self.dd = dd
        self.key = key
        self.seq = dd.create_sequence(name=key.title(), key=key, **seq)
        self.version = dd.create_sequence_version(self.seq.id, active=True)

    def step(self, name: str, channel: str = "email", **kw: Any) -> Any:
        kw.setdefault(
            "config",
            {"subject": f"{name} {{{{ name }}}}", "body": "b"}
            if channel == "email"
            else {"body": name},
        )
        return self.dd.create_step(self.version.id, name=name, channel=channel, **kw)

    def enroll(self, sid: Any = 1, **data: Any) -> Any:
        data.setdefault("email", f"u{sid}@example.com")
        data.setdefault("phone", "+15550000000")
        return self.dd.enroll(self.key, {"type": "User", "id": sid}, data=data)


@pytest.fixture
def flow(dd: Any) -> Flow:
    for channel in ("email", "sms", "pubsub", "webhook"):
        dd.create_channel_adapter(name=f"mem-{channel}", channel=channel, provider="memory")
    return Flow(dd)
