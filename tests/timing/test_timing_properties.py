"""Property tests for next_cron_time across timezones, DST transitions and random expressions.

Each generated cron field carries the set of values it means, so an independent
matcher can check what cronsim and our DST mapping return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from dripdrop.timing import next_cron_time, parse_human

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Adelaide",  # +09:30 / +10:30, southern DST
    "Australia/Lord_Howe",  # DST shifts by 30 minutes
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 with DST
    "America/Santiago",  # transitions at local midnight
]
DST_ZONES = [z for z in ZONES if z not in ("UTC", "Asia/Kolkata", "Asia/Kathmandu")]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
PROPERTY = settings(max_examples=200, deadline=None)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]  # 0 = Sunday
    day_and: bool  # Vixie cron: OR when both day fields are restricted

    def matches(self, wall: datetime) -> bool:
        dom_ok = wall.day in self.doms
        dow_ok = (wall.weekday() + 1) % 7 in self.dows
        day_ok = (dom_ok and dow_ok) if self.day_and else (dom_ok or dow_ok)
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and day_ok
        )


def field(
    lo: int, hi: int, names: list[str] | None = None, star_hi: int | None = None
) -> st.SearchStrategy:
    """A cron field as (text, values); "*" (and "*/n") span lo..star_hi, the field's full range."""
    star_hi = star_hi or hi
    full = (st.just(("*", frozenset(range(lo, star_hi + 1)))),)
    single = st.integers(lo, hi).map(lambda v: (str(v), frozenset({v})))
    many = st.sets(st.integers(lo, hi), min_size=2, max_size=4).map(
        lambda s: (",".join(map(str, sorted(s))), frozenset(s))
    )
    span = (
        st.tuples(st.integers(lo, hi), st.integers(lo, hi))
        .map(sorted)
        .map(lambda ab: (f"{ab[0]}-{ab[1]}", frozenset(range(ab[0], ab[1] + 1))))
    )
    step = st.integers(2, max(2, (hi - lo) // 2)).map(
        lambda n: (f"*/{n}", frozenset(range(lo, star_hi + 1, n)))
    )
    options = [*full, single, many, span, step]
    if names:
        options.append(
            st.sets(st.integers(lo, hi), min_size=1, max_size=3).map(
                lambda s: (",".join(names[v] for v in sorted(s)), frozenset(s))
            )
        )
    return st.one_of(options)


@st.composite
def crons(draw: st.DrawFn, every_day: bool = False) -> Cron:
    minute = draw(field(0, 59))
    hour = draw(field(0, 23))
    star_dom, star_month, star_dow = (
        ("*", frozenset(range(1, 32))),
        ("*", frozenset(range(1, 13))),
        ("*", frozenset(range(7))),
    )
    if every_day:
        dom, month, dow = star_dom, star_month, star_dow
    else:
        # Keep day-of-month ≤ 28 so every month has a match and runs stay close.
        dom = draw(st.one_of(st.just(star_dom), field(1, 28, star_hi=31)))
        month = draw(st.one_of(st.just(star_month), field(1, 12)))
        dow = draw(st.one_of(st.just(star_dow), field(0, 6, DAY_NAMES)))
    parts = (minute, hour, dom, month, dow)
    return Cron(
        " ".join(p[0] for p in parts),
        *(p[1] for p in parts),
        day_and=dom[0].startswith("*") or dow[0].startswith("*"),
    )


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants where the zone's offset changes, 2023-2027."""
    tz, found = ZoneInfo(zone), []
    day = datetime(2023, 1, 1, tzinfo=UTC)
    while day.year < 2028:
        nxt = day + timedelta(days=1)
        if day.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = day, nxt
            while hi - lo > MINUTE:  # bisect to the minute
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid == lo:
                    break
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day = nxt
    return tuple(found)


@st.composite
def references(draw: st.DrawFn, zone: str, near_only: bool = False) -> datetime:
    """A reference instant, often (with near_only: always) hours from a DST transition."""
    near = transitions(zone)
    if near and (near_only or draw(st.booleans())):
        base = draw(st.sampled_from(near))
    else:
        base = draw(st.datetimes(datetime(2023, 1, 1), datetime(2027, 12, 1))).replace(tzinfo=UTC)
    hours, days = st.integers(-3 * 3600, 3600), st.integers(-2 * 86400, 2 * 86400)
    ref = base + timedelta(seconds=draw(hours if near_only else st.one_of(hours, days)))
    if draw(st.booleans()):
        ref = ref.replace(second=0, microsecond=0)  # exact minutes probe "strictly after"
    # Express the reference in the zone itself half the time: the input zone must not matter.
    return ref.astimezone(ZoneInfo(zone)) if draw(st.booleans()) else ref


def wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def gap_walls(instant: datetime, tz: ZoneInfo) -> list[datetime]:
    """Wall times skipped by a forward jump ending at ``instant`` (empty if none)."""
    before, at = wall(instant - MINUTE, tz), wall(instant, tz)
    return [before + MINUTE * i for i in range(1, (at - before) // MINUTE)]


def is_second_pass(instant: datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def check_run(cron: Cron, zone: str, after: datetime) -> datetime:
    tz = ZoneInfo(zone)
    got = next_cron_time(cron.text, zone, after)
    assert got.tzinfo is UTC
    assert got > after
    if not cron.matches(wall(got, tz)):
        # The documented gap rule: a match inside a spring-forward gap fires as the gap ends.
        assert any(cron.matches(w) for w in gap_walls(got, tz)), (cron.text, got)
    if got - after <= timedelta(days=2):
        # Nothing that should have fired was skipped between `after` and `got`.
        m = (after.astimezone(UTC) + MINUTE).replace(second=0, microsecond=0)
        while m < got:
            first_pass = not is_second_pass(m, tz)
            missed = (first_pass and cron.matches(wall(m, tz))) or any(
                cron.matches(w) for w in gap_walls(m, tz)
            )
            assert not missed, (cron.text, after, got, m)
            m += MINUTE
    return got


@PROPERTY
@given(data=st.data(), cron=crons(), zone=st.sampled_from(ZONES))
def test_next_run_is_the_next_matching_local_time(
    data: st.DataObject, cron: Cron, zone: str
) -> None:
    check_run(cron, zone, data.draw(references(zone)))


@PROPERTY
@given(data=st.data(), cron=crons(every_day=True), zone=st.sampled_from(DST_ZONES))
def test_next_run_around_dst_transitions(data: st.DataObject, cron: Cron, zone: str) -> None:
    # Daily-or-denser expressions from just before to just after a transition hit the gap
    # and the overlap often, which random days and months rarely do.
    check_run(cron, zone, data.draw(references(zone, near_only=True)))


@PROPERTY
@given(
    data=st.data(),
    cron=crons(every_day=True),
    zone=st.sampled_from(DST_ZONES),
)
def test_each_local_time_fires_at_most_once(data: st.DataObject, cron: Cron, zone: str) -> None:
    tz, after = ZoneInfo(zone), data.draw(references(zone, near_only=True))
    walls = []
    for _ in range(8):
        after = next_cron_time(cron.text, zone, after)
        walls.append(wall(after, tz))
    # Repeated (fall-back) wall times would show up as a non-increasing wall clock.
    assert walls == sorted(set(walls)), (cron.text, walls)


TIMES = [("9am", 9, 0), ("9:30am", 9, 30), ("3:30pm", 15, 30), ("15:00", 15, 0),
         ("noon", 12, 0), ("midnight", 0, 0), ("12am", 0, 0), ("2:30am", 2, 30),
         ("1:15 am", 1, 15), ("11:59pm", 23, 59)]  # fmt: skip
DAYS = [("every day", set(range(7))), ("daily", set(range(7))),
        ("every weekday", {1, 2, 3, 4, 5}), ("every weekend", {0, 6}),
        ("every monday", {1}), ("every sundays", {0}), ("every fri", {5}),
        ("every monday and thursday", {1, 4}), ("every tue, wed and sat", {2, 3, 6})]  # fmt: skip


@PROPERTY
@given(
    data=st.data(),
    day=st.sampled_from(DAYS),
    time=st.sampled_from(TIMES),
    zone=st.sampled_from(ZONES),
)
def test_human_phrases_fire_at_the_stated_local_time(
    data: st.DataObject, day: tuple[str, set[int]], time: tuple[str, int, int], zone: str
) -> None:
    phrase = f"{day[0]} at {time[0]}"
    cron = parse_human(phrase).cron
    assert cron is not None
    expected = Cron(
        phrase, frozenset({time[2]}), frozenset({time[1]}), frozenset(range(1, 32)),
        frozenset(range(1, 13)), frozenset(day[1]), day_and=True,
    )  # fmt: skip
    check_run(expected, zone, data.draw(references(zone)))
    # The phrase itself is accepted by next_cron_time and gives the same run.
    after = data.draw(references(zone))
    assert next_cron_time(phrase, zone, after) == next_cron_time(cron, zone, after)


@PROPERTY
@given(data=st.data(), n=st.integers(1, 59), unit=st.sampled_from(["minutes", "hours"]),
       zone=st.sampled_from(ZONES))  # fmt: skip
def test_every_n_restarts_at_the_top_of_the_unit(
    data: st.DataObject, n: int, unit: str, zone: str
) -> None:
    n = n if unit == "minutes" else 1 + n % 23
    after = data.draw(references(zone))
    got = next_cron_time(f"every {n} {unit}", zone, after)
    local = got.astimezone(ZoneInfo(zone))
    if not gap_walls(got, ZoneInfo(zone)):
        if unit == "minutes":
            assert local.minute % n == 0
        else:
            assert local.minute == 0 and local.hour % n == 0
    assert got > after
