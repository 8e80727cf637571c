"""channels/memo.py: values worked out once per object (an adapter's dicts), by identity."""

from __future__ import annotations

import pytest

from dripdrop.channels.memo import PerObject


def test_a_value_is_made_once_per_object_and_again_for_an_equal_but_other_object() -> None:
    memo = PerObject()
    made: list[int] = []

    def make(n: int) -> int:
        made.append(n)
        return n

    first = {"k": "v"}
    assert memo.get((first,), lambda: make(1)) == 1
    assert memo.get((first,), lambda: make(2)) == 1  # the same dict: not made again
    other = {"k": "v"}  # equal, not the same object
    assert memo.get((other,), lambda: make(3)) == 3
    assert made == [1, 3]


def test_extra_values_are_part_of_the_key() -> None:
    memo = PerObject()
    data = {"k": "v"}
    assert memo.get((data,), lambda: "a", "one") == "a"
    assert memo.get((data,), lambda: "b", "two") == "b"
    assert memo.get((data,), lambda: "c", "one") == "a"


def test_an_object_gone_cannot_pass_its_entry_to_a_new_one_with_the_same_id() -> None:
    """The entry keeps its objects alive, so their ids are never reused while it exists."""
    memo = PerObject()
    ids: set[int] = set()
    for n in range(200):
        data = {"n": n}
        ids.add(id(data))
        assert memo.get((data,), lambda n=n: n) == n  # never another dict's value
        del data  # freed at once (no cycles) were the memo not holding it
    assert len(ids) == 200  # every dict lived on in the memo: no id was reused


def test_a_full_memo_starts_again_empty_and_a_failed_make_caches_nothing() -> None:
    memo = PerObject(maxsize=2)
    kept = [{"n": n} for n in range(3)]
    for n, data in enumerate(kept):
        memo.get((data,), lambda n=n: n)
    assert len(memo._entries) == 1  # the third cleared the two before it

    def fails() -> int:
        raise ValueError("no")

    data = {"x": 1}
    for _ in range(2):
        with pytest.raises(ValueError):
            memo.get((data,), fails)
    assert memo.get((data,), lambda: 7) == 7
