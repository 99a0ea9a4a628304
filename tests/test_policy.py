"""Policy files: validation with file:line:column, and evaluation of facts into one action."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from leakguard.message.addresses import make_address
from leakguard.organization import Context, Organization
from leakguard.policy import PolicyError, evaluate, load_policy
from leakguard.policy.loader import parse_policy_text
from leakguard.types import Action, Address, Finding, Message

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as exc:
        parse_policy_text(textwrap.dedent(text), "p.yaml")
    return [str(p) for p in exc.value.problems]


RULE = """\
version: 1
rules:
  - id: r1
    description: {ja: 理由, en: reason}
    when: {visible_external_recipients: {gte: 10}}
    action: bcc
"""


def test_valid_policy_parses() -> None:
    spec = parse_policy_text(RULE, "p.yaml")
    assert spec.rules[0].id == "r1"
    assert spec.rules[0].when.test({"visible_external_recipients": 10})
    assert not spec.rules[0].when.test({"visible_external_recipients": 9})


def test_unknown_fact_names_line_and_column_and_expected_facts() -> None:
    out = problems(RULE.replace("visible_external_recipients", "visible_externals"))
    assert len(out) == 1
    assert out[0].startswith("p.yaml:5:12: ")
    assert "unknown key 'visible_externals'" in out[0]
    assert "visible_external_recipients" in out[0]  # says what was expected


def test_unknown_rule_key_is_an_error_at_its_line() -> None:
    out = problems(RULE + "    acton: hold\n")
    assert out == [
        "p.yaml:7:5: rules.0.acton: unknown key 'acton'; expected one of: id, description, "
        "when, action, mode, approval, delay, offer_bcc, scope, except"
    ]


def test_bad_action_and_bad_number() -> None:
    out = problems(RULE.replace("action: bcc", "action: quarantine").replace("10}", "ten}"))
    assert any(o.startswith("p.yaml:5:") and "whole number" in o for o in out), out
    assert any(o.startswith("p.yaml:6:13:") and "'pass'" in o for o in out), out


def test_missing_reason_language() -> None:
    out = problems(RULE.replace("{ja: 理由, en: reason}", "{ja: 理由}"))
    assert out == ["p.yaml:4:18: rules.0.description: missing required key 'en'"]


def test_yaml_syntax_error_has_position() -> None:
    out = problems("rules:\n  - id: [unclosed\n")
    assert out[0].startswith("p.yaml:3:1: YAML syntax") or out[0].startswith("p.yaml:2:")


def test_duplicate_keys_and_ids() -> None:
    out = problems(RULE.replace("    action: bcc\n", "    action: bcc\n    action: hold\n"))
    assert out == ["p.yaml:7:5: key 'action' appears twice in this mapping; write each key once"]
    twice = RULE + RULE.split("rules:\n", 1)[1]
    assert any("rule id 'r1' is used twice" in o for o in problems(twice))


def test_option_only_valid_with_its_action() -> None:
    out = problems(RULE.replace("action: bcc", "action: bcc\n    approval: supervisor"))
    assert any("approval is only valid with action: hold" in o for o in out)
    out = problems(RULE.replace("action: bcc", "action: delay\n    delay: soon"))
    assert any("not a duration" in o for o in out)


def test_nested_conditions() -> None:
    spec = parse_policy_text(
        textwrap.dedent(
            """\
            rules:
              - id: r
                description: {ja: a, en: b}
                when:
                  all:
                    - visible_external_organizations: 2
                    - any:
                        - lookalike_domains: {gte: 1}
                        - not: {visible_external_recipients: {lt: 10}}
                action: hold
            """
        ),
        "p.yaml",
    )
    w = spec.rules[0].when
    assert w.facts_used() == {
        "visible_external_organizations",
        "lookalike_domains",
        "visible_external_recipients",
    }
    assert w.test({"visible_external_organizations": 2, "lookalike_domains": 1})
    assert w.test({"visible_external_organizations": 3, "visible_external_recipients": 12})
    assert not w.test({"visible_external_organizations": 2, "visible_external_recipients": 3})
    assert not w.test({"visible_external_organizations": 1, "lookalike_domains": 5})


def test_organization_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "email,name,kana,department,supervisor\n"
        "a@corp.example.jp,山田 太郎,やまだ たろう,総務,b@corp.example.jp\n",
        encoding="utf-8",
    )
    write(
        tmp_path,
        "internal_domains: [corp.example.jp, '*.corp.example.jp']\ndirectory: people.csv\n",
        "org.yaml",
    )
    pol = load_policy(write(tmp_path, "organization: org.yaml\n" + RULE.split("\n", 1)[1]))
    org = pol.organization
    assert org.is_internal_domain("corp.example.jp")
    assert org.is_internal_domain("x.corp.example.jp")
    assert not org.is_internal_domain("corp.example.jp.evil.example")
    assert org.supervisor_of("A@corp.example.jp") == "b@corp.example.jp"
    assert len(pol.files) == 3 and pol.version


def test_org_file_errors_name_the_org_file(tmp_path: Path) -> None:
    write(
        tmp_path, "internal_domains: [corp.example.jp]\npartner_domain: [x.example]\n", "org.yaml"
    )
    pol = write(tmp_path, "organization: org.yaml\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(pol)
    assert str(exc.value.problems[0]).startswith(f"{tmp_path / 'org.yaml'}:2:1: partner_domain")


def test_default_policy_is_valid() -> None:
    pol = load_policy(ROOT / "policies" / "default.yaml")
    ids = [r.id for r in pol.rules]
    assert ids == [
        "bulk-external",
        "bcc-rewrite-exposed",
        "mixed-organizations",
        "forwarded-third-party",
        "forward-to-own-mailbox",
        "similar-to-colleague",
        "lookalike-domain",
        "personal-my-number",
        "personal-identifiers",
        "unmasked-personal-form",
        "personal-birth-date",
        "unreadable-attachment",
        "uninspected-content",
        "addressee-mismatch",
    ]
    assert pol.organization.is_internal_domain("city.example.lg.jp")
    assert len(pol.organization.directory) >= 5


# --------------------------------------------------------------------------- evaluation


def _msg(sender: str, rcpts: list[str]) -> Message:
    addrs: tuple[Address, ...] = tuple(make_address(r) for r in rcpts)
    return Message(
        raw=b"",
        subject="",
        message_id="",
        from_=(make_address(sender),),
        sender_header=None,
        reply_to=(),
        to=addrs,
        cc=(),
        bcc=(),
        envelope_from=make_address(sender),
        envelope_rcpts=addrs,
        text_parts=(),
        attachments=(),
        attached_messages=(),
        quoted_blocks=(),
        headers=(),
    )


POLICY = """\
version: 1
organization:
  internal_domains: [corp.example.jp]
  groups: {execs: [boss@corp.example.jp]}
rules:
  - id: bulk
    description: {ja: 多数, en: many}
    when: {visible_external_recipients: 10}
    action: bcc
  - id: mixed
    description: {ja: 混在, en: mixed}
    when: {visible_external_organizations: 2}
    action: hold
  - id: look
    description: {ja: 類似, en: lookalike}
    when: {lookalike_domains: 1}
    action: hold
    approval: supervisor
  - id: audit-first
    description: {ja: 初回, en: first}
    when: {first_time_external_recipients: 1}
    action: reject
    mode: audit
  - id: partner-only
    description: {ja: 取引先, en: partner}
    when: {external_recipients: 1}
    action: delay
    delay: 5m
    scope: {recipient_domains: ["*.partner.example"]}
    except: {sender_groups: [execs]}
"""


@pytest.fixture
def policy(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_policy(write(tmp_path, POLICY))


def _eval(policy, facts, sender="a@corp.example.jp", rcpts=("x@ext.example",), findings=()):  # type: ignore[no-untyped-def]
    ctx = Context(org=policy.organization)
    return evaluate(policy, _msg(sender, list(rcpts)), ctx, facts, list(findings))


def test_most_protective_wins_and_all_rules_reported(policy) -> None:  # type: ignore[no-untyped-def]
    v = _eval(policy, {"visible_external_recipients": 12, "visible_external_organizations": 3})
    assert v.action == Action.HOLD
    assert v.rule_ids == ("mixed", "bulk")
    assert v.offer_bcc  # the bcc rule also matched


def test_audit_rules_do_not_act(policy) -> None:  # type: ignore[no-untyped-def]
    v = _eval(policy, {"first_time_external_recipients": 1})
    assert v.action == Action.PASS
    assert [r.rule_id for r in v.audit_rules] == ["audit-first"]


def test_approval_and_findings_attached(policy) -> None:  # type: ignore[no-untyped-def]
    f = Finding("lookalike", "lookalike_domains", ("x@ext.example",), "d")
    other = Finding("names", "name_similar_recipients", ("x@ext.example",), "n")
    v = _eval(policy, {"lookalike_domains": 1}, findings=[f, other])
    assert v.action == Action.HOLD and v.approval == "supervisor"
    assert v.rules[0].findings == (f,)
    assert not v.offer_bcc


def test_scope_and_exceptions(policy) -> None:  # type: ignore[no-untyped-def]
    facts = {"external_recipients": 1}
    assert _eval(policy, facts, rcpts=["p@a.partner.example"]).action == Action.DELAY
    assert _eval(policy, facts, rcpts=["p@a.partner.example"]).delay_seconds == 300
    assert _eval(policy, facts, rcpts=["p@other.example"]).action == Action.PASS
    assert (
        _eval(policy, facts, sender="boss@corp.example.jp", rcpts=["p@a.partner.example"]).action
        == Action.PASS
    )


def test_schema_command_outputs_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from leakguard.cli import main

    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "leakguard policy"
    assert "rules" in schema["properties"]
    assert "visible_external_recipients" in json.dumps(schema)


def test_validate_command_reports_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from leakguard.cli import main

    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    bad = write(tmp_path, RULE.replace("bcc", "bc"))
    assert main(["policy", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "1 件の誤りがあります" in err
    assert f"{bad}:6:13:" in err
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    good = write(tmp_path, RULE, "good.yaml")
    assert main(["policy", "validate", str(good)]) == 0
    assert "OK (1 rules" in capsys.readouterr().out


def test_organization_inline_is_used(policy) -> None:  # type: ignore[no-untyped-def]
    org: Organization = policy.organization
    assert org.in_group("BOSS@corp.example.jp", "execs")
