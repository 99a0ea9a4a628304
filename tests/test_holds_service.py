"""HoldService: creating holds, notices, and every resolve path (reply, link, CLI-style)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_holds_support import (
    LOOKALIKE,
    THIRD_PARTY,
    Env,
    do_hold,
    make_env,
    parse,
    queued,
    text_of,
    verdict,
)

from leakguard.holds.model import HoldState, Via
from leakguard.holds.service import Decision
from leakguard.types import Action


@pytest.fixture
async def env(tmp_path: Path):
    e = await make_env(tmp_path)
    try:
        yield e
    finally:
        await e.store.close()


def _reply_to_token(raw: bytes) -> str:
    m = re.search(r"leakguard-hold\+([a-z2-7]{32})@", str(parse(raw)["Reply-To"]))
    assert m, parse(raw)["Reply-To"]
    return m.group(1)


def _link(raw: bytes) -> str:
    m = re.search(r"http://review\.test/h/([A-Za-z0-9_.\-]+)", text_of(raw))
    assert m
    return m.group(1)


async def test_hold_is_stored_and_notice_queued(env: Env) -> None:
    h = await do_hold(env, verdict(findings=[THIRD_PARTY, LOOKALIKE]))
    assert h.state == HoldState.HELD
    assert h.id.startswith("H-")
    stored = await env.store.get_hold(h.id)
    assert stored is not None and stored.rules == ("forwarded-third-party",)
    notices = await queued(env, "notice")
    assert len(notices) == 1
    _kind, rcpts, raw, hold_id = notices[0]
    assert rcpts == ["tanaka@city.example.lg.jp"] and hold_id == h.id
    msg = parse(raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text = text_of(raw)
    html = text_of(raw, "html")
    # Japanese by default; the reason, the evidence per recipient, subject, first lines
    assert "保留されています" in text
    assert "宛先が知らないはずの第三者" in text
    assert "secret-person@other-client.example.org" in text
    assert "text part 1, line 12" in text
    assert "partner.example.co.jp に似ていますが別物" in text
    assert "見積書の送付" in text and "見積書を送付いたします" in text
    # links in the held mail are defanged in both parts, never clickable
    assert "hxxp://evil.example/x" in text and "http://evil.example" not in text
    assert "http://evil.example" not in html and 'href="hxxp' not in html
    # answers: links to the review page and reply commands
    assert "http://review.test/h/" in text and "破棄" in text
    assert _reply_to_token(raw)
    # the mail itself is not queued
    assert await queued(env, "mail") == []


async def test_notice_is_english_for_english_users(env: Env) -> None:
    await do_hold(env, mail_from="alice@city.example.lg.jp", sender="alice@city.example.lg.jp")
    ((_, rcpts, raw, _),) = await queued(env, "notice")
    assert rcpts == ["alice@city.example.lg.jp"]
    assert "Your mail has NOT been sent yet" in text_of(raw)
    assert parse(raw)["Subject"].startswith("[Held]")


async def test_hostile_subject_and_body_are_escaped_in_html(env: Env) -> None:
    await do_hold(
        env,
        subject='<img src=x onerror=alert(1)> "hi"',
        body="<script>window.pwned=1</script>\nclick https://phish.example/login\n",
    )
    ((_, _, raw, _),) = await queued(env, "notice")
    html = text_of(raw, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "https://phish" not in html and "hxxps://phish.example" in html


async def test_reply_release_delivers_and_confirms(env: Env) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    # full-width "Ｒｅ" + "lease", then a quoted line
    reply = (
        b"From: tanaka@city.example.lg.jp\r\nSubject: Re: x\r\n\r\n"
        b"\xef\xbc\xb2\xef\xbd\x85lease\r\n> quoted\r\n"
    )
    res = await env.service.handle_reply(
        raw=reply,
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert res.startswith("250")
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED
    mails = await queued(env, "mail")
    assert len(mails) == 1 and sorted(mails[0][1]) == sorted(h.rcpts)
    tl = await env.store.timeline(h.id)
    assert any(
        tr.to_state == HoldState.RELEASED
        and tr.via == Via.REPLY
        and tr.actor == "tanaka@city.example.lg.jp"
        for tr in tl
    )
    # a confirmation mail to the replier
    confirmations = [q for q in await queued(env, "notice") if q[2] != notice]
    assert confirmations and "送信しました" in text_of(confirmations[-1][2])
    # the token is single-use: a second reply changes nothing
    res2 = await env.service.handle_reply(
        raw=b"Subject: x\r\n\r\ndiscard\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert "refused" in res2
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("破棄\n", HoldState.DISCARDED),
        ("DISCARD please\n", HoldState.DISCARDED),
        ("\n\n  送信 \n", HoldState.RELEASED),
        ("ＢＣＣ\n", HoldState.RELEASED_BCC),
        ("> release\n\ndiscard\n", HoldState.DISCARDED),
    ],
)
async def test_reply_commands_are_case_and_width_insensitive(
    env: Env, body: str, expected: HoldState
) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    raw = ("Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    await env.service.handle_reply(
        raw=raw,
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == expected


async def test_reply_from_unauthorised_sender_changes_nothing(env: Env) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    res = await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\nrelease\r\n",
        mail_from="mallory@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert "refused" in res
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    assert await queued(env, "mail") == []
    answer = [q for q in await queued(env, "notice") if q[1] == ["mallory@city.example.lg.jp"]]
    assert answer and "差出人でも承認者でもない" in text_of(answer[0][2])
    # the token was not spent: the real sender can still answer
    await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\ndiscard\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED


async def test_auth_identity_decides_on_submission(env: Env) -> None:
    """With AUTH the identity is the login, not the (forgeable) envelope sender."""
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\nrelease\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user="mallory@city.example.lg.jp",
    )
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD


async def test_forged_token_and_auto_replies(env: Env) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    forged = "a" * 32
    res = await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\nrelease\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{forged}@city.example.lg.jp"],
        auth_user=None,
    )
    assert "refused" in res
    # an out-of-office answer to the notice is ignored: no state change, no mail (no loop)
    before = len(await queued(env))
    token = _reply_to_token(notice)
    res = await env.service.handle_reply(
        raw=b"Auto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nrelease\r\n",
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert "ignored" in res
    assert len(await queued(env)) == before
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD


async def test_no_notice_about_a_notice(env: Env) -> None:
    h = await do_hold(env, extra_headers=[("Auto-Submitted", "auto-generated")])
    assert await queued(env, "notice") == []
    tl = await env.store.timeline(h.id)
    assert any("suppressed" in tr.note for tr in tl)


async def test_is_command_address(env: Env) -> None:
    s = env.service
    assert s.is_command_address("leakguard-hold@city.example.lg.jp")
    assert s.is_command_address("<Leakguard-Hold+abc@CITY.example.lg.jp>")
    assert not s.is_command_address("leakguard-holdx@city.example.lg.jp")
    assert not s.is_command_address("leakguard-hold@other.example")


async def test_release_as_bcc_hides_external_recipients(env: Env) -> None:
    h = await do_hold(
        env,
        verdict(offer_bcc=True),
        to=["a@client-one.example.com", "b@client-two.example.net"],
        cc=["suzuki@city.example.lg.jp"],
    )
    out = await env.service.resolve(
        h.id,
        Decision.RELEASE_BCC,
        actor="tanaka@city.example.lg.jp",
        via=Via.WEB,
        identity="tanaka@city.example.lg.jp",
    )
    assert out.ok and out.code == "released_bcc"
    ((_, rcpts, raw, _),) = await queued(env, "mail")
    assert sorted(rcpts) == sorted(
        ["a@client-one.example.com", "b@client-two.example.net", "suzuki@city.example.lg.jp"]
    )
    m = parse(raw)
    headers = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "client-one" not in headers and "client-two" not in headers
    assert "suzuki@city.example.lg.jp" in str(m["Cc"])
    assert m["Subject"] == "見積書の送付"
    # body kept byte for byte
    orig = await env.store.get_message(h.message_sha256)
    assert raw.split(b"\r\n\r\n", 1)[1] == orig.split(b"\r\n\r\n", 1)[1]


async def test_discard_queues_nothing(env: Env) -> None:
    h = await do_hold(env)
    out = await env.service.resolve(
        h.id,
        Decision.DISCARD,
        actor="tanaka@city.example.lg.jp",
        via=Via.WEB,
        identity="tanaka@city.example.lg.jp",
    )
    assert out.ok
    assert await queued(env, "mail") == []
    again = await env.service.resolve(
        h.id, Decision.RELEASE, actor="admin:root", via=Via.CLI, admin=True
    )
    assert not again.ok and again.code == "closed"
    assert await queued(env, "mail") == []


async def test_hold_action_delay_uses_delayed_state(env: Env) -> None:
    h = await do_hold(env, verdict(action=Action.DELAY, delay_seconds=300))
    assert h.state == HoldState.DELAYED and h.due_at == env.clock.t.replace() + __import__(
        "datetime"
    ).timedelta(seconds=300)
    ((_, _, raw, _),) = await queued(env, "notice")
    text = text_of(raw)
    assert "自動的に送信されます" in text and "5分" in text
    assert "送信を取り消す" in text


@pytest.mark.parametrize(
    "body",
    [
        "送信　しないでください",
        "承認　しません",
        "OK, but wait until I have checked",
        "Send nothing yet please",
    ],
)
async def test_reply_that_does_not_plainly_release_asks_back(env: Env, body: str) -> None:
    h = await do_hold(env)
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    reply = (
        b"From: tanaka@city.example.lg.jp\r\nSubject: Re: x\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + body.encode()
        + "\r\n> 送信\r\n".encode()
    )
    res = await env.service.handle_reply(
        raw=reply,
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert "refused" in res
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.HELD
    assert not await queued(env, "mail")
    asks = [q for q in await queued(env, "notice") if q[2] != notice]
    assert asks and "内容を判断できませんでした" in text_of(asks[-1][2])
    # the token was not spent: a plain command afterwards still works
    res2 = await env.service.handle_reply(
        raw=b"Subject: x\r\n\r\n\xe7\xa0\xb4\xe6\xa3\x84\r\n",  # 破棄
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    assert res2.startswith("250 2.0.0 Command accepted")
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.DISCARDED


@pytest.mark.parametrize(
    ("command", "state_ja", "state_en"),
    [
        ("送信", "送信済み", "released"),
        ("BCC", "BCCで送信済み", "released as Bcc"),
        ("破棄", "破棄", "discarded"),
    ],
)
async def test_reply_confirmation_shows_the_new_state(
    env: Env, command: str, state_ja: str, state_en: str
) -> None:
    """The confirmation says 「送信しました」 and shows the state *after* the command."""
    h = await do_hold(env, verdict(offer_bcc=True))
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    await env.service.handle_reply(
        raw=f"Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{command}\r\n".encode(),
        mail_from="tanaka@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    got = await env.store.get_hold(h.id)
    assert got is not None and not got.state.is_open
    (confirmation,) = [
        q for q in await queued(env, "notice") if q[2] != notice and "reply_result" in q[2].decode()
    ]
    text = text_of(confirmation[2])
    assert f"状態: {state_ja}" in text
    assert "保留中" not in text


async def test_refusal_to_a_stranger_does_not_reveal_the_subject(env: Env) -> None:
    await do_hold(env, subject="【極秘】人事異動の内示")
    ((_, _, notice, _),) = await queued(env, "notice")
    token = _reply_to_token(notice)
    await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\nrelease\r\n",
        mail_from="mallory@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user=None,
    )
    (answer,) = [q for q in await queued(env, "notice") if q[1] == ["mallory@city.example.lg.jp"]]
    raw = answer[2]
    msg = parse(raw)
    assert "人事異動" not in str(msg["Subject"])
    assert "人事異動" not in text_of(raw) and "極秘" not in text_of(raw)
    assert "差出人でも承認者でもない" in text_of(raw)
    # nor the hold id, which would let them ask about it
    h_ids = [q[3] for q in await queued(env, "notice") if q[2] == notice]
    assert h_ids and h_ids[0] not in raw.decode("ascii", "replace")


async def test_approver_logged_in_answering_from_a_shared_mailbox_gets_the_real_outcome(
    env: Env,
) -> None:
    """AUTH says who answers (the approver); the envelope is a shared mailbox they may use.
    The command is carried out and the confirmation says so, with the new state."""
    h = await do_hold(env, verdict(approval="supervisor"))
    (notice,) = [q for q in await queued(env, "notice") if q[1] == ["sato@city.example.lg.jp"]]
    token = _reply_to_token(notice[2])
    res = await env.service.handle_reply(
        raw=b"Subject: Re\r\n\r\nrelease\r\n",
        mail_from="soumu@city.example.lg.jp",
        rcpts=[f"leakguard-hold+{token}@city.example.lg.jp"],
        auth_user="sato@city.example.lg.jp",
    )
    assert res == "250 2.0.0 Command accepted"
    got = await env.store.get_hold(h.id)
    assert got is not None and got.state == HoldState.RELEASED
    (answer,) = [q for q in await queued(env, "notice") if q[1] == ["soumu@city.example.lg.jp"]]
    text = text_of(answer[2])
    assert "State: released" in text or "状態: 送信済み" in text


async def test_notice_footer_about_defanged_links_is_true(env: Env) -> None:
    """The footer says quoted links are defanged and only review links open: check both."""
    await do_hold(env)  # the mail quotes http://evil.example/x
    ((_, _, notice, _),) = await queued(env, "notice")
    html = text_of(notice, "html")
    plain = text_of(notice)
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs and all(h.startswith("http://review.test/h/") for h in hrefs), hrefs
    for body in (html, plain):
        assert "hxxp://evil.example/x" in body and "http://evil.example" not in body
        assert "hxxp:// の形に変えてあります" in body
        assert "確認ページと報告ページへのボタンとリンクだけです" in body


async def test_a_retried_transaction_gets_the_first_hold(env: Env) -> None:
    """Issue 12: a client that never saw the 250 (connection cut after DATA, relay killed)
    sends the same transaction again: the same bytes, sender and recipients within minutes
    are that retry. No second hold, no second notice; the same hold id is the answer."""
    first = await do_hold(env)
    notices = await queued(env, "notice")
    again = await do_hold(env)
    assert again.id == first.id
    assert await queued(env, "notice") == notices
    assert len(await env.store.list_holds()) == 1
    # another mail (other bytes) or other recipients is a new hold
    other = await do_hold(env, subject="another mail")
    assert other.id != first.id
    fewer = await do_hold(env, to=("a@client-one.example.com",))
    assert fewer.id not in (first.id, other.id)


async def test_a_notice_signs_its_review_link_once_and_every_answer_uses_it(env: Env) -> None:
    """The review link's token is signed once a notice (each answer signed it again: a
    third of a notice's rendering); every answer is that link with its action."""
    signer = env.service.signer
    real = signer.sign
    signed: list[str] = []

    def counted(token: str) -> str:
        signed.append(token)
        return real(token)

    signer.sign = counted  # type: ignore[method-assign]
    await do_hold(env, verdict(findings=[THIRD_PARTY, LOOKALIKE]))
    (_kind, _rcpts, raw, _hold_id) = (await queued(env, "notice"))[0]
    assert len(signed) == 1
    links = set(re.findall(r"http://review\.test/h/[A-Za-z0-9_.\-]+(?:\?a=[a-z_]+)?", text_of(raw)))
    assert {link.split("?")[0] for link in links} == {f"http://review.test/h/{_link(raw)}"}
    assert {link.partition("?a=")[2] for link in links} >= {"release", "discard"}
    assert signer.unsign(_link(raw)) == signed[0]
