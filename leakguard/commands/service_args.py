"""What the administrative commands share: finding the running service's configuration and
reading a ``--since``/``--until`` period, with errors in Japanese or English (exit 2)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from leakguard.config import ConfigError, NoServiceError, ServiceConfig, locate_service
from leakguard.durations import parse_duration

_T = {
    "config": ("設定ファイルが読めません:", "cannot use the configuration:"),
    "bad_time": (
        "期間の指定が不正です (例: 30d, 2026-11-01):",
        "not a period (e.g. 30d, 2026-11-01):",
    ),
    "bad_order": ("--since は --until より前にしてください。", "--since must be before --until."),
}


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def service_config(args: argparse.Namespace, lang: str) -> ServiceConfig | None:
    """The service's configuration (``-c``, ``--data-dir``, the usual places); None after
    telling why there is none (nothing is created)."""
    try:
        return locate_service(args.config, args.data_dir)
    except ConfigError as exc:
        print(_t("config", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
    except NoServiceError as exc:
        print(exc.text(lang), file=sys.stderr)
    return None


def parse_when(value: str, tz: tzinfo, now: datetime, *, end: bool = False) -> datetime:
    """A duration back from ``now`` (``30d``), a date (start of that day, or with
    ``end`` the start of the next) or an ISO date and time, in ``tz`` when naive."""
    value = value.strip()
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        day = date.fromisoformat(value)
    except ValueError:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(value) from None  # shown as given, not Python's English text
        return at.replace(tzinfo=tz) if at.tzinfo is None else at
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def period(
    since: str, until: str | None, tz: tzinfo, lang: str
) -> tuple[datetime, datetime] | None:
    """``[since, until)`` (``until`` default: now); None after telling what is wrong."""
    now = datetime.now(UTC)
    try:
        start = parse_when(since, tz, now)
        stop = parse_when(until, tz, now, end=True) if until else now
    except ValueError as exc:
        print(_t("bad_time", lang), exc, file=sys.stderr)
        return None
    if start >= stop:
        print(_t("bad_order", lang), file=sys.stderr)
        return None
    return start, stop
