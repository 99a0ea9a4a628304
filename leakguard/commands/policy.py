"""``leakguard policy validate|schema|test``: tools for security officers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from leakguard.engine import Engine
from leakguard.i18n import lang_from_env
from leakguard.policy import PolicyError, load_policy
from leakguard.policy.model import OrganizationSpec, PolicySpec
from leakguard.terminal import for_terminal

_T = {
    "ok": (
        "{file}: 問題ありません (ルール {rules} 件, 社内ドメイン {domains} 件, 名簿 {people} 名)",
        "{file}: OK ({rules} rules, {domains} internal domains, {people} people)",
    ),
    "invalid": ("{file}: {n} 件の誤りがあります", "{file}: {n} problem(s)"),
    "no_tests": ("{file}: テストケースがありません (tests:)", "{file}: no test cases (tests:)"),
    "pass": ("合格", "ok"),
    "fail": ("不合格", "FAIL"),
    "summary": ("{ok}/{total} 件合格", "{ok}/{total} passed"),
    "unreadable": ("読めません", "cannot read"),
    "expected": ("期待 {expect}、結果 {got}", "expected {expect}, got {got}"),
    "missing_rules": (
        "一致すべきルールが一致しません: {rules}",
        "rules that did not match: {rules}",
    ),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    ja, en = _T[key]
    return (ja if lang == "ja" else en).format(**kw)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "policy",
        help="validate, export schema, test",
        description="Tools for policy files: validate them, export their JSON Schema, "
        "run their test cases.",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    v = psub.add_parser("validate", help="check policy files; errors name file:line:column")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE", help="policy files")
    v.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    v.set_defaults(func=run_validate)

    s = psub.add_parser("schema", help="print the JSON Schema of policy files (for editors)")
    s.add_argument("--organization", action="store_true", help="schema of organisation files")
    s.set_defaults(func=run_schema)

    t = psub.add_parser("test", help="run the policy's test cases (sample mails + expected action)")
    t.add_argument("files", nargs="+", type=Path, metavar="FILE", help="policy files")
    t.add_argument("--org", type=Path, help="organisation file; replaces the policy's")
    t.set_defaults(func=run_test)


def run_validate(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    status = 0
    for f in args.files:
        try:
            pol = load_policy(f, org_path=args.org)
        except PolicyError as exc:
            status = 1
            print(_t("invalid", lang, file=f, n=len(exc.problems)), file=sys.stderr)
            for p in exc.problems:
                print(f"  {p.text(lang)}", file=sys.stderr)
            continue
        org = pol.organization
        print(
            _t(
                "ok",
                lang,
                file=f,
                rules=len(pol.rules),
                domains=len(org.internal_domains),
                people=len(org.directory),
            )
        )
    return status


def run_schema(args: argparse.Namespace) -> int:
    model = OrganizationSpec if args.organization else PolicySpec
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leakguard organisation" if args.organization else "leakguard policy"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def run_test(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    total = ok = 0
    status = 0
    for f in args.files:
        try:
            pol = load_policy(f, org_path=args.org)
        except PolicyError as exc:
            print(_t("invalid", lang, file=f, n=len(exc.problems)), file=sys.stderr)
            for p in exc.problems:
                print(f"  {p.text(lang)}", file=sys.stderr)
            status = 1
            continue
        if not pol.spec.tests:
            print(_t("no_tests", lang, file=f))
            continue
        engine = Engine(pol)
        for case in pol.spec.tests:
            total += 1
            mail = Path(case.mail)
            if not mail.is_absolute():
                mail = f.parent / mail
            try:
                raw = mail.read_bytes()
            except OSError as exc:
                print(
                    for_terminal(
                        f"  {_t('fail', lang)} {mail}: {_t('unreadable', lang)} ({exc.strerror})"
                    )
                )
                continue
            d = engine.decide(raw, envelope_from=case.sender, rcpts=case.rcpt)
            problems: list[str] = []
            if d.verdict.action.value != case.expect:
                problems.append(
                    _t("expected", lang, expect=case.expect, got=d.verdict.action.value)
                )
            if case.rules:
                missing = [r for r in case.rules if r not in d.verdict.rule_ids]
                if missing:
                    problems.append(_t("missing_rules", lang, rules=", ".join(missing)))
            if problems:
                print(for_terminal(f"  {_t('fail', lang)} {mail}: " + "; ".join(problems)))
            else:
                ok += 1
                print(for_terminal(f"  {_t('pass', lang)} {mail}: {d.verdict.action.value}"))
    print(_t("summary", lang, ok=ok, total=total))
    if ok != total:
        status = 1
    return status
