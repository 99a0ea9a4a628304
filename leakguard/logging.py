"""structlog setup: a readable console for people on a terminal, JSON lines for machines.

Every decision and transition is one event (``log.info("message", ...)``). Secrets never
reach the log: AUTH lines are not logged by leakguard, aiosmtpd's own debug output is kept
at WARNING, and configuration secrets are ``SecretStr``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from leakguard.terminal import escape_log_values, json_for_terminal

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(json: bool | None = None, level: str | int = "info") -> None:
    """Configure structlog and stdlib logging once for the process.

    ``json=None`` picks JSON unless stderr is a terminal.
    """
    lvl = _LEVELS.get(level.lower(), logging.INFO) if isinstance(level, str) else level
    use_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_json:
        # values come from mail: C1 controls, bidi overrides, lone surrogates as \uXXXX
        renderer = structlog.processors.JSONRenderer(
            serializer=json_for_terminal, ensure_ascii=False
        )
        shared.append(structlog.processors.format_exc_info)
    else:
        shared.append(escape_log_values)  # no escape sequence from a subject reaches the tty
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # one write per line (print() writes the text and its newline apart: two worker
        # processes logging at once produced '{...}{...}\n\n', two events on one line)
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # stdlib loggers of libraries (aiosmtpd, uvicorn, sqlalchemy) go to stderr plainly;
    # aiosmtpd logs peers and commands at INFO/DEBUG, which could include AUTH lines.
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(max(lvl, logging.WARNING))
    logging.getLogger("aiosmtplib").setLevel(max(lvl, logging.WARNING))
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def get_logger(name: str = "leakguard") -> Any:
    return structlog.get_logger(name)
