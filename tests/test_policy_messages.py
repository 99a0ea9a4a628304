"""Policy validation messages (issue 10): plain words, the right line, Japanese and English."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leakguard.policy import PolicyError
from leakguard.policy.loader import Problem, parse_organization_text, parse_policy_text
from leakguard.policy.model import domain_pattern_problem

POLICY = """\
version: 1
organization:
  internal_domains: [city.example.lg.jp]
  partner_domains: [partner.example.co.jp]
rules:
  - id: bulk-external
    description: {ja: 社外の宛先が多数見えています, en: Many external recipients}
    when: {visible_external_recipients: {gte: 10}}
    action: bcc
  - id: lookalike
    description: {ja: 似たドメイン, en: Lookalike domain}
    when: {lookalike_domains: 1}
    action: hold
"""


def problems(text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as exc:
        parse_policy_text(textwrap.dedent(text), "p.yaml")
    return exc.value.problems


def test_the_base_policy_is_valid() -> None:
    assert len(parse_policy_text(POLICY, "p.yaml").rules) == 2


@pytest.mark.parametrize(
    ("broken", "line", "en_word", "ja_word"),
    [
        # a key indented one space too far: PyYAML says "mapping values are not allowed here"
        (
            POLICY.replace("    action: bcc", "     action: bcc"),
            9,
            "indent",
            "字下げ",
        ),
        # a key indented one space too little inside a list item
        (
            POLICY.replace("    action: hold", "   action: hold"),
            13,
            "indentation does not line up",
            "字下げ",
        ),
        # a mapping key that lost its indentation under organization
        (
            POLICY.replace("  partner_domains:", "   partner_domains:"),
            4,
            "indentation does not line up",
            "字下げ",
        ),
        (POLICY.replace("    action: hold", "\taction: hold"), 13, "tab character", "タブ"),
        (POLICY.replace("{ja: 似たドメイン", "{ja: '似たドメイン"), 11, "quote", "引用符"),
    ],
)
def test_yaml_mistakes_are_explained_at_their_line(
    broken: str, line: int, en_word: str, ja_word: str
) -> None:
    (p,) = problems(broken)
    assert p.line == line, p
    assert en_word in p.message, p.message
    assert ja_word in p.message_ja, p.message_ja
    assert "expected <block end>" not in p.message and "found" not in p.message_ja


def test_duplicate_rule_id_is_reported_at_the_duplicate() -> None:
    twice = POLICY.replace("  - id: lookalike", "  - id: bulk-external")
    (p,) = problems(twice)
    assert (p.line, p.column) == (10, 9), p
    assert "rule id 'bulk-external' is used twice (first at line 6)" in p.message
    assert "二度使われています" in p.message_ja and "6 行目" in p.message_ja


@pytest.mark.parametrize(
    "bad",
    [
        "[a-",
        "bad domain with spaces",
        "a..example.jp",
        "-x.jp",
        "x",
        "@example.jp",
        "*.*.jp",
        "例え .jp",
    ],
)
@pytest.mark.parametrize(
    "where",
    [
        "internal_domains",
        "partner_domains",
        "partners",
        "scope.recipient_domains",
        "scope.sender_domains",
        "except.recipient_domains",
        "except.sender_domains",
    ],
)
def test_invalid_domain_patterns_are_rejected_everywhere(bad: str, where: str) -> None:
    q = '"' + bad + '"'
    if where == "internal_domains":
        text = POLICY.replace("[city.example.lg.jp]", f"[city.example.lg.jp, {q}]")
        line = 3
    elif where == "partner_domains":
        text = POLICY.replace("[partner.example.co.jp]", f"[{q}]")
        line = 4
    elif where == "partners":
        text = POLICY.replace(
            "  partner_domains: [partner.example.co.jp]\n",
            f"  partners:\n    - domain: {q}\n      names: [みらい建設]\n",
        )
        line = 5
    else:
        key, field = where.split(".")
        text = POLICY.replace(
            "    action: hold\n", f"    action: hold\n    {key}:\n      {field}: [{q}]\n"
        )
        line = 15
    ps = problems(text)
    assert len(ps) == 1, ps
    (p,) = ps
    assert p.line == line, p
    assert "not a domain" in p.message and "example.jp" in p.message
    assert "ドメインではありません" in p.message_ja


@pytest.mark.parametrize(
    "good",
    ["example.jp", "*.city.example.lg.jp", "xn--eckwd4c7c.jp", "例え.jp", "a-b.example.co.jp"],
)
def test_good_domain_patterns_pass(good: str) -> None:
    assert domain_pattern_problem(good) is None
    spec = parse_organization_text(f'internal_domains: ["{good}"]\n', "o.yaml")
    assert spec.internal_domains == [good]


def test_every_message_is_japanese_under_a_japanese_locale(tmp_path: Path) -> None:
    bad = POLICY.replace("action: bcc", "action: quarantine").replace(
        "{gte: 10}", "{gte: ten, more: 1}"
    )
    bad = bad.replace("[partner.example.co.jp]", '["[a-"]') + "unknown_top: 1\n"
    f = tmp_path / "p.yaml"
    f.write_text(bad, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "leakguard", "policy", "validate", str(f)],
        capture_output=True,
        text=True,
        env={"LANG": "ja_JP.UTF-8", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert out.returncode == 1
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
    assert "件の誤りがあります" in lines[0]
    body = lines[1:]
    assert len(body) >= 4, body
    for ln in body:
        # every message is in Japanese (keys and values quoted from the file stay as written)
        msg = ln.split(": ", 2)[-1]
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in msg), ln
        for english in ("expected", "unknown key", "not a domain", "Input should"):
            assert english not in msg, ln
    text = "\n".join(body)
    assert "不明なキー 'more'" in text and "不明なキー 'unknown_top'" in text
    assert "次のどれかを書いてください" in text and "整数を書いてください" in text


def test_english_stays_english() -> None:
    ps = problems(POLICY.replace("action: bcc", "action: quarantine"))
    assert ps[0].text("en").endswith("expected one of 'pass', 'bcc', 'delay', 'hold' or 'reject'")


def test_missing_organization_and_directory_files_are_reported_where_named(
    tmp_path: Path,
) -> None:
    from leakguard.policy import load_policy

    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\norganization: org.yaml\nrules: []\n", encoding="utf-8")
    with pytest.raises(PolicyError) as ei:
        load_policy(pol)
    (p,) = ei.value.problems
    assert (p.file, p.line, p.column) == (str(pol), 2, 15), p
    assert "file not found" in p.message and "ファイルがありません" in p.message_ja
    pol.write_text(
        "version: 1\norganization:\n  internal_domains: [city.example.lg.jp]\n"
        "  directory: people.csv\nrules: []\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as ei:
        load_policy(pol)
    (p,) = ei.value.problems
    assert (p.line, p.column) == (4, 14), p
    assert "organization.directory" in p.message and "ファイルがありません" in p.message_ja
    org = tmp_path / "org.yaml"
    org.write_text("internal_domains: [city.example.lg.jp]\n\ndirectory: staff.csv\n", "utf-8")
    pol.write_text("version: 1\norganization: org.yaml\nrules: []\n", encoding="utf-8")
    with pytest.raises(PolicyError) as ei:
        load_policy(pol)
    (p,) = ei.value.problems
    assert (p.file, p.line) == (str(org), 3), p
