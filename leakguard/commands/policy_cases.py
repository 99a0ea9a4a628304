"""``leakguard policy test``: run policy test cases like unit tests.

Cases come from policy files (their ``tests:`` list) and from directories of ``.eml`` files
whose expected outcome is in a sidecar or in test headers (:mod:`leakguard.policy.cases`).
One line per case, a summary, exit 1 on any failure (2 on usage errors); ``--json`` prints
one object per case, ``--junit FILE`` writes JUnit XML for CI systems. ``-j N`` runs the
cases in N processes; the output order is the cases' order whatever finishes first.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.util
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from leakguard.engine import Engine
from leakguard.extract import ExtractConfig
from leakguard.policy import PolicyError, Problem, default_policy_path, load_policy
from leakguard.policy.cases import (
    Expectation,
    Outcome,
    compare,
    discover,
    orphan_sidecars,
    read_case,
)
from leakguard.terminal import for_terminal

AUTO_PARALLEL_FROM = 200  # cases: fewer run in this process (a worker takes ~1-3 s to start)
MAX_AUTO_JOBS = 4

_T = {
    "invalid": ("{file}: {n} 件の誤りがあります", "{file}: {n} problem(s)"),
    "policy_invalid": ("ポリシーが不正です:", "invalid policy:"),
    "no_tests": ("{file}: テストケースがありません (tests:)", "{file}: no test cases (tests:)"),
    "no_cases": ("{file}: .eml ファイルがありません", "{file}: no .eml files"),
    "not_found": ("{file}: ありません", "{file}: no such file or directory"),
    "no_match": (
        "-k {k} に一致するテストケースがありません",
        "no test case matches -k {k}",
    ),
    "bad_jobs": ("-j には 1 以上の数を指定してください", "-j needs a number of 1 or more"),
    "junit_unwritable": (
        "{file}: JUnit XML を書き込めません: {err}",
        "{file}: cannot write the JUnit XML: {err}",
    ),
    "worker_died": (
        "テストケースを実行するプロセスが異常終了しました (メモリ不足など)。"
        "-j 1 で再実行してください",
        "a process running the cases died (out of memory?); run again with -j 1",
    ),
    "ok": ("合格", "ok"),
    "fail": ("不合格", "FAIL"),
    "error": ("エラー", "ERROR"),
    "expected": ("期待 {expect}、結果 {got}", "expected {expect}, got {got}"),
    "missing_rules": (
        "一致すべきルールが一致しません: {rules}",
        "rules that did not match: {rules}",
    ),
    "unexpected_rules": (
        "一致してはならないルールが一致しました: {rules}",
        "rules that matched but must not: {rules}",
    ),
    "unknown_rules": (
        "ポリシーにないルールID です: {rules}",
        "rule ids the policy does not have: {rules}",
    ),
    "matched": ("一致したルール: {rules}", "rules matched: {rules}"),
    "none": ("なし", "none"),
    "orphan": (
        "このサイドカーのメール ({mail}) がありません",
        "the mail of this sidecar ({mail}) does not exist",
    ),
    "summary": (
        "{total} 件: 合格 {ok}、不合格 {failed}、エラー {errors}",
        "{total} case(s): {ok} passed, {failed} failed, {errors} error(s)",
    ),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    ja, en = _T[key]
    return (ja if lang == "ja" else en).format(**kw)


@dataclass(frozen=True, slots=True)
class Job:
    """One case to run. ``inline``: the expectation of a policy file's ``tests:`` entry
    (the mail is then used as it is); None: read the sidecar or the test headers."""

    name: str  # as shown
    group: str  # the directory or policy file it came from (JUnit classname)
    mail: Path
    policy: Path
    org: Path | None
    key: str  # what -k matches: the path inside the folder given, or as the policy wrote it
    inline: Expectation | None = None
    orphan: bool = False  # a sidecar whose mail is missing: reported, never run


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    status: str  # "ok" | "fail" | "error"
    expectation: Expectation | None
    got: str | None
    matched: tuple[str, ...]
    outcome: Outcome | None
    problems: tuple[Problem, ...]
    seconds: float


# --------------------------------------------------------------------------- running

_ENGINES: dict[tuple[Path, Path | None], tuple[Engine, frozenset[str]]] = {}
_EXTRACT: ExtractConfig | None = None


def _engine(policy: Path, org: Path | None) -> tuple[Engine, frozenset[str]]:
    key = (policy, org)
    if key not in _ENGINES:
        pol = load_policy(policy, org_path=org)
        engine = Engine(pol, policy_path=policy, org_path=org, extract=_EXTRACT)
        _ENGINES[key] = (engine, frozenset(r.id for r in pol.rules))
    return _ENGINES[key]


def close_engines() -> None:
    """Stop the extraction workers of every engine this process started."""
    while _ENGINES:
        _key, (engine, _ids) = _ENGINES.popitem()
        engine.close()


def _init_worker() -> None:
    global _EXTRACT
    _EXTRACT = ExtractConfig(workers=1)  # one extraction process per case runner
    multiprocessing.util.Finalize(None, close_engines, exitpriority=10)


def run_job(job: Job) -> Result:
    """Run one case in this process (engines are kept per policy for the next cases)."""
    start = time.perf_counter()

    def error(problems: Iterable[Problem], exp: Expectation | None = None) -> Result:
        return Result(
            job, "error", exp, None, (), None, tuple(problems), time.perf_counter() - start
        )

    if job.orphan:
        mail = job.mail.name[: -len(".yaml")]
        return error(
            [
                Problem(
                    str(job.mail),
                    1,
                    1,
                    _T["orphan"][1].format(mail=mail),
                    _T["orphan"][0].format(mail=mail),
                )
            ]
        )
    if job.inline is not None:
        try:
            raw = job.mail.read_bytes()
        except OSError as exc:
            err = exc.strerror or str(exc)
            return error(
                [Problem(str(job.mail), 1, 1, f"cannot read: {err}", f"読めません: {err}")]
            )
        exp: Expectation | None = job.inline
    else:
        case = read_case(job.mail)
        if case.expectation is None:
            return error(case.problems)
        raw, exp = case.raw, case.expectation
    assert exp is not None
    try:
        engine, rule_ids = _engine(job.policy, job.org)
    except PolicyError as exc:
        return error(exc.problems, exp)
    try:
        d = engine.decide(raw, envelope_from=exp.sender, rcpts=exp.rcpt)
    except Exception as exc:  # a case that breaks the engine is that case's error, not the run's
        what = f"{type(exc).__name__}: {exc}"[:300]
        return error(
            [
                Problem(
                    str(job.mail),
                    1,
                    1,
                    f"the check failed: {what}",
                    f"判定中にエラーが起きました: {what}",
                )
            ],
            exp,
        )
    v = d.verdict
    matched = (*v.rule_ids, *(r.rule_id for r in v.audit_rules))
    outcome = compare(exp, v.action.value, matched, rule_ids)
    status = "ok" if outcome.ok else "fail"
    return Result(
        job, status, exp, v.action.value, matched, outcome, (), time.perf_counter() - start
    )


def run_all(jobs: list[Job], processes: int) -> Iterator[Result]:
    """Every job's result, in the jobs' order."""
    if processes <= 1 or len(jobs) <= 1:
        try:
            for job in jobs:
                yield run_job(job)
        finally:
            close_engines()
        return
    # spawn: fresh interpreters, nothing inherited from this one (threads, open files)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker) as pool:
        yield from pool.map(run_job, jobs, chunksize=1)


# --------------------------------------------------------------------------- collecting


class UsageError(Exception):
    """A command line that cannot run; ``str()`` is in the user's language."""


def collect(
    paths: list[Path], policy: Path | None, org: Path | None, lang: str, err: TextIO
) -> tuple[list[Job], int]:
    """The jobs of every path (in the order given) and the status so far (1 when a policy
    file is invalid). Raises UsageError for what cannot run at all."""
    jobs: list[Job] = []
    status = 0
    case_policy = policy or default_policy_path()
    checked: set[Path] = set()
    for path in paths:
        if path.is_dir() or path.suffix.lower() == ".eml":
            if not path.exists():
                raise UsageError(_t("not_found", lang, file=path))
            if case_policy not in checked:
                checked.add(case_policy)
                try:
                    load_policy(case_policy, org_path=org)
                except PolicyError as exc:
                    lines = [
                        _t("policy_invalid", lang),
                        *(f"  {p.text(lang)}" for p in exc.problems),
                    ]
                    raise UsageError("\n".join(lines)) from exc
            jobs.extend(_dir_jobs(path, case_policy, org, lang))
            continue
        if not path.exists():
            raise UsageError(_t("not_found", lang, file=path))
        try:
            pol = load_policy(path, org_path=org)
        except PolicyError as exc:
            print(_t("invalid", lang, file=path, n=len(exc.problems)), file=err)
            for p in exc.problems:
                print(f"  {p.text(lang)}", file=err)
            status = 1
            continue
        if not pol.spec.tests:
            print(_t("no_tests", lang, file=path), file=err)
            continue
        for case in pol.spec.tests:
            mail = Path(case.mail)
            if not mail.is_absolute():
                mail = path.parent / mail
            exp = Expectation(
                expect=case.expect,
                rules=tuple(case.rules or ()),
                sender=case.sender,
                rcpt=tuple(case.rcpt) if case.rcpt is not None else None,
            )
            jobs.append(Job(str(mail), str(path), mail, path, org, case.mail, inline=exp))
    return jobs, status


def _dir_jobs(path: Path, policy: Path, org: Path | None, lang: str) -> list[Job]:
    if not path.is_dir():
        return [Job(str(path), str(path.parent), path, policy, org, path.name)]
    mails = discover(path)
    orphans = orphan_sidecars(path)
    if not mails and not orphans:
        raise UsageError(_t("no_cases", lang, file=path))
    jobs = []
    for p in sorted([*mails, *orphans], key=lambda p: p.relative_to(path).as_posix()):
        key = p.relative_to(path).as_posix()
        jobs.append(Job(str(p), str(p.parent), p, policy, org, key, orphan=p in orphans))
    return jobs


def select(jobs: list[Job], keywords: list[str] | None) -> list[Job]:
    if not keywords:
        return jobs
    return [j for j in jobs if any(k in j.key for k in keywords)]


def auto_processes(n_jobs: int) -> int:
    if n_jobs < AUTO_PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))


# --------------------------------------------------------------------------- output


def detail_lines(r: Result, lang: str) -> list[str]:
    """Why a case failed or erred, one sentence a line."""
    if r.status == "error":
        return [p.text(lang) for p in r.problems]
    lines: list[str] = []
    o, exp = r.outcome, r.expectation
    assert o is not None and exp is not None
    if not o.action_ok:
        lines.append(_t("expected", lang, expect=exp.expect, got=r.got))
    if o.missing:
        lines.append(_t("missing_rules", lang, rules=", ".join(o.missing)))
    if o.unexpected:
        lines.append(_t("unexpected_rules", lang, rules=", ".join(o.unexpected)))
    if o.unknown:
        lines.append(_t("unknown_rules", lang, rules=", ".join(o.unknown)))
    if r.status == "fail":
        lines.append(_t("matched", lang, rules=", ".join(r.matched) or _t("none", lang)))
    return lines


def shown(text: str) -> str:
    """``text`` safe to print on a terminal (one escaping for every command)."""
    return for_terminal(text)


def _json_text(text: str) -> str:
    """Lone surrogates (undecodable file-name bytes) cannot be written as UTF-8 JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render_human(r: Result, lang: str, out: TextIO) -> None:
    if r.status == "ok":
        rules = f" [{', '.join(r.matched)}]" if r.matched else ""
        out.write(shown(f"{_t('ok', lang)}  {r.job.name}: {r.got}{rules}") + "\n")
        return
    label = _t("fail" if r.status == "fail" else "error", lang)
    exp = r.expectation
    desc = f"  ({exp.description})" if exp and exp.description else ""
    out.write(shown(f"{label}  {r.job.name}{desc}") + "\n")
    for line in detail_lines(r, lang):
        out.write(f"      {shown(line)}\n")


def result_json(r: Result, lang: str) -> dict[str, Any]:
    exp, o = r.expectation, r.outcome
    return {
        "case": _json_text(r.job.name),
        "status": r.status,
        "description": exp.description if exp else "",
        "expect": exp.expect if exp else None,
        "action": r.got,
        "rules": list(r.matched),
        "expected_rules": list(exp.rules) if exp else [],
        "not_rules": list(exp.not_rules) if exp else [],
        "missing_rules": list(o.missing) if o else [],
        "unexpected_rules": list(o.unexpected) if o else [],
        "unknown_rules": list(o.unknown) if o else [],
        "errors": [
            {
                "file": _json_text(p.file),
                "line": p.line,
                "column": p.column,
                "message": _json_text(p.message_ja if lang == "ja" and p.message_ja else p.message),
            }
            for p in r.problems
        ],
    }


_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    """Text XML 1.0 can carry (control characters and lone surrogates become U+FFFD)."""
    return _XML_BAD.sub("\ufffd", text)


def junit_xml(results: list[Result], lang: str) -> bytes:
    """JUnit XML: one testsuite per directory or policy file, one testcase per case."""
    root = ET.Element("testsuites", name="leakguard policy test")
    suites: dict[str, ET.Element] = {}
    counts: dict[str, list[float]] = {}
    for r in results:
        group = r.job.group
        if group not in suites:
            suites[group] = ET.SubElement(root, "testsuite", name=_x(group))
            counts[group] = [0, 0, 0, 0.0]
        c = counts[group]
        c[0] += 1
        c[3] += r.seconds
        name = r.job.name
        if name.startswith(group + os.sep):
            name = name[len(group) + 1 :]
        case = ET.SubElement(
            suites[group],
            "testcase",
            classname=_x(group),
            name=_x(name),
            time=f"{r.seconds:.3f}",
        )
        if r.status == "ok":
            continue
        details = detail_lines(r, lang)
        tag = "failure" if r.status == "fail" else "error"
        c[1 if tag == "failure" else 2] += 1
        el = ET.SubElement(case, tag, message=_x(details[0] if details else tag), type=tag)
        el.text = _x("\n".join(details))
    total = [0, 0, 0, 0.0]
    for group, el in suites.items():
        n, failures, errors, secs = counts[group]
        el.set("tests", str(int(n)))
        el.set("failures", str(int(failures)))
        el.set("errors", str(int(errors)))
        el.set("time", f"{secs:.3f}")
        total = [a + b for a, b in zip(total, counts[group], strict=True)]
    root.set("tests", str(int(total[0])))
    root.set("failures", str(int(total[1])))
    root.set("errors", str(int(total[2])))
    root.set("time", f"{total[3]:.3f}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


# --------------------------------------------------------------------------- the command


def run_test(args: argparse.Namespace, lang: str) -> int:
    out, err = sys.stdout, sys.stderr
    if args.jobs is not None and args.jobs < 1:
        print(_t("bad_jobs", lang), file=err)
        return 2
    try:
        jobs, status = collect(args.paths, args.policy, args.org, lang, err)
    except UsageError as exc:
        print(str(exc), file=err)
        return 2
    if args.keyword:
        jobs = select(jobs, args.keyword)
        if not jobs:
            print(_t("no_match", lang, k=" / ".join(args.keyword)), file=err)
            return 2
    processes = min(args.jobs if args.jobs is not None else auto_processes(len(jobs)), len(jobs))
    results: list[Result] = []
    try:
        for r in run_all(jobs, processes):
            results.append(r)
            if args.json:
                out.write(json.dumps(result_json(r, lang), ensure_ascii=False) + "\n")
            else:
                render_human(r, lang, out)
            out.flush()
    except BrokenProcessPool:
        print(_t("worker_died", lang), file=err)
        return 2
    n_ok = sum(r.status == "ok" for r in results)
    n_fail = sum(r.status == "fail" for r in results)
    n_err = sum(r.status == "error" for r in results)
    summary = _t("summary", lang, total=len(results), ok=n_ok, failed=n_fail, errors=n_err)
    print(summary, file=err if args.json else out)
    if args.junit is not None:
        try:
            args.junit.write_bytes(junit_xml(results, lang))
        except OSError as exc:
            msg = exc.strerror or str(exc)
            print(_t("junit_unwritable", lang, file=args.junit, err=msg), file=err)
            return 2
    if n_fail or n_err:
        status = 1
    return status
