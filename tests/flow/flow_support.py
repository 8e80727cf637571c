"""Helpers of the flow-control tests (imported by conftest and the tests)."""

from __future__ import annotations

from typing import Any

from dripdrop.testing import outbox


class Flow:
    """``flow.step(...)`` appends steps to an active version; ``flow.edge(...)`` adds a
    transition; ``flow.enroll(...)`` enrolls a subscriber."""

    def __init__(self, dd: Any, key: str = "flow", config: dict[str, Any] | None = None) -> None:
        self.dd = dd
        self.key = key
        self.seq = dd.create_sequence(name=key.title(), key=key)
        self.version = dd.create_sequence_version(self.seq.id, active=True, config=config)

    def step(self, name: str, channel: str = "email", **kw: Any) -> Any:
        if channel != "split":
            kw.setdefault(
                "config",
                {"subject": name, "body": "b"} if channel == "email" else {"body": name},
            )
        return self.dd.create_step(self.version.id, name=name, key=name, channel=channel, **kw)

    def edge(self, src: Any, dst: Any, *, priority: int = 0, mode: str = "always") -> Any:
        return self.dd.create_transition(
            self.version.id,
            from_step_id=src.id,
            to_step_id=None if dst is None else dst.id,
            condition_mode=mode,
            priority=priority,
        )

    def enroll(self, sid: Any = 1, **data: Any) -> Any:
        data.setdefault("email", f"u{sid}@example.com")
        data.setdefault("phone", "+15550000000")
        return self.dd.enroll(self.key, {"type": "User", "id": sid}, data=data)


def sent(channel: str | None = None) -> list[str]:
    """Subjects (email) or bodies of what the memory providers delivered, in order."""
    return [m.payload.get("subject") or m.payload.get("body") for m in outbox(channel)]


def trail(dd: Any, enrollment: Any) -> list[tuple[str, str]]:
    """(step key, state) of the enrollment's executions in order."""
    keys = {s.id: s.key for s in dd.list_steps(enrollment.sequence_version_id)}
    return [(keys[x.step_id], x.state) for x in dd.list_executions(enrollment.id)]
