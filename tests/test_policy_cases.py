"""``leakguard policy test DIR``: .eml cases with sidecars or X-Leakguard-* test headers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from leakguard.cli import main
from leakguard.policy import load_policy
from leakguard.policy.cases import (
    Expectation,
    compare,
    discover,
    expectation_from_headers,
    load_sidecar,
    read_case,
    split_test_headers,
)
from leakguard.policy.loader import PolicyError

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "policies" / "tests" / "default"
EX = ROOT / "examples"

# A small policy of its own: fast to load, and its outcomes are easy to predict.
TINY = """\
version: 1
organization:
  internal_domains: [city.example.lg.jp]
rules:
  - id: many-external
    description: {ja: 社外が多数, en: many outsiders}
    when: {visible_external_recipients: {gte: 3}}
    action: bcc
  - id: any-external
    description: {ja: 社外あり, en: outsiders}
    when: {external_recipients: {gte: 1}}
    action: bcc
default_action: pass
"""

MAIL = (
    b"From: Kazuya Sato <kazuya.sato@city.example.lg.jp>\r\n"
    b"To: a@one.example, b@two.example, c@three.example\r\n"
    b"Subject: hello\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0900\r\n"
    b"Message-ID: <t1@city.example.lg.jp>\r\n"
    b"\r\n"
    b"Hello all,\r\nsee you tomorrow.\r\n"
)


def with_headers(*lines: str, mail: bytes = MAIL) -> bytes:
    return "".join(f"{ln}\r\n" for ln in lines).encode() + mail


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """English output unless a test asks for Japanese (whatever the machine's locale)."""
    monkeypatch.setenv("LEAKGUARD_LANG", "en")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY, encoding="utf-8")
    return p


def run(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:  # exit status, stdout, stderr
    status = main(["policy", "test", *args])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------- shipped cases


def test_every_default_rule_has_a_case_expecting_it() -> None:
    policy = load_policy(ROOT / "policies" / "default.yaml")
    rule_ids = {r.id for r in policy.rules}
    expected: dict[str, list[str]] = {}
    expected_actions: dict[str, set[str]] = {}
    actions: set[str] = set()
    mails = discover(CASES)
    assert len(mails) >= len(rule_ids) + 5
    for mail in mails:
        case = read_case(mail)
        assert case.expectation is not None, (mail, case.problems)
        actions.add(case.expectation.expect)
        unknown = set(case.expectation.rules + case.expectation.not_rules) - rule_ids
        assert not unknown, (mail, unknown)
        for r in case.expectation.rules:
            expected.setdefault(r, []).append(mail.name)
            expected_actions.setdefault(r, set()).add(case.expectation.expect)
    assert rule_ids - set(expected) == set(), "rules without a case"
    # and some case of each rule gets that rule's own action
    for rule in policy.rules:
        assert rule.action in expected_actions[rule.id], rule.id
    assert {"pass", "bcc", "hold", "delay"} <= actions
    ordinary = [m for m in mails if m.parent.name == "pass"]
    assert len(ordinary) >= 5
    # both ways of writing an expectation are used
    assert any(m.with_name(m.name + ".yaml").is_file() for m in mails)
    assert any(b"\nX-Leakguard-Expect:" in b"\n" + m.read_bytes()[:4000] for m in mails)


def test_shipped_cases_pass_through_the_command(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "leakguard",
            "policy",
            "test",
            "-j",
            "1",
            str(CASES),
            "--junit",
            str(junit),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LEAKGUARD_LANG": "en"},
        check=False,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    n = len(discover(CASES))
    assert lines[-1] == f"{n} case(s): {n} passed, 0 failed, 0 error(s)"
    assert all(ln.startswith("ok  ") for ln in lines[:-1]) and len(lines) == n + 1
    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites" and suites.get("tests") == str(n)
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    assert len(suites.findall("./testsuite/testcase")) == n


def test_parallel_run_gives_the_same_output_in_the_same_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [str(CASES), "-k", "pass/"]
    status, serial, _ = run(capsys, "-j", "1", *args)
    assert status == 0
    proc = subprocess.run(
        [sys.executable, "-m", "leakguard", "policy", "test", "-j", "2", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LEAKGUARD_LANG": "en"},
        check=False,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == serial
    assert serial.count("\n") > 10


def test_policy_files_still_run_their_tests_list(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(ROOT / "policies" / "default.yaml"), "-k", "bulk-to-12")
    assert status == 0
    assert "bulk-to-12-companies-ja.eml: bcc [bulk-external]" in out
    assert out.splitlines()[-1] == "1 case(s): 1 passed, 0 failed, 0 error(s)"


# --------------------------------------------------------------------------- test headers


def test_test_headers_are_cut_out_byte_for_byte() -> None:
    raw = (
        b"X-Leakguard-Expect: hold\r\n"
        b"From: a@city.example.lg.jp\r\n"
        b"X-Leakguard-Expect-Rules: a,\r\n  b\r\n"  # folded
        b"X-Leakguard-Bcc: 3\r\n"  # the relay's own header: kept
        b"To: x@y.example\r\n"
        b"x-leakguard-rcpt:x@y.example\r\n"
        b"X-LEAKGUARD-RCPT: z@w.example, q@w.example\r\n"
        b"Subject: test\r\n"
        b"\r\n"
        b"X-Leakguard-Expect: pass\r\n"  # in the body: not a header
    )
    stripped, fields = split_test_headers(raw)
    assert stripped == (
        b"From: a@city.example.lg.jp\r\nX-Leakguard-Bcc: 3\r\nTo: x@y.example\r\n"
        b"Subject: test\r\n\r\nX-Leakguard-Expect: pass\r\n"
    )
    assert [(n, v) for n, v, _ in fields] == [
        ("x-leakguard-expect", "hold"),
        ("x-leakguard-expect-rules", "a,  b"),  # unfolded as RFC 5322 says
        ("x-leakguard-rcpt", "x@y.example"),
        ("x-leakguard-rcpt", "z@w.example, q@w.example"),
    ]
    assert [line for *_, line in fields] == [1, 3, 7, 8]
    exp, problems = expectation_from_headers(fields, "m.eml")
    assert problems == []
    assert exp == Expectation(
        "hold", rules=("a", "b"), rcpt=("x@y.example", "z@w.example", "q@w.example")
    )
    # a mail without test headers is returned as the very same bytes; bare LF works too
    assert split_test_headers(MAIL) == (MAIL, [])
    lf = b"X-Leakguard-Expect: pass\nFrom: a@b.example\n\nbody\n"
    assert split_test_headers(lf)[0] == b"From: a@b.example\n\nbody\n"


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        (["X-Leakguard-Expect: maybe"], "expected one of pass, bcc, hold, delay, reject"),
        (["X-Leakguard-Expect: hold", "X-Leakguard-Expect: pass"], "appears twice"),
        (["X-Leakguard-Expect-Rules: bulk-external"], "without X-Leakguard-Expect"),
        (["X-Leakguard-Expect: hold", "X-Leakguard-Expect-Rulez: a"], "unknown test header"),
        (
            [
                "X-Leakguard-Expect: hold",
                "X-Leakguard-Expect-Rules: a",
                "X-Leakguard-Expect-Not-Rules: a",
            ],
            "both expected and not expected",
        ),
        (["X-Leakguard-Expect: hold", "X-Leakguard-Rcpt:"], "X-Leakguard-Rcpt is empty"),
    ],
)
def test_bad_test_headers(headers: list[str], needle: str) -> None:
    _raw, fields = split_test_headers(with_headers(*headers))
    exp, problems = expectation_from_headers(fields, "m.eml")
    assert exp is None and problems
    assert needle in problems[0].message and problems[0].message_ja
    assert str(problems[0]).startswith(f"m.eml:{problems[0].line}:1: ")


# --------------------------------------------------------------------------- sidecars


def test_sidecar_forms_and_precedence(tmp_path: Path) -> None:
    a = tmp_path / "a.eml"
    a.write_bytes(MAIL)
    (tmp_path / "a.eml.yaml").write_text(
        "# the envelope matters here\nexpect: bcc\nrules: [many-external]\n"
        "not_rules: [any-external]\nsender: k@city.example.lg.jp\n"
        "rcpt: [a@one.example]\ndescription: 三社に一斉送信\n",
        encoding="utf-8",
    )
    case = read_case(a)
    assert case.problems == () and case.raw == MAIL
    assert case.expectation == Expectation(
        "bcc",
        rules=("many-external",),
        not_rules=("any-external",),
        sender="k@city.example.lg.jp",
        rcpt=("a@one.example",),
        description="三社に一斉送信",
    )
    b = tmp_path / "b.eml"  # NAME.yaml is a sidecar too
    b.write_bytes(MAIL)
    (tmp_path / "b.yaml").write_text("expect: pass\n", encoding="utf-8")
    assert read_case(b).expectation == Expectation("pass")
    (tmp_path / "b.eml.yaml").write_text("expect: hold\n", encoding="utf-8")
    assert "two sidecar files" in read_case(b).problems[0].message
    c = tmp_path / "c.eml"  # a sidecar and test headers: which one? neither
    c.write_bytes(with_headers("X-Leakguard-Expect: hold"))
    (tmp_path / "c.eml.yaml").write_text("expect: pass\n", encoding="utf-8")
    problem = read_case(c).problems[0]
    assert "both a sidecar" in problem.message and "両方" in problem.message_ja
    d = tmp_path / "d.eml"  # nothing at all: an error, not a skip
    d.write_bytes(MAIL)
    case = read_case(d)
    assert case.expectation is None
    assert "no expected outcome" in case.problems[0].message


@pytest.mark.parametrize(
    ("text", "where", "en", "ja"),
    [
        (
            "expect: hold\nexpct: pass\n",
            "2:1",
            "unknown key 'expct'; expected one of: expect, rules, not_rules",
            "不明なキー 'expct' です。使えるキー:",
        ),
        (
            "expect: maybe\n",
            "1:9",
            "expect: expected one of 'pass', 'bcc'",
            "次のどれかを書いてください",
        ),
        (
            "rules: [a]\n",
            "1:1",
            "missing required key 'expect'",
            "必須のキー 'expect' がありません",
        ),
        ("expect: hold\nrules: a-rule\n", "2:8", "rules: expected a list", "rules: リスト"),
        ("expect: hold\nrcpt: []\n", "2:7", "rcpt: expected at least 1 item", "rcpt: 1 個以上"),
        ("expect: hold\n  rules: [a]\n", "2:8", "YAML syntax", "YAML の書き方の誤り"),
        ("- expect: hold\n", "1:1", "expected a mapping such as 'expect: hold'", "マッピング"),
        (
            "expect: hold\nx: &a [r, r]\nrules: *a\n",
            "3:8",
            "aliases (*name) are not allowed",
            "エイリアス",
        ),
        (
            "expect: hold\nrules: [a]\nnot_rules: [a]\n",
            "3:12",
            "both expected and not expected: a",
            "両方に書かれています: a",
        ),
    ],
)
def test_bad_sidecar_errors_name_file_line_and_column(
    tmp_path: Path, text: str, where: str, en: str, ja: str
) -> None:
    side = tmp_path / "m.eml.yaml"
    side.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as ei:
        load_sidecar(side)
    p = ei.value.problems[0]
    assert f"{p.line}:{p.column}" == where, p
    assert en in p.text("en") and p.text("en").startswith(f"{side}:{where}: ")
    assert ja in p.text("ja") and p.text("ja").startswith(f"{side}:{where}: ")


def test_bad_sidecar_through_the_command_in_japanese_and_english(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "m.eml").write_bytes(MAIL)
    (cases / "m.eml.yaml").write_text("expect: hold\nrulez: [x]\n", encoding="utf-8")
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    status, out, _ = run(capsys, "--policy", str(tiny), str(cases))
    assert status == 1
    assert f"ERROR  {cases / 'm.eml'}" in out
    assert f"{cases / 'm.eml.yaml'}:2:1: unknown key 'rulez'" in out
    assert out.splitlines()[-1] == "1 case(s): 0 passed, 0 failed, 1 error(s)"
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    status, out, _ = run(capsys, "--policy", str(tiny), str(cases))
    assert status == 1
    assert f"エラー  {cases / 'm.eml'}" in out
    assert f"{cases / 'm.eml.yaml'}:2:1: 不明なキー 'rulez' です" in out
    assert out.splitlines()[-1] == "1 件: 合格 0、不合格 0、エラー 1"


# --------------------------------------------------------------------------- runs


def make_cases(root: Path) -> None:
    """Five cases against TINY: two pass, two fail, one error, in subdirectories."""
    (root / "a").mkdir(parents=True)
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a" / "ok-bcc.eml").write_bytes(
        with_headers("X-Leakguard-Expect: bcc", "X-Leakguard-Expect-Rules: many-external")
    )
    # the envelope names one colleague: outsiders are visible in To, but none receives it
    (root / "a" / "ok-envelope.eml").write_bytes(MAIL)
    (root / "a" / "ok-envelope.eml.yaml").write_text(
        "expect: bcc\nrcpt: [hiroshi.tanaka@city.example.lg.jp]\nnot_rules: [any-external]\n",
        encoding="utf-8",
    )
    (root / "b" / "wrong-action.eml").write_bytes(
        with_headers(
            "X-Leakguard-Expect: pass",
            "X-Leakguard-Expect-Rules: any-external",
            "X-Leakguard-Expect-Not-Rules: many-external",
        )
    )
    (root / "b" / "deeper" / "typo.eml").write_bytes(MAIL)
    (root / "b" / "deeper" / "typo.yaml").write_text(
        'description: "a typo <&> \\x01 in a rule id"\nexpect: bcc\n'
        'rules: ["many-externa\\x01l"]\n',
        encoding="utf-8",
    )
    (root / "b" / "no-expectation.eml").write_bytes(MAIL)
    (root / "notes.txt").write_text("not a case", encoding="utf-8")


def test_failures_are_reported_and_exit_1(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    cases = tmp_path / "cases"
    make_cases(cases)
    status, out, _ = run(capsys, "--policy", str(tiny), str(cases))
    assert status == 1
    lines = out.splitlines()
    order = [re.match(r"^\S+  (\S+?\.eml)", ln).group(1) for ln in lines[:-1] if ln[:1] != " "]  # type: ignore[union-attr]
    assert order == [
        str(cases / "a" / "ok-bcc.eml"),
        str(cases / "a" / "ok-envelope.eml"),
        str(cases / "b" / "deeper" / "typo.eml"),
        str(cases / "b" / "no-expectation.eml"),
        str(cases / "b" / "wrong-action.eml"),
    ]
    assert f"ok  {cases / 'a' / 'ok-bcc.eml'}: bcc [many-external, any-external]" in lines
    i = lines.index(f"FAIL  {cases / 'b' / 'wrong-action.eml'}")
    assert lines[i + 1 : i + 4] == [
        "      expected pass, got bcc",
        "      rules that matched but must not: many-external",
        "      rules matched: many-external, any-external",
    ]
    assert "rule ids the policy does not have: many-externa\\x01l" in out  # escaped
    assert "(a typo <&> \\x01 in a rule id)" in out
    assert "no expected outcome" in out
    assert lines[-1] == "5 case(s): 2 passed, 2 failed, 1 error(s)"


def test_json_and_junit(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    cases = tmp_path / "cases"
    make_cases(cases)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    status, out, err = run(
        capsys, "--policy", str(tiny), "--json", "--junit", str(junit), str(cases)
    )
    assert status == 1
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["status"] for o in objs] == ["ok", "ok", "fail", "error", "fail"]
    wrong = objs[-1]
    assert wrong["expect"] == "pass" and wrong["action"] == "bcc"
    assert wrong["unexpected_rules"] == ["many-external"] and wrong["missing_rules"] == []
    assert objs[2]["unknown_rules"] == ["many-externa\x01l"]
    assert (
        objs[3]["errors"][0]["line"] == 1
        and "no expected outcome" in objs[3]["errors"][0]["message"]
    )
    assert "5 case(s)" in err  # the summary stays off stdout
    root = ET.fromstring(junit.read_bytes())
    assert root.get("tests") == "5" and root.get("failures") == "2" and root.get("errors") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {str(cases / "a"), str(cases / "b"), str(cases / "b" / "deeper")}
    typo = suites[str(cases / "b" / "deeper")].find("testcase")
    assert typo is not None and typo.get("name") == "typo.eml"
    failure = typo.find("failure")
    assert failure is not None and "many-externa\ufffdl" in (failure.text or "")
    err_el = root.find(".//testcase[@name='no-expectation.eml']/error")
    assert err_el is not None and "no expected outcome" in (err_el.get("message") or "")


def test_keyword_selects_cases(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases"
    make_cases(cases)
    status, out, _ = run(capsys, "--policy", str(tiny), "-k", "ok-", str(cases))
    assert status == 0
    assert out.count("\n") == 3
    status, out, _ = run(capsys, "--policy", str(tiny), "-k", "deeper", "-k", "ok-bcc", str(cases))
    assert status == 1 and "2 case(s)" in out
    # the folder's own path is not matched: "cases" is in every path, in none inside it
    status, out, err = run(capsys, "--policy", str(tiny), "-k", "cases", str(cases))
    assert status == 2 and out == "" and "no test case matches -k cases" in err


def test_single_case_file_and_default_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = tmp_path / "lookalike.eml"
    shutil.copyfile(EX / "lookalike-homoglyph-en.eml", mail)
    (tmp_path / "lookalike.eml.yaml").write_text(
        "expect: hold\nrules: [lookalike-domain]\n", encoding="utf-8"
    )
    status, out, _ = run(capsys, str(mail))  # no --policy: the embedded default
    assert status == 0, out
    assert "hold [lookalike-domain]" in out


def test_orphan_sidecar_is_an_error(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gone.eml.yaml").write_text("expect: hold\n", encoding="utf-8")
    (tmp_path / "here.eml").write_bytes(with_headers("X-Leakguard-Expect: bcc"))
    status, out, _ = run(capsys, "--policy", str(tiny), str(tmp_path))
    assert status == 1
    assert "the mail of this sidecar (gone.eml) does not exist" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["does-not-exist"], "no such file or directory"),
        (["{empty}"], "no .eml files"),
        (["-j", "0", "{cases}"], "-j needs a number of 1 or more"),
        (["-k", "nothing-like-this", "{cases}"], "no test case matches -k nothing-like-this"),
        (["--policy", "{bad}", "{cases}"], "invalid policy:"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    args: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    make_cases(tmp_path / "cases")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("version: 1\nrulez: []\n", encoding="utf-8")
    subst = {"{cases}": str(tmp_path / "cases"), "{empty}": str(tmp_path / "empty")}
    subst["{bad}"] = str(tmp_path / "bad.yaml")
    status, out, err = run(capsys, *[subst.get(a, a) for a in args])
    assert status == 2
    assert needle in err and out == ""


def test_compare() -> None:
    exp = Expectation("hold", rules=("a", "b"), not_rules=("c",))
    assert compare(exp, "hold", ["a", "b"], ["a", "b", "c"]).ok
    o = compare(exp, "bcc", ["a", "c"], ["a", "b", "c"])
    assert not o.action_ok and o.missing == ("b",) and o.unexpected == ("c",)
    o = compare(Expectation("pass", not_rules=("typo",)), "pass", [], ["a"])
    assert not o.ok and o.unknown == ("typo",)  # a misspelt not_rules can never pass silently


def test_a_case_that_breaks_the_engine_is_that_cases_error(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from leakguard.engine import Engine

    real = Engine.decide

    def decide(self, raw, **kw):  # type: ignore[no-untyped-def]
        if b"boom" in raw:
            raise RuntimeError("boom")
        return real(self, raw, **kw)

    monkeypatch.setattr(Engine, "decide", decide)
    (tmp_path / "a.eml").write_bytes(with_headers("X-Leakguard-Expect: pass", mail=MAIL + b"boom"))
    (tmp_path / "b.eml").write_bytes(with_headers("X-Leakguard-Expect: bcc"))
    status, out, _ = run(capsys, "--policy", str(tiny), "-j", "1", str(tmp_path))
    assert status == 1
    assert "the check failed: RuntimeError: boom" in out
    assert out.splitlines()[-1] == "2 case(s): 1 passed, 0 failed, 1 error(s)"


def test_hostile_file_names_are_shown_escaped(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    name = os.fsdecode(b"caf\xe9\x1b[31m.eml")  # not UTF-8, and an escape sequence
    (cases / name).write_bytes(with_headers("X-Leakguard-Expect: bcc"))
    junit = tmp_path / "j.xml"
    status, out, _ = run(capsys, "--policy", str(tiny), "--junit", str(junit), str(cases))
    assert status == 0
    assert "caf\\udce9\\x1b[31m.eml: bcc" in out and "\x1b" not in out
    status, out, _ = run(capsys, "--policy", str(tiny), "--json", str(cases))
    assert json.loads(out)["case"].endswith("caf\\udce9\x1b[31m.eml")
    case = ET.fromstring(junit.read_bytes()).find(".//testcase")
    assert case is not None and case.get("name") == "caf\ufffd\ufffd[31m.eml"
