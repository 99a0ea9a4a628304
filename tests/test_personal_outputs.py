"""Personal data in everything people and machines see: policy scoping by kind, the JSON
Schema, ``leakguard check`` (human and --json), the hold notice and the review page. None
of them may show a full identifier."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from test_holds_support import Env, make_env, queued, raw_mail, text_of

from leakguard.cli import main
from leakguard.engine import Engine
from leakguard.policy import load_policy
from leakguard.policy.model import Condition, PolicySpec
from leakguard.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
MY_NUMBER = "314159265352"
CARD = "4111111111111111"
BODY = (
    "株式会社サンプル商事 総務部 田中様\n\n申請内容を転送します。\n\n"
    "氏名：鈴木 花子\n生年月日：平成2年5月14日\n"
    "住所：〒330-0062 埼玉県さいたま市浦和区仲町三丁目5番1号\n"
    "電話番号：090-2234-5678\n"
    f"個人番号：{MY_NUMBER}\n"
    f"カード番号：{CARD[:4]}-{CARD[4:8]}-{CARD[8:12]}-{CARD[12:]}\n"
)
# every way the identifiers could leak, as written and as digits
SECRETS = (MY_NUMBER, "3141 5926", "4111-1111-1111", CARD, "2234-5678", "09022345678")
# names and addresses of the mail's own text stay readable to the reviewer in the first
# lines and on the page (that is what they review); in findings they are masked too
FINDING_SECRETS = (*SECRETS, "仲町三丁目", "花子")


def assert_no_secret(text: str, secrets: tuple[str, ...] = SECRETS) -> None:
    for s in secrets:
        assert s not in text, s


# --------------------------------------------------------------------------- policy


def test_condition_scoped_by_kind() -> None:
    with pytest.raises(ValueError, match="at least one of"):  # a comparison is required
        Condition.model_validate({"personal_data": {"kinds": ["my_number", "bank_account"]}})
    c = Condition.model_validate(
        {"personal_data": {"kinds": ["my_number", "bank_account"], "gte": 1}}
    )
    assert c.test({"personal_data.bank_account": 1})
    assert not c.test({"personal_data.phone": 5, "personal_data_items": 5})
    assert c.facts_used() == {"personal_data.my_number", "personal_data.bank_account"}
    kinds = Condition.model_validate(
        {"personal_data": {"kinds": ["phone", "address", "birth_date"], "count": "kinds", "gte": 2}}
    )
    assert kinds.test({"personal_data.phone": 1, "personal_data.address": 1})
    assert not kinds.test({"personal_data.phone": 9})
    every = Condition.model_validate({"personal_data": {"gte": 1}})
    assert every.test({"personal_data.form_field": 1})
    assert not every.test({"personal_data.corporate_number": 3})  # public: not by default
    with pytest.raises(ValueError, match="my_numbr"):
        Condition.model_validate({"personal_data": {"kinds": ["my_numbr"], "gte": 1}})


def test_policy_file_errors_and_scoped_findings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - id: x\n    description: {ja: あ, en: a}\n"
        "    when: {personal_data: {kinds: [my_number], gte: 1, colour: red}}\n"
        "    action: hold\n",
        encoding="utf-8",
    )
    from leakguard.policy import PolicyError

    with pytest.raises(PolicyError) as exc:
        load_policy(bad)
    assert "colour" in str(exc.value) and ":4:" in str(exc.value)

    good = tmp_path / "good.yaml"
    good.write_text(
        "organization: {internal_domains: [city.example.lg.jp]}\n"
        "rules:\n  - id: mn\n    description: {ja: 個人番号, en: My Number}\n"
        "    when: {all: [{personal_data: {kinds: [my_number], gte: 1}},"
        " {external_recipients: 1}]}\n"
        "    action: hold\n    approval: supervisor\n",
        encoding="utf-8",
    )
    eng = Engine(load_policy(good), warm=False)
    raw = raw_mail(
        sender="kazuya.sato@city.example.lg.jp", to=["soumu@sample-shoji.co.jp"], body=BODY
    )
    d = eng.decide(raw)
    assert d.verdict.rule_ids == ("mn",) and d.verdict.approval == "supervisor"
    (rule,) = d.verdict.rules
    # the rule's evidence is the My Number item only, not the phone or the card
    assert [f.evidence["kind"] for f in rule.findings] == ["my_number"]
    # internal mail: the same content passes
    d = eng.decide(raw, rcpts=["shimin@city.example.lg.jp"])
    assert d.verdict.rule_ids == ()


def test_schema_exports_personal_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema)
    assert "personal_data" in text and "driving_licence" in text and '"kinds"' in text
    assert "PersonalDataTest" in schema.get("$defs", {})
    assert set(PolicySpec.model_json_schema()["$defs"]["PersonalDataTest"]["properties"]) >= {
        "kinds",
        "count",
        "gte",
    }


# --------------------------------------------------------------------------- check


def test_check_json_and_human_show_masked_values_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(
        raw_mail(
            sender="kazuya.sato@city.example.lg.jp", to=["soumu@sample-shoji.co.jp"], body=BODY
        )
    )
    policy = str(ROOT / "policies" / "default.yaml")
    assert main(["check", "--json", "--policy", policy, str(eml)]) == 0
    out = capsys.readouterr().out
    assert_no_secret(out, FINDING_SECRETS)
    d = json.loads(out)
    assert d["action"] == "hold" and "personal-my-number" in d["rules"]
    assert d["facts"]["personal_data.my_number"] == 1 and d["facts"]["unmasked_forms"] == 1
    mn = next(f for f in d["findings"] if f["evidence"].get("kind") == "my_number")
    assert mn["evidence"]["masked"] == "********5352" and mn["evidence"]["line"] == "9"
    for lang in ("ja_JP.UTF-8", "en_US.UTF-8"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LANG", lang)
            mp.delenv("LC_ALL", raising=False)
            mp.delenv("LEAKGUARD_LANG", raising=False)
            assert main(["check", "--policy", policy, str(eml)]) == 0
        human = capsys.readouterr().out
        assert_no_secret(human, FINDING_SECRETS)
        assert "********5352" in human


# --------------------------------------------------------------------------- notice and page


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


async def test_notice_and_review_page_show_masked_items_only(env: Env) -> None:
    eng = Engine(load_policy(ROOT / "policies" / "default.yaml"), warm=False)
    sender = "tanaka@city.example.lg.jp"
    rcpts = ["soumu@sample-shoji.co.jp"]
    # the number is in the first lines and in the subject as well
    raw = raw_mail(sender=sender, to=rcpts, subject=f"個人番号 {MY_NUMBER} の件", body=BODY)
    d = eng.decide(raw, envelope_from=sender, rcpts=rcpts)
    assert d.verdict.action.value == "hold" and d.verdict.approval == "supervisor"
    h = await env.service.hold(
        raw=raw, verdict=d.verdict, message=d.message, mail_from=sender, rcpts=rcpts, auth_user=None
    )
    rec = await env.store.get_hold(h.id)
    assert rec is not None
    assert_no_secret(rec.verdict_json)  # what logs and the store's decision record carry
    assert_no_secret(rec.subject)  # the admin list and `leakguard holds list` show it
    notices = await queued(env, "notice")
    assert notices
    for _, _, notice, _ in notices:
        text, html = text_of(notice), text_of(notice, "html")
        assert_no_secret(text)
        assert_no_secret(html)
        assert "********5352" in text and "********5352" in html
        assert re.search(r"(本文 9行目|body line 9)", text)
    m = re.search(r"http://review\.test(/h/[A-Za-z0-9_.\-]+)", text_of(notices[0][2]))
    assert m
    app = create_app(env.service, env.web)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://review.test"
    ) as c:
        for lang in ("ja", "en"):
            r = await c.get(m.group(1) + f"?lang={lang}")
            assert r.status_code == 200
            assert_no_secret(r.text)
            assert "********5352" in r.text
        r = await c.get(m.group(1) + "?lang=en")
        assert "My Number ********5352 (body line 9)" in r.text


def test_identifiers_in_file_names_and_split_by_markup_are_never_shown() -> None:
    """Security review: a My Number in an attachment's name reached check output and the
    notice; one split by HTML markup reached the review page's HTML view."""
    from leakguard.engine import Engine
    from leakguard.policy.loader import default_policy_path
    from leakguard.web.render import message_view

    full = "482130657391"
    raw = (
        "From: kazuya.sato@city.example.lg.jp\r\nTo: info@company01.example\r\nSubject: s\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee\r\n"
        f"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f'Content-Disposition: attachment; filename="{full}.txt"\r\n\r\n'
        f"個人番号：{full}\r\n--B--\r\n"
    ).encode()
    engine = Engine.from_files(default_policy_path())
    try:
        d = engine.decide(raw)
    finally:
        engine.close()
    for f in d.verdict.findings:
        assert full not in f.detail and all(full not in v for v in f.evidence.values()), f
    html = (
        "From: a@city.example.lg.jp\r\nTo: b@x.example\r\nSubject: s\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>個人番号：<span>123456</span>789018</p><p>みずほ銀行 新宿支店 普通 1234567</p>"
    ).encode()
    view = message_view(html)
    assert view.html == ""  # identifiers in the text: masked text view only
    assert "123456789018" not in view.text and "1234567" not in view.text
