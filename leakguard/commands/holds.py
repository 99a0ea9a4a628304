"""``leakguard holds list|show|release|release-bcc|discard`` for administrators.

Uses the same store and the same resolve path as the web and reply commands, so a CLI
answer is checked, recorded (actor ``admin:<name>``, via ``cli``) and announced to the
sender exactly like the others. ``show`` prints the hold and its timeline as plain text
ready to paste into an incident report.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from leakguard.durations import parse_duration
from leakguard.holds.explain import local_time, zone
from leakguard.holds.model import HoldState, Via
from leakguard.holds.service import Decision, HoldService
from leakguard.holds.texts import t
from leakguard.i18n import lang_from_env
from leakguard.organization import Organization
from leakguard.terminal import for_terminal, json_for_terminal

_T = {
    "config": ("設定ファイルが読めません:", "cannot use the configuration:"),
    "policy": (
        "ポリシーが読めません (組織情報なしで続けます):",
        "cannot load the policy (going on without the organisation):",
    ),
    "none": ("該当する保留はありません。", "No holds match."),
    "bad_age": ("--older-than の値が不正です:", "not a duration for --older-than:"),
    "created": ("保留日時", "held at"),
    "expires": ("期限", "expires"),
    "due": ("自動送信", "leaves at"),
    "sender": ("差出人", "sender"),
    "auth": ("認証ユーザー", "authenticated as"),
    "rcpts": ("宛先 (エンベロープ)", "recipients (envelope)"),
    "rules": ("ルール", "rules"),
    "reasons": ("理由", "reasons"),
    "approvers": ("承認者", "approvers"),
    "timeline": ("経過", "timeline"),
    "created_ev": ("保留", "held"),
}


_LIST_COLUMNS = ("id", "held_at", "state", "sender", "rules", "subject")


def _state_text(shown: str, value: str) -> str:
    """「送信済み (released)」; just ``released`` when both are the same word."""
    return shown if shown == value else f"{shown} ({value})"


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "holds",
        help="list, show and answer held mail (administrators)",
        description="Administer held mail: the same rules and audit trail as web and reply.",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration; default $LEAKGUARD_CONFIG, then "
        "/etc/leakguard/leakguard.yaml, then make run's data directory",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (overrides the configuration)")
    hs = p.add_subparsers(dest="holds_command", metavar="ACTION", required=True)

    ls = hs.add_parser("list", help="list holds (newest first)")
    ls.add_argument(
        "--state",
        choices=[s.value for s in HoldState],
        action="append",
        help="only holds in this state (repeatable)",
    )
    ls.add_argument("--sender", metavar="ADDR", help="only mail from this envelope sender")
    ls.add_argument("--rule", metavar="ID", help="only holds where this rule matched")
    ls.add_argument(
        "--older-than", metavar="DURATION", help="only holds older than this, e.g. 2h, 3d"
    )
    ls.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    ls.add_argument(
        "--json", action="store_true", help="one JSON object per line instead of the TSV table"
    )
    ls.set_defaults(func=run)

    show = hs.add_parser("show", help="print a hold and its timeline (for incident reports)")
    show.add_argument("hold_id", metavar="ID", help="hold id, e.g. H-ABCDE12345")
    show.set_defaults(func=run)

    for name, helptext in (
        ("release", "send the held mail"),
        ("release-bcc", "send it with the recipients moved to Bcc"),
        ("discard", "discard it"),
    ):
        a = hs.add_parser(name, help=helptext)
        a.add_argument("hold_id", metavar="ID", help="hold id, e.g. H-ABCDE12345")
        a.add_argument("--as", dest="admin", help="administrator name recorded (default: login)")
        a.add_argument("--note", default="", help="note recorded in the timeline")
        a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def _organization(cfg: Any, lang: str) -> Organization:
    try:
        from leakguard.policy import default_policy_path, load_policy

        path = Path(cfg.policy) if cfg.policy else default_policy_path()
        org_path = Path(cfg.org) if cfg.org else None
        return load_policy(path, org_path=org_path).organization
    except Exception as exc:
        print(_t("policy", lang), file=sys.stderr)
        problems = getattr(exc, "problems", None)
        for p in problems or ():
            print(f"  {p.text(lang)}", file=sys.stderr)
        if not problems:
            print(f"  {exc}", file=sys.stderr)
        return Organization()


async def _run(args: argparse.Namespace) -> int:
    lang = lang_from_env("ja")
    from leakguard.commands.service_args import service_config
    from leakguard.service import web_secret
    from leakguard.store import open_store

    cfg = service_config(args, lang)
    if cfg is None:
        return 2
    store = await open_store(cfg.store_url(), create=False)
    try:
        org = (
            _organization(cfg, lang)
            if args.holds_command in ("release-bcc", "release", "discard")
            else Organization()
        )
        service = HoldService(
            store,
            cfg.holds,
            cfg.web,
            secret=web_secret(cfg, create=False),
            organization=org,
        )
        cmd = args.holds_command
        if cmd == "list":
            return await _list(service, args, lang)
        if cmd == "show":
            return await _show(service, args.hold_id, lang)
        decision = {
            "release": Decision.RELEASE,
            "release-bcc": Decision.RELEASE_BCC,
            "discard": Decision.DISCARD,
        }[cmd]
        admin = args.admin or getpass.getuser()
        outcome = await service.resolve(
            args.hold_id, decision, actor=f"admin:{admin}", via=Via.CLI, admin=True, note=args.note
        )
        print(
            for_terminal(f"{args.hold_id}: {outcome.message(lang)}"),
            file=sys.stdout if outcome.ok else sys.stderr,
        )
        return 0 if outcome.ok else 1
    finally:
        await store.close()


async def _list(service: HoldService, args: argparse.Namespace, lang: str) -> int:
    older = None
    if args.older_than:
        try:
            older = service.now() - timedelta(seconds=parse_duration(args.older_than))
        except ValueError as exc:
            print(_t("bad_age", lang), exc, file=sys.stderr)
            return 2
    holds = await service.store.list_holds(
        states=[HoldState(s) for s in args.state or ()],
        sender=args.sender,
        rule=args.rule,
        older_than=older,
        limit=args.limit,
    )
    if args.json:  # machine-readable: one object per hold, nothing else on stdout
        for h in holds:
            print(
                json_for_terminal(
                    {
                        "id": h.id,
                        "created_at": h.created_at.isoformat(),
                        "state": h.state.value,
                        "action": h.action,
                        "mail_from": h.mail_from,
                        "rcpts": list(h.rcpts),
                        "rules": list(h.rules),
                        "subject": h.subject,
                        "expires_at": h.expires_at.isoformat(),
                        "due_at": h.due_at.isoformat() if h.due_at else None,
                    }
                )
            )
        return 0
    if not holds:
        print(_t("none", lang))
        return 0
    tz = zone(service.config.timezone)
    print("\t".join(_LIST_COLUMNS))  # stable English names: scripts cut by column
    for h in holds:
        subject = h.subject if len(h.subject) <= 60 else h.subject[:59] + "…"
        subject = " ".join(subject.split())  # no tab or newline can break the table
        fields = [
            h.id,
            local_time(h.created_at, tz),
            h.state.value,
            h.mail_from or "-",
            ",".join(h.rules) or "-",
            subject,
        ]
        print("\t".join(for_terminal(f) for f in fields))  # no escape reaches the terminal
    return 0


async def _show(service: HoldService, hold_id: str, lang: str) -> int:
    hold = await service.store.get_hold(hold_id)
    if hold is None:
        print(for_terminal(f"{hold_id}: {t('err.unknown_hold', lang)}"), file=sys.stderr)
        return 1
    ex = service.explain(hold, lang)
    tz = zone(service.config.timezone)
    lines = [
        f"{t('f.hold_id', lang)}: {hold.id}",
        f"{t('f.state', lang)}: {_state_text(ex.state_text, hold.state.value)}",
        f"{t('f.subject', lang)}: {ex.subject}",
        f"{_t('sender', lang)}: {ex.sender}",
    ]
    if hold.auth_user:
        lines.append(f"{_t('auth', lang)}: {hold.auth_user}")
    lines.append(f"{_t('created', lang)}: {local_time(hold.created_at, tz)}")
    if hold.due_at:
        lines.append(f"{_t('due', lang)}: {local_time(hold.due_at, tz)}")
    lines.append(f"{_t('expires', lang)}: {local_time(hold.expires_at, tz)}")
    lines.append(f"{_t('rules', lang)}: {', '.join(hold.rules) or '-'}")
    if hold.approvers:
        lines.append(f"{_t('approvers', lang)}: {', '.join(hold.approvers)}")
    lines.append(f"{_t('reasons', lang)}:")
    lines += [f"  - {r.text} [{r.rule_id}]" for r in ex.reasons]
    lines.append(f"{_t('rcpts', lang)}:")
    for r in ex.recipients:
        notes = "; ".join((r.kind, *r.notes))
        lines.append(f"  - {r.field} {r.display} ({notes})")
    for p in ex.third_parties:
        lines.append(f"  ! {p.addr}: {'; '.join(p.notes)}")
    lines.append(f"{_t('timeline', lang)}:")
    for tr in await service.store.timeline(hold.id):
        move = ""
        if tr.to_state is not None:
            frm = tr.from_state.value if tr.from_state else "-"
            move = f"{frm} -> {tr.to_state.value}"
        note = f"  {tr.note}" if tr.note else ""
        at = tr.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        lines.append(f"  {at}  {tr.via.value:<6} {tr.actor:<32} {move}{note}")
    # every line holds mail-derived text (subject, names, addresses, notes): escaped
    print("\n".join(for_terminal(line) for line in lines))
    return 0
