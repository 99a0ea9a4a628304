"""``leakguard incidents report|list|show|followup|close|reopen`` (issue 9).

Works on the running service's store like ``leakguard holds``: a report filed here is
routed exactly as one from the web or by mail (alert mails are queued in the store and sent
by the service's delivery workers; the webhook, if any, is sent before the command ends).
``show`` prints the incident record as text or Markdown, or writes it as PDF.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

from leakguard.i18n import lang_from_env, normalize_lang
from leakguard.officer.texts import t
from leakguard.store.journal import FOLLOWUPS
from leakguard.terminal import for_terminal, json_for_terminal


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "incidents",
        help="report mistakes, list incidents, print the incident record (officers)",
        description="Incident reports and near-miss alerts: file a report, list incidents, "
        "print the record (text, Markdown, PDF), tick follow-ups, close.",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration; default $LEAKGUARD_CONFIG, then "
        "/etc/leakguard/leakguard.yaml, then make run's data directory",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (overrides the configuration)")
    p.add_argument("--as", dest="admin", help="administrator name recorded (default: login)")
    s = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)

    rp = s.add_parser("report", help="report a mail that went out by mistake")
    g = rp.add_mutually_exclusive_group(required=True)
    g.add_argument("--decision", metavar="M-ID", help="the journal id of the mail (M-...)")
    g.add_argument("--hold", metavar="H-ID", help="the hold id of the mail (H-...)")
    rp.add_argument("--note", default="", help="what went wrong (no identifiers, please)")
    rp.set_defaults(func=run)

    ls = s.add_parser("list", help="list incidents (newest first)")
    ls.add_argument("--open", action="store_true", help="only incidents still open")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    ls.set_defaults(func=run)

    sh = s.add_parser("show", help="print the incident record")
    sh.add_argument("incident_id", metavar="ID", help="incident id, e.g. I-ABCDE12345")
    sh.add_argument("--format", choices=("text", "md", "pdf"), default="text", help="output format")
    sh.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    sh.add_argument("--lang", choices=("ja", "en"), help="language (default: from the locale)")
    sh.set_defaults(func=run)

    fu = s.add_parser("followup", help="tick off a follow-up action")
    fu.add_argument("incident_id", metavar="ID", help="incident id, e.g. I-ABCDE12345")
    fu.add_argument("action", choices=FOLLOWUPS, help="the follow-up action")
    fu.add_argument("--undo", action="store_true", help="untick it")
    fu.set_defaults(func=run)

    for name, helptext in (("close", "close an incident"), ("reopen", "reopen an incident")):
        c = s.add_parser(name, help=helptext)
        c.add_argument("incident_id", metavar="ID", help="incident id, e.g. I-ABCDE12345")
        c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def _load_policy(cfg: Any) -> Any:
    try:
        from leakguard.policy import default_policy_path, load_policy

        path = Path(cfg.policy) if cfg.policy else default_policy_path()
        org_path = Path(cfg.org) if cfg.org else None
        return load_policy(path, org_path=org_path)
    except Exception:
        return None


async def _run(args: argparse.Namespace) -> int:
    lang = normalize_lang(getattr(args, "lang", None) or lang_from_env("ja"), "ja")
    from leakguard.commands.service_args import service_config
    from leakguard.officer.incidents import IncidentService, ReportRefused
    from leakguard.organization import Organization
    from leakguard.store import open_store

    cfg = service_config(args, lang)
    if cfg is None:
        return 2
    policy = _load_policy(cfg)
    org = policy.organization if policy is not None else Organization()
    rules = [r.id for r in policy.rules] if policy is not None else None
    store = await open_store(cfg.store_url(), create=False)
    actor = f"admin:{args.admin or getpass.getuser()}"
    try:
        svc = IncidentService(
            store,
            cfg.incidents,
            organization=org,
            notice_from=cfg.holds.notice_from,
            language=cfg.holds.language,
            timezone=cfg.holds.timezone,
            base_url=cfg.link_base_url(),
            policy_rules=lambda: rules,
        )
        cmd = args.incidents_command
        if cmd == "report":
            try:
                inc = await svc.report(
                    decision_id=args.decision,
                    hold_id=args.hold,
                    actor=actor,
                    via="cli",
                    note=args.note,
                )
            except ReportRefused as exc:
                print(t(f"err.{exc.code}", lang), file=sys.stderr)
                return 1
            await svc.drain()
            print(t("cli.filed", lang, id=inc.id))
            return 0
        if cmd == "list":
            return await _list(svc, args, lang)
        if cmd == "show":
            return await _show(svc, args, lang)
        if cmd == "followup":
            done = await svc.followup(
                args.incident_id, args.action, done=not args.undo, actor=actor
            )
        else:
            state = "closed" if cmd == "close" else "open"
            done = await svc.set_state(args.incident_id, state, actor=actor)
        if done is None:
            print(f"{args.incident_id}: {t('cli.unknown', lang)}", file=sys.stderr)
            return 1
        print(t("cli.done", lang, id=args.incident_id))
        return 0
    finally:
        await store.close()


async def _list(svc: Any, args: argparse.Namespace, lang: str) -> int:
    from leakguard.holds.explain import local_time, zone

    rows = await svc.store.journal.list_incidents(
        state="open" if args.open else None, limit=args.limit
    )
    if args.json:
        for r in rows:
            print(
                json_for_terminal(
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "state": r.state,
                        "created_at": r.created_at.isoformat(),
                        "reported_by": r.reported_by,
                        "via": r.via,
                        "sender": r.sender,
                        "department": r.department,
                        "rules": list(r.rules),
                        "decision_id": r.decision_id,
                        "hold_id": r.hold_id,
                        "followups": sorted(r.followups),
                    },
                )
            )
        return 0
    if not rows:
        print(t("cli.none", lang))
        return 0
    tz = zone(svc.timezone)
    print("\t".join(("id", "created_at", "kind", "state", "sender", "rules", "followups")))
    for r in rows:
        print(
            "\t".join(
                for_terminal(field)  # senders come from hostile mail: no escape is printed
                for field in [
                    r.id,
                    local_time(r.created_at, tz),
                    r.kind,
                    r.state,
                    " ".join((r.sender or "-").split()),
                    ",".join(r.rules) or "-",
                    ",".join(k for k in FOLLOWUPS if k in r.followups) or "-",
                ]
            )
        )
    return 0


async def _show(svc: Any, args: argparse.Namespace, lang: str) -> int:
    from leakguard.officer.record import sections, to_markdown, to_pdf, to_text

    f = await svc.record(args.incident_id)
    if f is None:
        print(f"{args.incident_id}: {t('cli.unknown', lang)}", file=sys.stderr)
        return 1
    doc = sections(f, lang, svc.timezone)
    if args.format == "pdf":
        if args.output is None:
            print(t("cli.pdf_needs_file", lang), file=sys.stderr)
            return 2
        args.output.write_bytes(await asyncio.to_thread(to_pdf, doc))
        print(t("cli.wrote", lang, path=args.output), file=sys.stderr)
        return 0
    text = to_markdown(doc) if args.format == "md" else to_text(doc)
    if args.output is not None:
        args.output.write_text(text, "utf-8")
        print(t("cli.wrote", lang, path=args.output), file=sys.stderr)
    else:  # subjects, names and notes come from hostile mail: no escape is printed
        sys.stdout.write("\n".join(for_terminal(line) for line in text.split("\n")))
    return 0
