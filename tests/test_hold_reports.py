"""Issue 9 in the hold workflow: report links in every notice, the report reply command
(also on closed holds, with a spent but genuine token), discard as "this was a mistake",
and the ``on_resolved`` / ``on_report`` hooks of the officer's desk."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_holds_support import SECRET, Env, do_hold, make_env, parse, queued, text_of, verdict

from leakguard.holds.model import HoldRecord, HoldState, Via
from leakguard.holds.service import Decision
from leakguard.officer.links import ReportLinks, ReportRef

TANAKA = "tanaka@city.example.lg.jp"
SATO = "sato@city.example.lg.jp"  # tanaka's supervisor (English)
CMD = "leakguard-hold+{}@city.example.lg.jp"


class Hooks:
    def __init__(self) -> None:
        self.resolved: list[tuple[str, HoldState, Decision, str, Via, bool]] = []
        self.reports: list[tuple[str, HoldState, str, Via, str]] = []
        self.fail_resolved = False
        self.fail_report = False

    async def on_resolved(
        self, hold: HoldRecord, decision: Decision, actor: str, via: Via, mistake: bool
    ) -> None:
        self.resolved.append((hold.id, hold.state, decision, actor, via, mistake))
        if self.fail_resolved:
            raise RuntimeError("officer desk down")

    async def on_report(self, hold: HoldRecord, actor: str, via: Via, note: str) -> None:
        self.reports.append((hold.id, hold.state, actor, via, note))
        if self.fail_report:
            raise RuntimeError("officer desk down")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    e.service.report_links = ReportLinks(
        SECRET, base_url="http://review.test", max_age_seconds=30 * 86400
    )
    try:
        yield e
    finally:
        await e.store.close()


@pytest.fixture
def hooks(env: Env) -> Hooks:
    h = Hooks()
    env.service.on_resolved.append(h.on_resolved)
    env.service.on_report.append(h.on_report)
    return h


def _token(raw: bytes) -> str:
    m = re.search(r"leakguard-hold\+([a-z2-7]{32})@", str(parse(raw)["Reply-To"]))
    assert m, parse(raw)["Reply-To"]
    return m.group(1)


def _report_ref(env: Env, raw: bytes) -> ReportRef:
    text, html = text_of(raw), text_of(raw, "html")
    m = re.search(r"http://review\.test/report/([A-Za-z0-9_.\-]+)", text)
    assert m, text
    assert f'href="http://review.test/report/{m.group(1)}"' in html
    assert env.service.report_links is not None
    ref = env.service.report_links.verify(m.group(1))
    assert ref is not None
    return ref


async def _reply(env: Env, token: str, body: str, mail_from: str = TANAKA) -> str:
    raw = ("Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    return await env.service.handle_reply(
        raw=raw, mail_from=mail_from, rcpts=[CMD.format(token)], auth_user=None
    )


async def _mails_to(env: Env, rcpt: str) -> list[bytes]:
    return [raw for _, rcpts, raw, _ in await queued(env, "notice") if rcpts == [rcpt]]


async def test_hold_notice_has_report_link_mistake_answer_and_reply_help(env: Env) -> None:
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    assert _report_ref(env, notice) == ReportRef(actor=TANAKA, hold_id=h.id)
    text = text_of(notice)
    assert "誤送信を報告する" in text and "「報告」と返信" in text
    assert "破棄 (誤送信でした)" in text and "誤送信 (破棄して誤送信として記録)" in text
    assert "?a=discard_mistake" in text


async def test_notice_footer_names_the_only_links_that_open(env: Env) -> None:
    await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    hrefs = re.findall(r'href="([^"]+)"', text_of(notice, "html"))
    assert any(h.startswith("http://review.test/report/") for h in hrefs)
    assert all(h.startswith(("http://review.test/h/", "http://review.test/report/")) for h in hrefs)
    assert "確認ページと報告ページへのボタンとリンクだけです" in text_of(notice)


async def test_english_notice_and_approver_get_their_own_links(env: Env) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    (to_sato,) = await _mails_to(env, SATO)
    assert _report_ref(env, to_sato) == ReportRef(actor=SATO, hold_id=h.id)
    text = text_of(to_sato)
    assert "Report a mistake" in text and "Discard — this was a mistake" in text
    (to_tanaka,) = await _mails_to(env, TANAKA)
    assert _report_ref(env, to_tanaka).actor == TANAKA


async def test_release_info_has_report_link_and_reply_report_files_it(
    env: Env, hooks: Hooks
) -> None:
    h = await do_hold(env, verdict(approval="supervisor"))
    (to_sato,) = await _mails_to(env, SATO)
    assert (await _reply(env, _token(to_sato), "release\n", SATO)).startswith("250 2.0.0 Command")
    assert hooks.resolved == [(h.id, HoldState.RELEASED, Decision.RELEASE, SATO, Via.REPLY, False)]
    info = (await _mails_to(env, TANAKA))[-1]
    assert "送信されました" in text_of(info)
    assert _report_ref(env, info) == ReportRef(actor=TANAKA, hold_id=h.id)
    # the info mail takes a reply: 「報告」 and a note
    res = await _reply(env, _token(info), "報告\n別の会社の担当者に送ってしまいました。\n")
    assert res == "250 2.0.0 Command accepted"
    assert hooks.reports == [
        (h.id, HoldState.RELEASED, TANAKA, Via.REPLY, "別の会社の担当者に送ってしまいました。")
    ]
    confirmation = (await _mails_to(env, TANAKA))[-1]
    assert "誤送信の報告を受け付けました" in text_of(confirmation)
    tl = await env.store.timeline(h.id)
    assert any(tr.note.startswith("reported: 別の会社") and tr.actor == TANAKA for tr in tl)
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED  # nothing else changed
    # the approver who released it reports too, with the token they spent; in English
    assert (await _reply(env, _token(to_sato), "Report\n", SATO)).endswith("accepted")
    assert hooks.reports[-1] == (h.id, HoldState.RELEASED, SATO, Via.REPLY, "")
    assert "Your report was filed" in text_of((await _mails_to(env, SATO))[-1])


async def test_report_with_the_spent_token_of_the_first_notice(env: Env, hooks: Hooks) -> None:
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    token = _token(notice)
    await _reply(env, token, "送信\n")
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED
    # the token is spent: another command is refused ...
    assert "refused" in await _reply(env, token, "破棄\n")
    # ... but a report with it is taken (released mail is exactly what gets reported)
    assert (await _reply(env, token, "誤送信\n")) == "250 2.0.0 Command accepted"
    assert hooks.reports == [(h.id, HoldState.RELEASED, TANAKA, Via.REPLY, "")]
    # a stranger with the same (spent) token learns nothing and files nothing
    res = await _reply(env, token, "report\n", "mallory@city.example.lg.jp")
    assert "refused" in res and len(hooks.reports) == 1
    (answer,) = await _mails_to(env, "mallory@city.example.lg.jp")
    assert "差出人でも承認者でもない" in text_of(answer) and "見積書" not in text_of(answer)
    # a token the store never issued files nothing
    assert "refused" in await _reply(env, "b" * 32, "報告\n")
    assert len(hooks.reports) == 1


async def test_report_refused_when_the_mail_is_older_than_retention(env: Env, hooks: Hooks) -> None:
    await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    token = _token(notice)
    await _reply(env, token, "送信\n")
    env.clock.advance(days=31)
    assert "refused" in await _reply(env, token, "報告\n")
    assert hooks.reports == []


async def test_report_on_an_open_hold_leaves_it_held(env: Env, hooks: Hooks) -> None:
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    token = _token(notice)
    assert (await _reply(env, token, "report: wrong client\n")) == "250 2.0.0 Command accepted"
    assert hooks.reports == [(h.id, HoldState.HELD, TANAKA, Via.REPLY, "wrong client")]
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    # the token was not spent: the sender can still answer
    await _reply(env, token, "破棄\n")
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED


@pytest.mark.parametrize("body", ["誤送信\n", "mistake\n", "破棄 (誤送信でした)\n"])
async def test_mistake_reply_discards_an_open_hold_as_a_mistake(
    env: Env, hooks: Hooks, body: str
) -> None:
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    assert (await _reply(env, _token(notice), body)) == "250 2.0.0 Command accepted"
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED
    assert hooks.resolved == [
        (h.id, HoldState.DISCARDED, Decision.DISCARD, TANAKA, Via.REPLY, True)
    ]
    assert hooks.reports == []
    tl = await env.store.timeline(h.id)
    assert any(tr.to_state == HoldState.DISCARDED and "[mistake]" in tr.note for tr in tl)
    assert await queued(env, "mail") == []
    confirmation = (await _mails_to(env, TANAKA))[-1]
    assert "破棄しました" in text_of(confirmation)
    # nothing went out: the discard confirmation offers no report link
    assert "/report/" not in text_of(confirmation)


@pytest.mark.parametrize(
    "body", ["報告しないで\n", "報告 しないでください\n", "report?\n", "誤送信ではありません\n"]
)
async def test_no_report_when_the_reply_says_otherwise(env: Env, hooks: Hooks, body: str) -> None:
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    assert "refused" in await _reply(env, _token(notice), body)
    assert hooks.reports == [] and hooks.resolved == []
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    assert "内容を判断できませんでした" in text_of((await _mails_to(env, TANAKA))[-1])


async def test_a_failing_hook_never_breaks_the_resolution(env: Env, hooks: Hooks) -> None:
    hooks.fail_resolved = True
    calls: list[str] = []

    async def second(
        hold: HoldRecord, decision: Decision, actor: str, via: Via, mistake: bool
    ) -> None:
        calls.append(hold.id)

    env.service.on_resolved.append(second)
    h = await do_hold(env)
    out = await env.service.resolve(
        h.id, Decision.RELEASE, actor="admin:root", via=Via.CLI, admin=True
    )
    assert out.ok and out.code == "released"
    assert len(await queued(env, "mail")) == 1
    assert hooks.resolved == [
        (h.id, HoldState.RELEASED, Decision.RELEASE, "admin:root", Via.CLI, False)
    ]
    assert calls == [h.id]  # the next hook still ran


async def test_a_failing_report_hook_is_told_to_the_reporter(env: Env, hooks: Hooks) -> None:
    hooks.fail_report = True
    h = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    assert "refused" in await _reply(env, _token(notice), "報告\n")
    assert len(hooks.reports) == 1
    assert "担当者への連絡に失敗しました" in text_of((await _mails_to(env, TANAKA))[-1])
    tl = await env.store.timeline(h.id)
    assert any(tr.note == "reported" for tr in tl)  # recorded all the same


async def test_resolve_mistake_only_for_discard(env: Env, hooks: Hooks) -> None:
    h = await do_hold(env)
    out = await env.service.resolve(
        h.id, Decision.RELEASE, actor=TANAKA, via=Via.WEB, identity=TANAKA, mistake=True
    )
    assert out.ok
    assert hooks.resolved[-1][-1] is False
    tl = await env.store.timeline(h.id)
    assert not any("[mistake]" in tr.note for tr in tl)


async def test_no_report_link_without_links(tmp_path: Path) -> None:
    e = await make_env(tmp_path)
    try:
        await do_hold(e)
        (notice,) = await _mails_to(e, TANAKA)
        assert "/report/" not in text_of(notice) and "/report/" not in text_of(notice, "html")
    finally:
        await e.store.close()


async def test_report_and_mistake_notes_are_masked_in_the_timeline(env: Env, hooks: Hooks) -> None:
    mynumber, card = "123456789018", "4111 1111 1111 1111"
    note = f"マイナンバー {mynumber} とカード {card} を送ってしまいました"
    first = await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    assert (await _reply(env, _token(notice), f"報告\n{note}\n")).endswith("Command accepted")
    second = await do_hold(env)
    notices = await _mails_to(env, TANAKA)
    assert (await _reply(env, _token(notices[-1]), f"誤送信\n{note}\n")).endswith("accepted")
    shown = [tr.note for h in (first, second) for tr in await env.store.timeline(h.id)]
    shown += [r[4] for r in hooks.reports]
    assert any("9018" in n for n in shown), shown  # masked, not dropped
    for n in shown:
        digits = re.sub(r"[^0-9]", "", n)
        assert mynumber not in digits and card.replace(" ", "") not in digits, n


async def test_report_reply_confirmation_names_the_incident(env: Env) -> None:
    """With the officer's desk behind the hook, the confirmation quotes the incident's
    number, as the web page and report-by-mail do."""
    from datetime import UTC, datetime

    from leakguard.store.journal import IncidentRecord

    async def file(hold: HoldRecord, actor: str, via: Via, note: str) -> None:
        await env.store.journal.create_incident(  # type: ignore[attr-defined]
            IncidentRecord(
                id="I-TESTREF001", kind="report", state="open", created_at=datetime.now(UTC),
                reported_by=actor, via=str(via), hold_id=hold.id,
            )
        )  # fmt: skip

    env.service.on_report.append(file)
    await do_hold(env)
    (notice,) = await _mails_to(env, TANAKA)
    await _reply(env, _token(notice), "送信\n")
    assert (await _reply(env, _token(notice), "報告\n")).endswith("accepted")
    assert "受付番号: I-TESTREF001" in text_of((await _mails_to(env, TANAKA))[-1])
