"""Log output for ``dripdrop worker`` / ``dripdrop web``: text or JSON lines.

DripDrop logs through stdlib :mod:`logging` (loggers ``dripdrop.*``) and passes ids as
structured fields (``extra=``): ``execution_id``, ``enrollment_id``, ``table``, ``rows`` …
JSON lines (python-json-logger) carry every such field as a key; the text format appends them as
``key=value``. When tracing is on, ``trace_id``/``span_id`` of the current span are added, so a
log line leads to its trace.

What DripDrop logs never holds a secret, a recipient or a rendered field: failures are logged
by execution id (the reason is on the execution's ``error_message``, which the API and the
dashboard show to those allowed to see it).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

#: Fields DripDrop passes with ``extra=`` that the text format shows.
STRUCTURED_FIELDS = (
    "execution_id",
    "enrollment_id",
    "outcome",
    "table",
    "rows",
    "trace_id",
    "span_id",
)

_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class TextFormatter(logging.Formatter):
    """The classic line, then the structured fields present as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [f"{k}={getattr(record, k)}" for k in STRUCTURED_FIELDS if hasattr(record, k)]
        return f"{line} {' '.join(extra)}" if extra else line


class TraceIds(logging.Filter):
    """Adds the current span's ``trace_id``/``span_id`` (hex) when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        from dripdrop.observability import tracing

        if tracing.enabled():
            ctx = tracing.trace.get_current_span().get_span_context()
            if ctx.is_valid:
                record.trace_id = format(ctx.trace_id, "032x")
                record.span_id = format(ctx.span_id, "016x")
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` and every
    structured field."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    )


def configure(
    fmt: str = "text", level: int | str = logging.INFO, stream: TextIO | None = None
) -> Any:
    """Send every log record to ``stream`` (stderr) as text or JSON lines, at ``level``;
    replaces the root logger's handlers. Returns the handler."""
    if fmt not in ("text", "json"):
        from dripdrop.errors import ValidationError

        raise ValidationError.single("log_format", "must be 'text' or 'json'")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(TraceIds())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    return handler
