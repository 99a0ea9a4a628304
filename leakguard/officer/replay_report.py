"""The diff a replay shows: counters over every mail, a bounded set of examples.

``Aggregator.add`` takes each ``ItemResult`` as it comes back from the workers (in any
order); ``report`` gives the machine-readable diff (``leakguard replay --json``) and
``render_text`` the same for people, in Japanese or English. Memory is flat: counters per
action pair, rule, department and sender, the first ``examples`` changed mails per rule and
the first ``MAX_ERRORS`` errors (first in the run's order, so the report does not depend on
which worker finished first).
"""

from __future__ import annotations

import bisect
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from leakguard.officer.replay import UNKNOWN_DEPARTMENT, ItemResult
from leakguard.officer.replay_sources import Outcome
from leakguard.terminal import for_terminal

REPORT_VERSION = 1
MAX_ERRORS = 100
ACTIONS = ("pass", "bcc", "delay", "hold", "reject")


def _outcome_json(o: Outcome | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {"action": o.action, "rules": list(o.rules), "audit_rules": list(o.audit_rules)}


def changed_line(r: ItemResult) -> dict[str, Any]:
    """One line of ``--changed FILE.jsonl``."""
    return {
        "file": r.ref,
        "sender": r.sender,
        "department": r.department,
        "subject": r.subject,
        "old": _outcome_json(r.old),
        "new": _outcome_json(r.new),
    }


def rule_changes(old: Outcome, new: Outcome) -> list[tuple[str, str, str]]:
    """(rule, mode, "newly"|"no_longer") for every rule whose match changed."""
    out: list[tuple[str, str, str]] = []
    for mode, a, b in (
        ("enforce", set(old.rules), set(new.rules)),
        ("audit", set(old.audit_rules), set(new.audit_rules)),
    ):
        out.extend((rule, mode, "newly") for rule in sorted(b - a))
        out.extend((rule, mode, "no_longer") for rule in sorted(a - b))
    return out


@dataclass(slots=True)
class _Group:
    mails: int = 0
    changed: int = 0
    transitions: Counter[str] = field(default_factory=Counter)

    def json(self) -> dict[str, Any]:
        return {
            "mails": self.mails,
            "changed": self.changed,
            "transitions": dict(sorted(self.transitions.items())),
        }


@dataclass(slots=True)
class Aggregator:
    examples: int = 3  # per rule
    top: int = 20  # senders
    mails: int = 0
    decided: int = 0
    changed: int = 0
    action_changed: int = 0
    no_baseline: int = 0
    error_count: int = 0
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)
    old_actions: Counter[str] = field(default_factory=Counter)
    new_actions: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=dict)
    rule_examples: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    departments: dict[str, _Group] = field(default_factory=dict)
    senders: dict[str, _Group] = field(default_factory=dict)
    sender_department: dict[str, str] = field(default_factory=dict)

    def add(self, r: ItemResult) -> None:
        self.mails += 1
        if r.error:
            self.error_count += 1
            bisect.insort(self.errors, (r.seq, r.ref, r.error, r.detail))
            del self.errors[MAX_ERRORS:]
            return
        if r.new is None:
            return
        if r.old is None:
            self.no_baseline += 1
            return
        old, new = r.old, r.new
        self.decided += 1
        self.old_actions[old.action] += 1
        self.new_actions[new.action] += 1
        dept = self.departments.setdefault(r.department, _Group())
        sender = self.senders.setdefault(r.sender, _Group())
        self.sender_department[r.sender] = r.department
        dept.mails += 1
        sender.mails += 1
        if old == new:
            return
        self.changed += 1
        dept.changed += 1
        sender.changed += 1
        if old.action != new.action:
            self.action_changed += 1
            key = f"{old.action}->{new.action}"
            self.transitions[key] += 1
            dept.transitions[key] += 1
            sender.transitions[key] += 1
        per_rule: dict[str, list[str]] = {}
        for rule, mode, way in rule_changes(old, new):
            self.rules.setdefault(rule, Counter())[f"{mode}.{way}"] += 1
            per_rule.setdefault(rule, []).append(f"{mode}.{way}")
        for rule, changes in per_rule.items():
            kept = self.rule_examples.setdefault(rule, [])
            if len(kept) < self.examples or r.seq < kept[-1][0]:
                example = {**changed_line(r), "changes": changes}
                del example["department"]
                bisect.insort(kept, (r.seq, example), key=lambda e: e[0])
                del kept[self.examples :]

    def report(self) -> dict[str, Any]:
        top = sorted(
            ((s, g) for s, g in self.senders.items() if g.changed),
            key=lambda sg: (-sg[1].changed, sg[0]),
        )[: self.top]
        return {
            "version": REPORT_VERSION,
            "totals": {
                "mails": self.mails,
                "decided": self.decided,
                "changed": self.changed,
                "action_changed": self.action_changed,
                "errors": self.error_count,
                "no_baseline": self.no_baseline,
            },
            "actions": {
                "old": {a: self.old_actions[a] for a in ACTIONS if self.old_actions[a]},
                "new": {a: self.new_actions[a] for a in ACTIONS if self.new_actions[a]},
            },
            "transitions": dict(sorted(self.transitions.items())),
            "rules": {
                rule: {
                    mode: {
                        "newly": counts[f"{mode}.newly"],
                        "no_longer": counts[f"{mode}.no_longer"],
                    }
                    for mode in ("enforce", "audit")
                }
                | {"examples": [e for _, e in self.rule_examples.get(rule, [])]}
                for rule, counts in sorted(self.rules.items())
            },
            "departments": {
                d: g.json()
                for d, g in sorted(
                    self.departments.items(), key=lambda dg: (dg[0] == UNKNOWN_DEPARTMENT, dg[0])
                )
            },
            "senders": [
                {"sender": s, "department": self.sender_department.get(s, "")} | g.json()
                for s, g in top
            ],
            "errors": [
                {"file": ref, "error": err, "detail": detail} for _, ref, err, detail in self.errors
            ],
        }


# --------------------------------------------------------------------------- text

_T = {
    "title": ("ポリシー変更の影響 (再判定)", "What the new policy changes (replay)"),
    "totals": (
        "メール {mails} 通: 判定 {decided}、変化あり {changed} (動作の変化 {action_changed})、"
        "エラー {errors}",
        "{mails} mails: {decided} decided, {changed} changed ({action_changed} change of "
        "action), {errors} errors",
    ),
    "no_baseline": (
        "以前の判定がないため比べられなかったメール: {n}",
        "mails without an earlier decision to compare: {n}",
    ),
    "actions": ("動作の変化", "Action transitions"),
    "none": ("(なし)", "(none)"),
    "rules": ("ルールごとの変化", "Changes by rule"),
    "rule_line": (
        "  {rule}: 実施 +{en}/-{el}、監査 +{an}/-{al}",
        "  {rule}: enforce +{en}/-{el}, audit +{an}/-{al}",
    ),
    "rule_legend": (
        "  (+ は新たに該当、- は該当しなくなったメールの数)",
        "  (+ newly matching, - no longer matching)",
    ),
    "departments": ("部署ごと", "By department"),
    "dept_line": (
        "  {d}: {mails} 通中 {changed} 通が変化 {tr}",
        "  {d}: {changed} of {mails} changed {tr}",
    ),
    "senders": ("変化の多い差出人 (上位 {n})", "Senders with most changes (top {n})"),
    "sender_line": ("  {s} ({d}): {changed} 通 {tr}", "  {s} ({d}): {changed} {tr}"),
    "errors": ("エラー ({n} 通)", "Errors ({n} mails)"),
    "more": ("  … ほか {n} 件", "  … and {n} more"),
    "unknown": ("(不明)", "(unknown)"),
    "no_subject": ("(件名なし)", "(no subject)"),
}


_ERRORS = {
    "unreadable": ("読めません", "cannot be read"),
    "empty": ("空のファイルです", "empty"),
    "not_mail": (
        "メールではありません (先頭にヘッダーがありません)",
        "not a mail (no header at the top)",
    ),
    "parse_failed": ("解析できません", "cannot be parsed"),
    "timeout": ("制限時間内に判定できません", "not decided within the time limit"),
    "failed": ("判定に失敗しました", "the decision failed"),
    "worker_died": ("処理プロセスが異常終了しました", "the worker process died"),
}


def error_text(code: str, lang: str) -> str:
    ja, en = _ERRORS.get(code, (code, code))
    return ja if lang == "ja" else en


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def _tr(transitions: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in transitions.items())


def _outcome_text(o: dict[str, Any] | None) -> str:
    if o is None:
        return "-"
    rules = ",".join(o["rules"]) or "-"
    audit = f" audit:{','.join(o['audit_rules'])}" if o["audit_rules"] else ""
    return f"{o['action']} [{rules}]{audit}"


def render_text(report: dict[str, Any], lang: str, out: TextIO) -> None:
    """The report for people (``lang`` "ja" or "en"). Subjects, senders and file names come
    from hostile mail: every line is written through ``for_terminal``."""
    buf = io.StringIO()
    _render_text(report, lang, buf)
    out.write("\n".join(for_terminal(line) for line in buf.getvalue().split("\n")))


def _render_text(report: dict[str, Any], lang: str, out: TextIO) -> None:
    unknown = _t("unknown", lang)

    def dept(d: str) -> str:
        return unknown if d == UNKNOWN_DEPARTMENT else d

    t = report["totals"]
    out.write(_t("title", lang) + "\n")
    out.write(_t("totals", lang).format(**t) + "\n")
    if t["no_baseline"]:
        out.write(_t("no_baseline", lang).format(n=t["no_baseline"]) + "\n")
    out.write("\n" + _t("actions", lang) + "\n")
    if report["transitions"]:
        for k, n in report["transitions"].items():
            out.write(f"  {k}: {n}\n")
    else:
        out.write("  " + _t("none", lang) + "\n")
    out.write("\n" + _t("rules", lang) + "\n")
    if not report["rules"]:
        out.write("  " + _t("none", lang) + "\n")
    else:
        out.write(_t("rule_legend", lang) + "\n")
    for rule, r in report["rules"].items():
        e, a = r["enforce"], r["audit"]
        out.write(
            _t("rule_line", lang).format(
                rule=rule, en=e["newly"], el=e["no_longer"], an=a["newly"], al=a["no_longer"]
            )
            + "\n"
        )
        for ex in r["examples"]:
            subject = ex["subject"] or _t("no_subject", lang)
            out.write(
                f"    - {ex['file']}: {subject}\n"
                f"      {_outcome_text(ex['old'])} -> {_outcome_text(ex['new'])}\n"
            )
    changed_depts = {d: g for d, g in report["departments"].items() if g["changed"]}
    out.write("\n" + _t("departments", lang) + "\n")
    if not changed_depts:
        out.write("  " + _t("none", lang) + "\n")
    for d, g in changed_depts.items():
        tr = f"({_tr(g['transitions'])})" if g["transitions"] else ""
        out.write(
            _t("dept_line", lang)
            .format(d=dept(d), mails=g["mails"], changed=g["changed"], tr=tr)
            .rstrip()
            + "\n"
        )
    if report["senders"]:
        out.write("\n" + _t("senders", lang).format(n=len(report["senders"])) + "\n")
    for s in report["senders"]:
        tr = f"({_tr(s['transitions'])})" if s["transitions"] else ""
        out.write(
            _t("sender_line", lang)
            .format(s=s["sender"] or "-", d=dept(s["department"]), changed=s["changed"], tr=tr)
            .rstrip()
            + "\n"
        )
    if t["errors"]:
        out.write("\n" + _t("errors", lang).format(n=t["errors"]) + "\n")
        shown = report["errors"][:20]
        for e in shown:
            why = error_text(e["error"], lang)
            detail = f" ({e['detail']})" if e["detail"] else ""
            out.write(f"  {e['file']}: {why}{detail}\n")
        if t["errors"] > len(shown):
            out.write(_t("more", lang).format(n=t["errors"] - len(shown)) + "\n")
