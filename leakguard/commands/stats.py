"""``leakguard stats`` (what each rule does, per rule or department) and
``leakguard stats audit RULE`` (the audit-first rollout report), for the officer.

Reads the service's store (found like ``leakguard holds``). Tables are aligned for
Japanese (East Asian wide characters count two columns); every printed name has its
control characters removed (rule ids and departments come from policy and directory files).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from leakguard.commands.service_args import period, service_config
from leakguard.holds.explain import zone
from leakguard.i18n import lang_from_env
from leakguard.officer.stats import (
    DAILY_ACTIONS,
    NOISY_MIN_CLOSED,
    NOISY_RATE,
    StatsReport,
    audit_report,
    audit_report_text,
    compute_stats,
    duration_text,
    key_text,
    label,
    pad,
    rate_text,
    width,
)
from leakguard.terminal import for_terminal, json_for_terminal

_T = {
    "audit_unknown_rule": (
        "注意: ルール {rule} はポリシー {path} にありません (ID の綴りを確認してください)。",
        "Note: the policy {path} has no rule {rule} (check the id's spelling).",
    ),
    "audit_not_audit": (
        "注意: ルール {rule} は監査モードではありません (mode: {mode})。"
        "監査のみの該当は mode: audit のルールだけが記録します。",
        "Note: the rule {rule} is not in audit mode (mode: {mode}); only mode: audit rules "
        "record audit-only hits.",
    ),
}

_COLUMNS = (
    "holds",
    "released",
    "released_bcc",
    "discarded",
    "expired",
    "open",
    "rate",
    "median",
    "bcc_rewrites",
    "audit_hits",
    "delays",
    "rejects",
)


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def _period_args(p: argparse.ArgumentParser, *, sub: bool) -> None:
    default: Any = argparse.SUPPRESS if sub else None
    p.add_argument(
        "--since",
        metavar="30d|DATE",
        default=default,
        help="start of the period: a duration back from now (7d, 12h) or a date (default 30d)",
    )
    p.add_argument(
        "--until",
        metavar="DATE",
        default=default,
        help="end of the period: a date (included) or date and time (default now)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="one JSON object instead of the table",
    )


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "stats",
        help="what each rule does: holds, releases, release rate, per rule or department",
        description="Statistics from the decision journal and the holds: holds, releases, "
        "release as Bcc, discards, expiries, median time to release, release rate (a proxy "
        "for false positives), Bcc rewrites, audit-only hits, delays and rejects.",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration; default $LEAKGUARD_CONFIG, then "
        "/etc/leakguard/leakguard.yaml, then make run's data directory",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (overrides the configuration)")
    _period_args(p, sub=False)
    p.add_argument(
        "--by",
        choices=("rule", "department"),
        default="rule",
        help="one row per rule (default) or per department",
    )
    p.add_argument(
        "--noisy-rate",
        type=float,
        default=NOISY_RATE,
        help="flag a rule as noisy from this release rate (default 0.8)",
    )
    p.add_argument(
        "--noisy-min",
        type=int,
        default=NOISY_MIN_CLOSED,
        help="... when at least this many of its holds were answered (default 10)",
    )
    p.set_defaults(func=run, stats_command=None)
    ss = p.add_subparsers(dest="stats_command", metavar="ACTION")
    a = ss.add_parser(
        "audit",
        help="what an audit-mode rule would have done, and how those mails were answered",
        description="The audit-first rollout report of one rule in mode: audit.",
    )
    a.add_argument("rule", metavar="RULE", help="rule id")
    _period_args(a, sub=True)
    a.add_argument(
        "--examples", type=int, default=10, help="how many example mails to list (default 10)"
    )
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def _rule_mode_note(cfg: Any, rule: str, lang: str) -> str:
    """A word when RULE is not an audit rule of the service's policy (or not in it at all):
    an empty report then says nothing about the rule's future."""
    from leakguard.policy import PolicyError, default_policy_path, load_policy

    path = Path(cfg.policy) if cfg.policy else default_policy_path()
    try:
        pol = load_policy(path, org_path=Path(cfg.org) if cfg.org else None)
    except (PolicyError, OSError):
        return ""
    found = next((r for r in pol.rules if r.id == rule), None)
    if found is None:
        return _t("audit_unknown_rule", lang).format(rule=for_terminal(rule), path=path)
    if found.mode != "audit":
        return _t("audit_not_audit", lang).format(rule=for_terminal(rule), mode=found.mode)
    return ""


async def _run(args: argparse.Namespace) -> int:
    lang = lang_from_env("ja")
    from leakguard.store import open_store
    from leakguard.store.stats import StatsQueries

    cfg = service_config(args, lang)
    if cfg is None:
        return 2
    tz = zone(cfg.holds.timezone)
    found = period(args.since or "30d", args.until, tz, lang)
    if found is None:
        return 2
    since, until = found
    store = await open_store(cfg.store_url(), create=False)
    try:
        q = StatsQueries(store)
        if args.stats_command == "audit":
            rep = await audit_report(q, args.rule, since, until, examples=max(0, args.examples))
            if args.json:
                print(json_for_terminal(rep.as_json()))
            else:
                sys.stdout.write(audit_report_text(rep, lang, tz))
                note = _rule_mode_note(cfg, args.rule, lang)
                if note:
                    sys.stdout.write(note + "\n")
            return 0
        report = await compute_stats(
            q,
            since,
            until,
            by=args.by,
            noisy_rate=args.noisy_rate,
            noisy_min=max(0, args.noisy_min),
            tz=tz,
        )
    finally:
        await store.close()
    if args.json:
        print(json_for_terminal(report.as_json()))
    else:
        sys.stdout.write(table_text(report, lang, tz))
    return 0


def _cell(row: Any, col: str, lang: str) -> str:
    if col == "rate":
        return rate_text(row.release_rate)
    if col == "median":
        return duration_text(row.median_release_seconds, lang)
    return str(getattr(row, col))


def table_text(report: StatsReport, lang: str, tz: tzinfo = UTC) -> str:
    """The report as an aligned table, noisy rules marked with ``*``."""
    fmt = "%Y-%m-%d %H:%M"
    head = (
        f"{label('period', lang)}: {report.since.astimezone(tz).strftime(fmt)} – "
        f"{report.until.astimezone(tz).strftime(fmt + ' %Z')}\n"
    )
    if report.days:
        # what the per-rule rows add up from: each mail once, by what the relay did
        sums = {a: sum(d.counts.get(a, 0) for d in report.days) for a in DAILY_ACTIONS}
        sep = "、" if lang == "ja" else ", "
        parts = sep.join(f"{label('act.' + a, lang)} {n}" for a, n in sums.items())
        head += label("mails_total", lang, total=sum(sums.values()), parts=parts) + "\n"
    if not report.rows:
        return head + label("no_data", lang) + "\n"
    header = [label(report.by, lang)] + [label(c, lang) for c in _COLUMNS]
    body = []
    for r in report.rows:
        name = key_text(r.key, report.by, lang)
        body.append([("* " if r.noisy else "  ") + name] + [_cell(r, c, lang) for c in _COLUMNS])
    header[0] = "  " + header[0]
    widths = [max(width(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        cells = [pad(line[0], widths[0])]
        cells += [pad(v, widths[i + 1], right=True) for i, v in enumerate(line[1:])]
        lines.append("  ".join(cells).rstrip())
    out = head + "\n".join(lines) + "\n"
    if report.noisy:
        out += (
            "\n"
            + label("noisy_note", lang, min=report.noisy_min, rate=round(report.noisy_rate * 100))
            + "\n"
        )
    return out
