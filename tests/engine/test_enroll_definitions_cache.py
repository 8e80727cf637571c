"""enroll reads the sequence and its active version from the definitions cache; the INSERT
re-checks them, so a change made by another process is honoured at once, not after the cache's
lifetime."""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop import DripDrop, ValidationError


@pytest.fixture
def other(env: Any) -> Any:
    """A second instance on the same schema: another process, with its own cache."""
    url = env.dd.runtime.engine.url.render_as_string(hide_password=False)
    o = DripDrop(url, schema=env.schema, clock=env.clock, encryption_key=env.dd.runtime._key_source)
    yield o
    o.close()


def _sequence(dd: DripDrop) -> tuple[Any, Any]:
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name="Cached", key="cached")
    v1 = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v1.id, name="one", channel="email", config={"subject": "1", "body": "1"})
    return seq, v1


def test_a_version_activated_elsewhere_takes_the_next_enrollment(dd: DripDrop, other: Any) -> None:
    seq, v1 = _sequence(dd)
    first = dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 1})
    assert first.sequence_version_id == v1.id  # the cache now holds v1 as the active version
    v2 = other.create_sequence_version(seq.id)
    other.create_step(v2.id, name="two", channel="email", config={"subject": "2", "body": "2"})
    other.activate_version(v2.id)
    second = dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 2})
    assert second.sequence_version_id == v2.id
    assert [x.step_id for x in dd.list_executions(second.id)] == [
        s.id for s in dd.list_steps(v2.id)
    ]


def test_a_sequence_deactivated_elsewhere_refuses_the_next_enrollment(
    dd: DripDrop, other: Any
) -> None:
    seq, _ = _sequence(dd)
    dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 1})
    other.update_sequence(seq.id, active=False)
    with pytest.raises(ValidationError) as caught:
        dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 2})
    assert "sequence_key" in caught.value.errors
    assert dd.get_enrollment("cached", "U", "2") is None


def test_a_sequence_deleted_elsewhere_is_not_found(dd: DripDrop, other: Any) -> None:
    from dripdrop import NotFound

    seq, _ = _sequence(dd)
    dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 1})
    other.delete_sequence(seq.id)
    with pytest.raises(NotFound):
        dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 2})


def test_an_immediate_first_step_wakes_listening_workers(dd: DripDrop) -> None:
    """The NOTIFY rides in the enroll's one statement and is delivered on commit."""
    import psycopg

    from dripdrop.engine.notify import channel_name

    _sequence(dd)
    url = dd.runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{channel_name(dd.schema)}"')
        dd.enroll(sequence_key="cached", subscriber={"type": "U", "id": 1})
        got = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert got == ["due"]


def test_a_stale_entry_is_reloaded_once_while_other_callers_keep_the_previous_one() -> None:
    """Forty threads finding the same entry stale load it once; the others answer with the
    previous entry meanwhile. With nothing cached, every caller loads (never a made-up answer)."""
    import threading
    import time

    from dripdrop.engine.defs import DefinitionCache

    cache = DefinitionCache(ttl=0.05)
    loads: list[int] = []
    started = threading.Event()

    def load() -> int:
        loads.append(1)
        started.set()
        time.sleep(0.2)
        return len(loads)

    assert cache.sequence("k", None, load) == 1  # primed
    time.sleep(0.1)  # stale now
    loads.clear()
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(cache.sequence("k", None, load)))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=lambda: answers.append(cache.sequence("k", None, load)))
        for _ in range(39)
    ]
    for t in [*others]:
        t.start()
    for t in [first, *others]:
        t.join(5)
    assert len(loads) == 1, loads
    assert sorted(answers) == [1] * 40  # the previous entry (1) and the reload (len == 1)
    fresh = DefinitionCache(ttl=0.05)
    loads.clear()
    threads = [threading.Thread(target=lambda: fresh.sequence("k", None, load)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(loads) == 5  # nothing to fall back on: each caller loads
