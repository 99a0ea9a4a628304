"""``leakguard check``: what the relay would do with saved mails, and why (DESIGN §7).

Many mails in one process: every ``MESSAGE`` may be a file or a directory (its ``*.eml``
files, sorted). Each mail's envelope is, in this order: its line in an envelope file, else
``--sender`` / ``--rcpt``, else the mail's own From and To + Cc + Bcc. Envelope files are JSON
lines, one object per mail::

    {"file": "mail-001.eml", "sender": "me@city.example.lg.jp", "rcpt": ["a@x.example"]}

``--envelopes FILE.jsonl`` names one (its mails are checked after the MESSAGE arguments; a
relative ``file`` is read from the envelope file's directory); a directory given as MESSAGE
that holds an ``envelopes.jsonl`` (a labelled directory) uses it for the mails inside it.
``sender`` and ``rcpt`` are optional per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from leakguard.engine import Decision, Engine
from leakguard.explain import describe_action, explain_finding
from leakguard.i18n import lang_from_env
from leakguard.policy import PolicyError, default_policy_path, load_policy
from leakguard.terminal import for_terminal, json_for_terminal

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
    "no_messages": (
        "メールが指定されていません"
        " (MESSAGE.eml、ディレクトリ、または --envelopes を指定してください)",
        "no mail given (name MESSAGE.eml files, a directory, or --envelopes)",
    ),
    "envelopes_unreadable": (
        "{file}: エンベロープファイルを読めません: {err}",
        "{file}: cannot read the envelope file: {err}",
    ),
    "envelope_bad": (
        "{file}:{line}: エンベロープの行が不正です: {err}",
        "{file}:{line}: invalid envelope line: {err}",
    ),
    "bad_json": ("JSON として読めません", "not valid JSON"),
    "not_object": (
        '{"file": …, "sender": …, "rcpt": […]} の形のオブジェクトが必要です',
        'expected an object {"file": …, "sender": …, "rcpt": […]}',
    ),
    "bad_file": ('"file" は空でない文字列にしてください', '"file" must be a non-empty string'),
    "bad_sender": ('"sender" は文字列にしてください', '"sender" must be a string'),
    "bad_rcpt": (
        '"rcpt" はアドレス (文字列) のリストにしてください',
        '"rcpt" must be a list of addresses (strings)',
    ),
    "unknown_key": ("不明なキー {key}", "unknown key {key}"),
    "empty_dir": ("{file}: .eml ファイルがありません", "{file}: no .eml files"),
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
    p.add_argument(
        "messages",
        nargs="*",
        metavar="MESSAGE.eml",
        type=Path,
        help="mail files, or directories of .eml files (with an optional envelopes.jsonl)",
    )
    p.add_argument("--policy", type=Path, help="policy file (default: policies/default.yaml)")
    p.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    p.add_argument("--sender", help="envelope sender (default: From)")
    p.add_argument(
        "--rcpt",
        action="append",
        metavar="ADDR",
        help="envelope recipient; repeat for several (default: To + Cc + Bcc)",
    )
    p.add_argument(
        "--envelopes",
        type=Path,
        metavar="FILE.jsonl",
        help='per-mail envelopes, one JSON object a line: {"file":…, "sender":…, "rcpt":[…]}',
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

    def w(line: str) -> None:  # every line may hold mail-derived text: names, file names
        out.write(for_terminal(line.removesuffix("\n")) + "\n")

    w(f"{file}\n")
    w(f"  {_t('action', lang)}: {v.action.value.upper()}  ({describe_action(v.action, lang)})\n")
    if v.approval:
        w(f"  {_t('approval', lang)}: {v.approval}\n")
    if v.offer_bcc:
        w(f"  {_t('offer_bcc', lang)}\n")
    if v.delay_seconds:
        w(f"  {_t('delay', lang)}: {v.delay_seconds}s\n")
    shown: set[int] = set()
    for group, label in ((v.rules, ""), (v.audit_rules, _t("audit", lang))):
        for r in group:
            tag = f" [{label}]" if label else ""
            w(f"  {_t('rule', lang)} {r.rule_id} -> {r.action.value}{tag}: {r.reason.get(lang)}\n")
            for f in r.findings:
                shown.add(id(f))
                w(f"    - {explain_finding(f, lang)}\n")
    if not v.rules and not v.audit_rules:
        w(f"  {_t('no_rule', lang)}\n")
    rest = [f for f in v.findings if id(f) not in shown and f.fact != "visible_external_recipients"]
    if rest:
        w(f"  {_t('other', lang)}:\n")
        for f in rest:
            w(f"    - {explain_finding(f, lang)}\n")
    nonzero = {k: n for k, n in v.facts.items() if n and k not in ("message_size",)}
    w(f"  {_t('facts', lang)}: " + ", ".join(f"{k}={n}" for k, n in nonzero.items()) + "\n")


ENVELOPES_FILE = "envelopes.jsonl"  # the envelope file of a labelled directory
_ENVELOPE_KEYS = frozenset({"file", "sender", "rcpt"})


@dataclass(frozen=True, slots=True)
class Job:
    """One mail to check, with its envelope (None: the default)."""

    path: Path
    sender: str | None
    rcpts: tuple[str, ...] | None


class EnvelopeError(Exception):
    """An envelope file that cannot be used; ``str()`` is in the user's language."""


def read_envelopes(path: Path, lang: str) -> list[Job]:
    """The jobs of a JSON-lines envelope file (relative files from its directory)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        err = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise EnvelopeError(_t("envelopes_unreadable", lang).format(file=path, err=err)) from exc
    jobs: list[Job] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        problem = ""
        try:
            obj = json.loads(line)
        except ValueError:
            obj, problem = None, _t("bad_json", lang)
        if not problem:
            problem = _envelope_problem(obj, lang)
        if problem:
            raise EnvelopeError(_t("envelope_bad", lang).format(file=path, line=no, err=problem))
        assert isinstance(obj, dict)
        rcpt = obj.get("rcpt")
        jobs.append(
            Job(
                path.parent / obj["file"],
                obj.get("sender") or None,
                tuple(rcpt) if rcpt is not None else None,
            )
        )
    return jobs


def _envelope_problem(obj: object, lang: str) -> str:
    if not isinstance(obj, dict):
        return _t("not_object", lang)
    for key in obj:
        if key not in _ENVELOPE_KEYS:
            return _t("unknown_key", lang).format(key=json.dumps(key, ensure_ascii=False))
    f = obj.get("file")
    if not isinstance(f, str) or not f.strip():
        return _t("bad_file", lang)
    if obj.get("sender") is not None and not isinstance(obj["sender"], str):
        return _t("bad_sender", lang)
    rcpt = obj.get("rcpt")
    if rcpt is not None and (
        not isinstance(rcpt, list) or not all(isinstance(r, str) and r.strip() for r in rcpt)
    ):
        return _t("bad_rcpt", lang)
    return ""


def iter_jobs(
    messages: list[Path],
    envelopes: Path | None,
    sender: str | None,
    rcpts: tuple[str, ...] | None,
    lang: str,
) -> Iterator[Job]:
    """The mails to check, in order: MESSAGE arguments (directories expanded), then the
    envelope file's. Raises EnvelopeError before anything is checked."""
    plan: list[Job] = []
    for path in messages:
        if not path.is_dir():
            plan.append(Job(path, sender, rcpts))
            continue
        labelled = path / ENVELOPES_FILE
        if labelled.is_file():
            plan.extend(read_envelopes(labelled, lang))
            continue
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".eml" and p.is_file())
        if not files:
            raise EnvelopeError(_t("empty_dir", lang).format(file=path))
        plan.extend(Job(p, sender, rcpts) for p in files)
    if envelopes is not None:
        plan.extend(read_envelopes(envelopes, lang))
    yield from plan


def run(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    if not args.messages and args.envelopes is None:
        print(_t("no_messages", lang), file=sys.stderr)
        return 2
    policy_path: Path = args.policy or default_policy_path()
    try:
        policy = load_policy(policy_path, org_path=args.org)
    except PolicyError as exc:
        print(_t("policy_invalid", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
        return 2
    rcpts = tuple(args.rcpt) if args.rcpt else None
    try:
        jobs = list(iter_jobs(args.messages, args.envelopes, args.sender, rcpts, lang))
    except EnvelopeError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    engine = Engine(policy, policy_path=policy_path, org_path=args.org)
    try:
        return _check_all(args, engine, jobs, lang)
    finally:
        engine.close()  # the attachment extraction workers, if any were started


def _check_all(args: argparse.Namespace, engine: Engine, jobs: list[Job], lang: str) -> int:
    status = 0
    for i, job in enumerate(jobs):
        try:
            raw = job.path.read_bytes()
        except OSError as exc:
            err = exc.strerror or str(exc)
            print(
                for_terminal(_t("unreadable", lang).format(file=job.path, err=err)),
                file=sys.stderr,
            )
            status = 1
            continue
        d = engine.decide(raw, envelope_from=job.sender, rcpts=job.rcpts)
        if args.json:
            sys.stdout.write(json_for_terminal(decision_json(str(job.path), d)) + "\n")
        else:
            if i:
                sys.stdout.write("\n")
            render_human(str(job.path), d, lang, sys.stdout)
    return status
