"""``leakguard check``: what the relay would do with saved mails, and why (DESIGN §7)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from leakguard.engine import Decision, Engine
from leakguard.explain import describe_action, explain_finding
from leakguard.i18n import lang_from_env
from leakguard.policy import PolicyError, default_policy_path, load_policy

_T = {
    "unreadable": ("{file}: 読めません: {err}", "{file}: cannot read: {err}"),
    "policy_invalid": ("ポリシーが不正です:", "invalid policy:"),
    "action": ("判定", "action"),
    "rule": ("ルール", "rule"),
    "audit": ("監査のみ (実行しません)", "audit only (not enforced)"),
    "no_rule": ("該当するルールはありません", "no rule matched"),
    "evidence": ("根拠", "evidence"),
    "other": ("その他の検出", "other findings"),
    "facts": ("事実", "facts"),
    "approval": ("承認者", "approver"),
    "offer_bcc": ("「BCC にして送信」を選べます", "may be released as Bcc"),
    "delay": ("送信待ち", "delay"),
}


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "check",
        help="dry run: show what the relay would do with saved mails and why",
        description="Run the detectors and the policy on .eml files without sending anything.",
    )
    p.add_argument("messages", nargs="+", metavar="MESSAGE.eml", type=Path)
    p.add_argument("--policy", type=Path, help="policy file (default: policies/default.yaml)")
    p.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    p.add_argument("--sender", help="envelope sender (default: From)")
    p.add_argument(
        "--rcpt",
        action="append",
        nargs="+",
        metavar="ADDR",
        help="envelope recipients (default: To + Cc + Bcc)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line per message")
    p.set_defaults(func=run)


def decision_json(file: str, d: Decision) -> dict[str, Any]:
    v = d.verdict
    return {
        "file": file,
        "action": v.action.value,
        "rules": list(v.rule_ids),
        "audit_rules": [r.rule_id for r in v.audit_rules],
        "facts": dict(v.facts),
        "findings": [
            {
                "detector": f.detector,
                "fact": f.fact,
                "addresses": list(f.addresses),
                "detail": f.detail,
                "evidence": dict(f.evidence),
            }
            for f in v.findings
        ],
        "offer_bcc": v.offer_bcc,
        "approval": v.approval,
        "delay_seconds": v.delay_seconds,
        "cpu_ms": round(d.cpu_seconds * 1000, 3),
    }


def render_human(file: str, d: Decision, lang: str, out: TextIO) -> None:
    v = d.verdict
    out.write(f"{file}\n")
    out.write(
        f"  {_t('action', lang)}: {v.action.value.upper()}  ({describe_action(v.action, lang)})\n"
    )
    if v.approval:
        out.write(f"  {_t('approval', lang)}: {v.approval}\n")
    if v.offer_bcc:
        out.write(f"  {_t('offer_bcc', lang)}\n")
    if v.delay_seconds:
        out.write(f"  {_t('delay', lang)}: {v.delay_seconds}s\n")
    shown: set[int] = set()
    for group, label in ((v.rules, ""), (v.audit_rules, _t("audit", lang))):
        for r in group:
            tag = f" [{label}]" if label else ""
            out.write(
                f"  {_t('rule', lang)} {r.rule_id} -> {r.action.value}{tag}: {r.reason.get(lang)}\n"
            )
            for f in r.findings:
                shown.add(id(f))
                out.write(f"    - {explain_finding(f, lang)}\n")
    if not v.rules and not v.audit_rules:
        out.write(f"  {_t('no_rule', lang)}\n")
    rest = [f for f in v.findings if id(f) not in shown and f.fact != "visible_external_recipients"]
    if rest:
        out.write(f"  {_t('other', lang)}:\n")
        for f in rest:
            out.write(f"    - {explain_finding(f, lang)}\n")
    nonzero = {k: n for k, n in v.facts.items() if n and k not in ("message_size",)}
    out.write(f"  {_t('facts', lang)}: " + ", ".join(f"{k}={n}" for k, n in nonzero.items()) + "\n")


def run(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    policy_path: Path = args.policy or default_policy_path()
    try:
        policy = load_policy(policy_path, org_path=args.org)
    except PolicyError as exc:
        print(_t("policy_invalid", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    engine = Engine(policy, policy_path=policy_path, org_path=args.org)
    rcpts: list[str] | None = None
    if args.rcpt:
        rcpts = [r for group in args.rcpt for r in group]
    try:
        return _check_all(args, engine, rcpts, lang)
    finally:
        engine.close()  # the attachment extraction workers, if any were started


def _check_all(args: argparse.Namespace, engine: Engine, rcpts: list[str] | None, lang: str) -> int:
    status = 0
    for i, path in enumerate(args.messages):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(_t("unreadable", lang).format(file=path, err=exc.strerror), file=sys.stderr)
            status = 1
            continue
        d = engine.decide(raw, envelope_from=args.sender, rcpts=rcpts)
        if args.json:
            sys.stdout.write(json.dumps(decision_json(str(path), d), ensure_ascii=False) + "\n")
        else:
            if i:
                sys.stdout.write("\n")
            render_human(str(path), d, lang, sys.stdout)
    return status
