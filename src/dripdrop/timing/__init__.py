"""Step timing: validation of timing dicts, human phrases, cron in timezones, due times.

See docs/timing.md for the accepted shapes, the phrase grammar and the DST rules.
"""

from dripdrop.timing.cron import next_cron_time
from dripdrop.timing.human import HumanTiming, parse_human
from dripdrop.timing.schedule import delay_delta, due_time, event_timeout_at
from dripdrop.timing.spec import normalize_timing

__all__ = [
    "HumanTiming",
    "delay_delta",
    "due_time",
    "event_timeout_at",
    "next_cron_time",
    "normalize_timing",
    "parse_human",
]
