"""Structured logging: JSON lines for journald, readable lines in a terminal.

Nothing that looks like key material ever reaches a log line: a processor redacts it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, WrappedLogger

_SECRET = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+", re.IGNORECASE)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip


def _redact_value(value: Any) -> Any:
    if isinstance(value, str) and _SECRET.search(value):
        return _SECRET.sub("AGE-SECRET-KEY-[REDACTED]", value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {k: _redact_value(v) for k, v in event_dict.items()}


class CurrentStdout:
    """Writes to whatever sys.stdout is now, so a rich Live display that redirects stdout
    can print log lines above its table instead of through it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()


def configure_logging(fmt: str = "auto", level: str = "info",
                      stream: TextIO | CurrentStdout | None = None) -> None:
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, stream)),
        cache_logger_on_first_use=False,
    )
    # libraries log through the standard library; with no handler its last resort prints
    # bare text to stderr (watchdog's "queue_events() called when the thread is inactive"
    # as a watcher stops): their warnings are theirs to fix, their errors still show
    logging.getLogger("watchdog").setLevel(logging.ERROR)
