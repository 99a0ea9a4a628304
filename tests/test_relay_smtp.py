"""The SMTP front over real sockets: the service runs in this test's loop with a stand-in
engine (verdict from an ``X-Test-Action`` header) and a real aiosmtpd sink as upstream."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from e2e.sink import Sink
from loops import event_loop_policy  # noqa: F401  (both event loops)
from relay_fakes import FakeEngine

from leakguard.config import ServiceConfig
from leakguard.holds.model import HoldState
from leakguard.relay.users import add_user
from leakguard.service import Service

ALICE = "alice@city.example.lg.jp"
PASSWORD = "correct horse battery staple"


def mail(
    action: str = "pass",
    *,
    frm: str = ALICE,
    to: str = "bob@partner.example.co.jp",
    cc: str = "carol@city.example.lg.jp",
    tag: str = "1",
) -> bytes:
    return (
        f"From: Alice <{frm}>\r\nTo: {to}\r\nCc: {cc}\r\nSubject: test {tag}\r\n"
        f"Date: Mon, 24 Nov 2025 10:00:00 +0900\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nX-Test-Action: {action}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"本文 {tag}\r\n..dot-stuffed line stays\r\n"
    ).encode()


@dataclass
class Env:
    service: Service
    sink: Sink
    engine: FakeEngine
    ca: trustme.CA
    tmp: Path

    def port(self, name: str) -> int:
        return self.service.smtp_ports[name]

    def client_ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    add_user(tmp_path / "users.txt", ALICE, PASSWORD, ("shared@city.example.lg.jp",))
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [
                    {"kind": "plain", "listen": "127.0.0.1:0"},
                    {"kind": "plain", "listen": "127.0.0.1:0", "trusted_networks": ["10.0.0.0/8"]},
                    {"kind": "submission", "listen": "127.0.0.1:0"},
                    {"kind": "smtps", "listen": "127.0.0.1:0"},
                ],
                "tls": {
                    "cert_file": str(tmp_path / "cert.pem"),
                    "key_file": str(tmp_path / "key.pem"),
                },
                "auth": {"users_file": str(tmp_path / "users.txt")},
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "delivery": {"poll_interval": "1s", "retry_base": "1s"},
                "web": {"listen": "127.0.0.1:0"},
                "holds": {
                    "notice_from": "leakguard@city.example.lg.jp",
                    "command_address": "leakguard-hold@city.example.lg.jp",
                },
            }
        )
        engine = FakeEngine()
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=engine)
        await service.start()
        try:
            yield Env(service, sink, engine, ca, tmp_path)
        finally:
            await service.stop(timeout=5)


def _send(
    port: int, raw: bytes, rcpts: list[str], *, frm: str = ALICE, options: tuple[str, ...] = ()
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        code, _ = c.mail(frm, list(options))
        if code != 250:
            return code, _
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


async def send(port: int, raw: bytes, rcpts: list[str], **kw: object) -> tuple[int, bytes]:
    return await asyncio.to_thread(_send, port, raw, rcpts, **kw)  # type: ignore[arg-type]


RCPTS = ["bob@partner.example.co.jp", "carol@city.example.lg.jp"]


async def test_pass_relays_exact_bytes_and_learns_history(env: Env) -> None:
    raw = mail("pass", tag="p1")
    code, text = await send(env.port("plain-0"), raw, RCPTS, options=("BODY=8BITMIME",))
    assert code == 250, text
    (got,) = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert got.data == raw and got.rcpts == RCPTS and got.mail_from == ALICE
    assert "BODY=8BITMIME" in got.options
    assert env.engine.calls[0][3] == ALICE  # trusted network: envelope sender is identity
    assert env.service.store is not None
    for _ in range(50):  # history is written in batches, within about a second
        rcpts, _ = await env.service.store.sender_history(ALICE)
        if rcpts:
            break
        await asyncio.sleep(0.1)
    assert rcpts == {"bob@partner.example.co.jp", "carol@city.example.lg.jp"}
    # the second message sees the history
    await send(env.port("plain-0"), mail("pass", tag="p2"), RCPTS)
    hist = env.engine.calls[1][2]
    assert hist is not None and hist.known and "bob@partner.example.co.jp" in hist.recipients


async def test_bcc_rewrites_only_headers_envelope_unchanged(env: Env) -> None:
    raw = mail("bcc", to="bob@partner.example.co.jp, dan@other.example.com", tag="b1")
    rcpts = ["bob@partner.example.co.jp", "dan@other.example.com", "carol@city.example.lg.jp"]
    code, _ = await send(env.port("plain-0"), raw, rcpts)
    assert code == 250
    (got,) = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert got.rcpts == rcpts
    assert got.data == raw.replace(
        b"To: bob@partner.example.co.jp, dan@other.example.com\r\n",
        b"To: undisclosed-recipients:;\r\n",
    )


async def test_hold_stores_and_queues_notice(env: Env) -> None:
    raw = mail("hold", tag="h1")
    code, text = await send(env.port("plain-0"), raw, RCPTS)
    assert code == 250 and text.startswith(b"2.0.0 held ")
    hold_id = text.decode().split()[-1]
    store = env.service.store
    assert store is not None
    hold = await store.get_hold(hold_id)
    assert hold is not None and hold.state is HoldState.HELD
    assert await store.get_message(hold.message_sha256) == raw
    # a trusted (plain) listener has no AUTH login: the envelope sender is not recorded as one
    assert hold.rcpts == tuple(RCPTS) and hold.auth_user is None and hold.mail_from == ALICE
    # nothing went upstream except the notice to the sender
    msgs = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert len(msgs) == 1 and msgs[0].rcpts == [ALICE] and raw not in msgs[0].data
    assert hold_id.encode() in msgs[0].data or b"leakguard" in msgs[0].data.lower()


async def test_reject_reason_language_depends_on_smtputf8(env: Env) -> None:
    code, text = await send(env.port("plain-0"), mail("reject", tag="r1"), RCPTS)
    assert code == 550
    assert text.startswith(b"5.7.1 Too many external recipients")
    code, text = await send(
        env.port("plain-0"), mail("reject", tag="r2"), RCPTS, options=("SMTPUTF8",)
    )
    assert code == 550
    assert "社外の宛先が多すぎます" in text.decode("utf-8")
    assert env.sink.messages == []


async def test_not_an_open_relay(env: Env) -> None:
    # plain listener that does not trust loopback: 550 5.7.1 at MAIL FROM
    code, text = await send(env.port("plain-1"), mail(tag="o1"), RCPTS)
    assert code == 550 and text.startswith(b"5.7.1")

    def submission_without_auth() -> tuple[int, int, int]:
        with smtplib.SMTP("127.0.0.1", env.port("submission-2"), timeout=10) as c:
            c.ehlo()
            assert not c.has_extn("auth")  # AUTH not offered before TLS
            before_tls = c.mail(ALICE)[0]
            c.starttls(context=env.client_ctx())
            c.ehlo()
            assert c.has_extn("auth")
            after_tls = c.mail(ALICE)[0]
            rcpt = c.rcpt("bob@partner.example.co.jp")[0]
            return before_tls, after_tls, rcpt

    before, after, rcpt = await asyncio.to_thread(submission_without_auth)
    assert before == 530 and after == 530 and rcpt in (503, 530)
    await asyncio.sleep(0.2)
    assert env.sink.messages == []


async def test_submission_auth_and_sender_ownership(env: Env) -> None:
    def run() -> dict[str, object]:
        out: dict[str, object] = {}
        with smtplib.SMTP("127.0.0.1", env.port("submission-2"), timeout=10) as c:
            c.starttls(context=env.client_ctx())
            c.ehlo()
            try:
                c.login(ALICE, "wrong")
            except smtplib.SMTPAuthenticationError as e:
                out["bad"] = e.smtp_code
            c.login(ALICE, PASSWORD)
            out["mail_other"] = c.mail("mallory@city.example.lg.jp")[0]
            c.rset()
            out["shared"] = c.mail("shared@city.example.lg.jp")[0]
            c.rset()
            c.mail(ALICE)
            c.rcpt("bob@partner.example.co.jp")
            out["forged_from"] = c.data(mail("pass", frm="mayor@city.example.lg.jp", tag="f1"))
            c.mail(ALICE)
            c.rcpt("bob@partner.example.co.jp")
            out["ok"] = c.data(mail("pass", tag="ok1"))
        return out

    out = await asyncio.to_thread(run)
    assert out["bad"] == 535
    assert out["mail_other"] == 553
    assert out["shared"] == 250
    forged = out["forged_from"]
    assert isinstance(forged, tuple) and forged[0] == 550
    ok = out["ok"]
    assert isinstance(ok, tuple) and ok[0] == 250
    got = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert [m.data for m in got] == [mail("pass", tag="ok1")]
    assert env.engine.calls[-1][3] == ALICE


async def test_smtps_auth_login_challenge_text(env: Env) -> None:
    def run() -> tuple[bytes, bytes, int]:
        raw_sock = socket.create_connection(("127.0.0.1", env.port("smtps-3")), timeout=10)
        s = env.client_ctx().wrap_socket(raw_sock, server_hostname="localhost")
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO c\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"AUTH LOGIN\r\n")
        c1 = f.readline()
        s.sendall(base64.b64encode(ALICE.encode()) + b"\r\n")
        c2 = f.readline()
        s.sendall(base64.b64encode(PASSWORD.encode()) + b"\r\n")
        final = int(f.readline()[:3])
        s.close()
        return c1, c2, final

    c1, c2, final = await asyncio.to_thread(run)
    assert base64.b64decode(c1[4:].strip()) == b"Username:"
    assert base64.b64decode(c2[4:].strip()) == b"Password:"
    assert final == 235


async def test_bare_lf_smuggling_does_not_split(env: Env) -> None:
    smuggled = (
        b"From: a@city.example.lg.jp\r\nTo: x@partner.example.co.jp\r\nSubject: s\r\n\r\n"
        b"hello\n.\r\nMAIL FROM:<evil@partner.example.co.jp>\r\nRCPT TO:<victim@x.example>\r\n"
        b"DATA\r\nsmuggled\r\n.\r\n"
    )

    def run() -> list[bytes]:
        s = socket.create_connection(("127.0.0.1", env.port("plain-0")), timeout=10)
        f = s.makefile("rb")
        replies = [f.readline()]
        for cmd in (b"EHLO c\r\n",):
            s.sendall(cmd)
            while True:
                line = f.readline()
                if line[3:4] == b" ":
                    break
        for cmd in (
            b"MAIL FROM:<a@city.example.lg.jp>\r\n",
            b"RCPT TO:<x@partner.example.co.jp>\r\n",
            b"DATA\r\n",
        ):
            s.sendall(cmd)
            replies.append(f.readline())
        s.sendall(smuggled + b"\r\n.\r\n")
        replies.append(f.readline())
        s.sendall(b"QUIT\r\n")
        replies.append(f.readline())
        s.close()
        return replies

    replies = await asyncio.to_thread(run)
    assert replies[-2].startswith(b"250"), replies
    got = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    await asyncio.sleep(0.3)
    got = env.sink.messages
    assert len(got) == 1 and got[0].rcpts == ["x@partner.example.co.jp"]
    assert b"MAIL FROM:<evil@partner.example.co.jp>" in got[0].data  # stayed inside the body


async def test_upstream_failures_mirrored(env: Env) -> None:
    env.sink.handler.data_reply = "554 5.7.1 content refused"
    code, text = await send(env.port("plain-0"), mail(tag="u1"), RCPTS)
    assert code == 554 and b"content refused" in text
    env.sink.handler.data_reply = "451 4.3.0 try again"
    code, text = await send(env.port("plain-0"), mail(tag="u2"), RCPTS)
    assert code == 451 and text.startswith(b"4.3.0")
    env.sink.handler.data_reply = None
    env.sink.handler.refuse = {"bob@partner.example.co.jp": "550 5.1.1 unknown user"}
    code, _ = await send(env.port("plain-0"), mail(tag="u3"), RCPTS)
    assert code == 250  # carol got it; bob's failure becomes a DSN to the sender
    got = await asyncio.to_thread(env.sink.handler.wait_for, 2)
    dsn = [m for m in got if m.mail_from in ("", "<>")]
    assert len(dsn) == 1 and dsn[0].rcpts == [ALICE] and b"5.1.1" in dsn[0].data


async def test_limits_and_bad_input(env: Env) -> None:
    def run() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", env.port("plain-0"), timeout=10) as c:
            c.ehlo()
            c.mail(ALICE)
            bad = c.rcpt("not an address")[0]
            c.rset()
            big = c.mail(ALICE, [f"SIZE={10**10}"])[0]
            return bad, big

    bad, big = await asyncio.to_thread(run)
    assert bad in (501, 553) and big == 552


async def test_metrics_health_and_reload(env: Env) -> None:
    await send(env.port("plain-0"), mail("pass", tag="m1"), RCPTS)
    await send(env.port("plain-0"), mail("reject", tag="m2"), RCPTS)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env.service.web_port}") as c:
        m = (await c.get("/metrics")).text
        h = await c.get("/healthz")
    assert 'leakguard_messages_total{action="pass"} 1.0' in m
    assert 'leakguard_rule_matches_total{mode="enforce",rule="test-reject"} 1.0' in m
    assert "leakguard_queue_depth" in m and "leakguard_transaction_seconds_bucket" in m
    assert h.status_code == 200 and h.json()["ok"] is True
    assert env.service.reload() is True and env.engine.reloads == 1
    env.engine.fail_reload = True
    assert env.service.reload() is False  # the running policy stays
    code, _ = await send(env.port("plain-0"), mail("pass", tag="m3"), RCPTS)
    assert code == 250
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env.service.web_port}") as c:
        m = (await c.get("/metrics")).text
        h = (await c.get("/healthz")).json()
    assert "leakguard_policy_reload_failures_total 1.0" in m
    assert h["policy"]["last_reload_error"] and h["policy"]["last_reload_failed_at"]
    env.engine.fail_reload = False
    assert env.service.reload() is True
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env.service.web_port}") as c:
        h = (await c.get("/healthz")).json()
    assert "last_reload_error" not in h["policy"]


async def test_bcc_space_separated_to_is_hidden_over_smtp(env: Env) -> None:
    ext = [f"u{i}@c{i}.example" for i in range(12)]
    raw = mail("bcc", to=" ".join(ext), tag="b2")
    code, _ = await send(env.port("plain-0"), raw, [*ext, "carol@city.example.lg.jp"])
    assert code == 250
    (got,) = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert got.rcpts == [*ext, "carol@city.example.lg.jp"]
    assert got.data == raw.replace(
        b"To: " + " ".join(ext).encode() + b"\r\n", b"To: undisclosed-recipients:;\r\n"
    )


async def test_bcc_refused_when_externals_would_stay_visible(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leakguard.message.rewrite import RewriteResult
    from leakguard.relay import actions, replies

    def stuck(raw: bytes, *_a: object, **_k: object) -> RewriteResult:
        return RewriteResult(raw=raw, removed=(), visible=("bob@partner.example.co.jp",))

    monkeypatch.setattr(actions, "rewrite_recipients", stuck)
    code, text = await send(env.port("plain-0"), mail("bcc", tag="b3"), RCPTS)
    assert f"{code} {text.decode()}" == replies.BCC_UNSAFE
    await asyncio.sleep(0.3)
    assert env.sink.messages == []


async def test_bcc_rewrite_past_its_budget_refuses_the_mail(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: a rewrite that runs past its budget fails closed (never sent visible)."""
    import threading

    from leakguard import budget
    from leakguard.relay import actions, replies

    release = threading.Event()

    def runaway(raw: bytes, *_a: object, **_k: object) -> object:
        release.wait(30)
        raise RuntimeError("released")

    saved = budget.DEFAULT_BUDGETS[budget.BCC_REWRITE]
    budget.configure(budget.BCC_REWRITE, budget.Budget(workers=2, seconds=0.3, backlog=4))
    monkeypatch.setattr(actions, "rewrite_recipients", runaway)
    try:
        code, text = await send(env.port("plain-0"), mail("bcc", tag="b4"), RCPTS)
        assert f"{code} {text.decode()}" == replies.BCC_UNSAFE
        await asyncio.sleep(0.3)
        assert env.sink.messages == []
    finally:
        release.set()
        budget.configure(budget.BCC_REWRITE, saved)


async def test_hold_reply_with_other_recipients_is_refused_whole(env: Env) -> None:
    from email import message_from_bytes
    from email.policy import default as default_policy

    from leakguard.relay import replies

    raw = mail("hold", tag="mx1")
    code, text = await send(env.port("plain-0"), raw, RCPTS)
    assert code == 250
    hold_id = text.decode().split()[-1]
    (notice,) = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    reply_to = str(message_from_bytes(notice.data, policy=default_policy)["Reply-To"])
    assert reply_to.startswith("leakguard-hold+")
    reply = (
        b"Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nrelease\r\n"
        b"> review: https://relay.test/h/secret-link\r\n"
    )
    for rcpts in ([reply_to, "partner@alpha-corp.example"], ["carol@city.example.lg.jp", reply_to]):
        code, text = await send(env.port("plain-0"), reply, rcpts)
        assert f"{code} {text.decode()}" == replies.MIXED_COMMAND
    code, text = await send(
        env.port("plain-0"), reply, [reply_to, "bob@partner.example.co.jp"], options=("SMTPUTF8",)
    )
    assert code == 550 and "保留通知への返信" in text.decode("utf-8")
    await asyncio.sleep(0.3)
    assert len(env.sink.messages) == 1  # only the notice: nothing relayed
    store = env.service.store
    assert store is not None
    h = await store.get_hold(hold_id)
    assert h is not None and h.state is HoldState.HELD  # nothing executed
    # the same reply to the hold address alone (or "reply all": plus the sender) is executed
    code, _ = await send(env.port("plain-0"), reply, [ALICE, reply_to])
    assert code == 250
    h = await store.get_hold(hold_id)
    assert h is not None and h.state is HoldState.RELEASED


def _auth_send_many(env: Env, mails: list[bytes]) -> list[tuple[int, bytes]]:
    out = []
    with smtplib.SMTP("127.0.0.1", env.port("submission-2"), timeout=10) as c:
        c.starttls(context=env.client_ctx())
        c.ehlo()
        c.login(ALICE, PASSWORD)
        for raw in mails:
            c.mail(ALICE)
            c.rcpt("bob@partner.example.co.jp")
            out.append(c.data(raw))
    return out


def _with_from(headers: str, tag: str) -> bytes:
    return (
        f"{headers}To: bob@partner.example.co.jp\r\nSubject: from {tag}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\n\r\nhello {tag}\r\n"
    ).encode()


FROM_REFUSED = {
    "no-from": "",
    "other": "From: mayor@city.example.lg.jp\r\n",
    "two-from": f"From: {ALICE}\r\nFrom: mayor@city.example.lg.jp\r\n",
    "no-domain": "From: Boss <mayor>\r\n",
    "group": "From: undisclosed:;\r\n",
    "encoded-word": "From: =?utf-8?b?bWF5b3JAY2l0eS5leGFtcGxlLmxnLmpw?=\r\n",
    "name-shows-other": f'From: "mayor@city.example.lg.jp" <{ALICE}>\r\n',
    "encoded-name-shows-other": (
        f"From: =?utf-8?q?Mayor_=3Cmayor=40city=2Eexample=2Elg=2Ejp=3E?= <{ALICE}>\r\n"
    ),
    "comment-shows-other": f"From: {ALICE} (mayor@city.example.lg.jp)\r\n",
    "list": f"From: <mayor@city.example.lg.jp>, {ALICE}\r\n",
    "folded-no-comma": f"From:{ALICE}\r\n\tmayor@city.example.lg.jp\r\n",
    "sender": f"From: {ALICE}\r\nSender: mayor@city.example.lg.jp\r\n",
    "sender-no-domain": f"From: {ALICE}\r\nSender: mayor\r\n",
    # issue 12: one reading of the header for everyone
    "bare-cr-from": f"X-A: a\rFrom: <mayor@city.example.lg.jp>\r\nFrom: <{ALICE}>\r\n",
    "nul-in-header": f"X-A: a\x00b\r\nFrom: <{ALICE}>\r\n",
    "resent-from": f"From: <{ALICE}>\r\nResent-From: mayor@city.example.lg.jp\r\n",
    "resent-sender": f"From: <{ALICE}>\r\nResent-Sender: mayor@city.example.lg.jp\r\n",
    "fullwidth-at-name": f'From: "mayor＠city.example.lg.jp" <{ALICE}>\r\n',
    # a From/Sender past the parser's 2,000-field limit was never checked (security review)
    "after-2000-fields": f"From: <{ALICE}>\r\n"
    + "".join(f"X-J{i}: x\r\n" for i in range(2000))
    + "Sender: mayor@city.example.lg.jp\r\nFrom: mayor@city.example.lg.jp\r\n",
}
FROM_ACCEPTED = {
    "own": f"From: Alice <{ALICE}>\r\n",
    "shared": f"From: Shared <shared@city.example.lg.jp>\r\nSender: {ALICE}\r\n",
    "own-in-name": f'From: "{ALICE}" <{ALICE}>\r\n',
    "at-in-name": f'From: "Alice @ City Hall" <{ALICE}>\r\n',
    "japanese-name": f"From: =?UTF-8?B?5L2Q6Jek?= <{ALICE}>\r\n",
}


async def test_authenticated_from_and_sender_ownership(env: Env) -> None:
    from leakguard.relay import replies

    cases = [*FROM_REFUSED.items(), *FROM_ACCEPTED.items()]
    res = await asyncio.to_thread(_auth_send_many, env, [_with_from(h, t) for t, h in cases])
    got = {t: r for (t, _h), r in zip(cases, res, strict=True)}
    for tag in FROM_REFUSED:
        assert got[tag][0] == 550, (tag, got[tag])
    for tag in FROM_ACCEPTED:
        assert got[tag][0] == 250, (tag, got[tag])
    assert f"550 {got['no-from'][1].decode()}" == replies.NO_FROM
    assert f"550 {got['group'][1].decode()}" == replies.NO_FROM
    assert f"550 {got['no-domain'][1].decode()}" == replies.NO_FROM  # no mailbox in it
    assert b"<mayor>" in got["sender-no-domain"][1]
    assert b"Sender:" in got["sender"][1]
    assert b"display name" in got["encoded-name-shows-other"][1]
    assert b"bare CR" in got["bare-cr-from"][1] and b"NUL" in got["nul-in-header"][1]
    assert (
        b"NUL"
        in (
            await asyncio.to_thread(
                _auth_send_many, env, [_with_from(f"From: <{ALICE}>\r\n", "nul") + b"a\x00b\r\n"]
            )
        )[0][1]
    )
    assert b"display name" in got["fullwidth-at-name"][1]
    assert b"Too many header fields" in got["after-2000-fields"][1]
    msgs = await asyncio.to_thread(env.sink.handler.wait_for, len(FROM_ACCEPTED))
    await asyncio.sleep(0.3)
    subjects = sorted(m.data.split(b"Subject: from ")[1].split(b"\r\n")[0] for m in msgs)
    assert subjects == sorted(t.encode() for t in FROM_ACCEPTED)


async def test_data_dir_and_store_are_owner_only(env: Env) -> None:
    import stat

    data = env.tmp / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    dbs = list(data.glob("leakguard.db*"))
    assert any(p.name == "leakguard.db" for p in dbs)
    for p in dbs:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_existing_world_readable_data_dir_is_tightened(tmp_path: Path) -> None:
    import os
    import stat

    from leakguard.service import private_dir, private_sqlite_files

    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    private_dir(d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    private_dir(tmp_path / "new" / "deep")
    assert stat.S_IMODE((tmp_path / "new" / "deep").stat().st_mode) == 0o700
    db = d / "x.db"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    private_sqlite_files(f"sqlite+aiosqlite:///{db}")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


async def test_decisions_run_in_their_own_bounded_pool(env: Env) -> None:
    relay = env.service.relay
    assert relay is not None
    seen: list[str] = []
    original = env.engine.decide

    def spying_decide(*args: object, **kw: object) -> object:
        import threading

        seen.append(threading.current_thread().name)
        return original(*args, **kw)  # type: ignore[arg-type]

    env.engine.decide = spying_decide  # type: ignore[method-assign]
    code, _ = await send(env.port("plain-0"), mail("pass", tag="pool1"), RCPTS)
    assert code == 250
    assert seen and seen[0].startswith("leakguard-decide")  # not the default executor
    # A full backlog answers 451 at once (the client retries) instead of piling up threads.
    relay._deciding = relay.settings.decide_backlog
    try:
        code, text = await send(env.port("plain-0"), mail("pass", tag="pool2"), RCPTS)
        assert code == 451, text
    finally:
        relay._deciding = 0
    code, _ = await send(env.port("plain-0"), mail("pass", tag="pool3"), RCPTS)
    assert code == 250


async def test_permanent_address_problems_are_refused_at_the_command(env: Env) -> None:
    """Issue 12: a UTF-8 address without SMTPUTF8, invalid UTF-8 or NUL/control characters in
    MAIL/RCPT get a 5xx at the command, not a 451 after DATA (clients retry 4xx for days)."""

    def run() -> dict[str, int]:
        out: dict[str, int] = {}
        with smtplib.SMTP("127.0.0.1", env.port("plain-0"), timeout=10) as c:
            c.ehlo("client.test")

            def cmd(line: bytes) -> int:
                c.send(line + b"\r\n")
                return c.getreply()[0]

            out["utf8_rcpt_no_smtputf8"] = (
                cmd(b"MAIL FROM:<" + ALICE.encode() + b">"),
                cmd("RCPT TO:<山田@partner.example.co.jp>".encode()),
            )[1]
            cmd(b"RSET")
            out["invalid_utf8_rcpt"] = (
                cmd(b"MAIL FROM:<" + ALICE.encode() + b"> SMTPUTF8"),
                cmd(b"RCPT TO:<\xff\xfe@partner.example.co.jp>"),
            )[1]
            cmd(b"RSET")
            out["nul_rcpt"] = (
                cmd(b"MAIL FROM:<" + ALICE.encode() + b">"),
                cmd(b"RCPT TO:<bo\x00b@partner.example.co.jp>"),
            )[1]
            cmd(b"RSET")
            out["utf8_mail_no_smtputf8"] = cmd("MAIL FROM:<佐藤@city.example.lg.jp>".encode())
            cmd(b"RSET")
            out["ok_with_smtputf8"] = (
                cmd(b"MAIL FROM:<" + ALICE.encode() + b"> SMTPUTF8"),
                cmd("RCPT TO:<山田@partner.example.co.jp>".encode()),
            )[1]
        return out

    got = await asyncio.to_thread(run)
    assert got["ok_with_smtputf8"] == 250
    for key in ("utf8_rcpt_no_smtputf8", "invalid_utf8_rcpt", "nul_rcpt", "utf8_mail_no_smtputf8"):
        assert 500 <= got[key] < 600, (key, got)


async def test_bare_lf_mail_larger_than_64k_is_accepted(env: Env) -> None:
    """Issue 12: mail written with bare LF line ends (some in-house tools) is one long line to
    aiosmtpd; past 64 KiB it was refused as "line too long". The message size limit bounds it
    now, and end-of-data stays CRLF.CRLF only."""
    body = b"".join(b"line %d of a long report\n" % i for i in range(8000))  # ~200 KB
    raw = b"From: a@city.example.lg.jp\nTo: x@partner.example.co.jp\nSubject: lf\n\n" + body

    def run() -> bytes:
        with smtplib.SMTP("127.0.0.1", env.port("plain-0"), timeout=30) as c:
            c.ehlo("c")
            c.mail("a@city.example.lg.jp")
            c.rcpt("x@partner.example.co.jp")
            c.putcmd("data")
            code, _ = c.getreply()
            assert code == 354
            c.send(raw + b"\r\n.\r\n")  # no dot-stuffing needed: no line starts with "."
            code, msg = c.getreply()
            return b"%d %s" % (code, msg)

    reply = await asyncio.to_thread(run)
    assert reply.startswith(b"250"), reply
    await asyncio.to_thread(env.sink.handler.wait_for, 1)
    got = env.sink.messages[-1].data
    assert b"line 7999 of a long report" in got


@pytest.fixture
async def small_env(tmp_path: Path) -> AsyncIterator[Env]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "limits": {"max_message_size": 4096},
                "web": {"listen": "127.0.0.1:0"},
            }
        )
        engine = FakeEngine()
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=engine)
        await service.start()
        try:
            yield Env(service, sink, engine, trustme.CA(), tmp_path)
        finally:
            await service.stop(timeout=5)


async def test_data_reader_limits_dots_and_end_of_data(small_env: Env) -> None:
    """The one-buffer DATA reader: leading dots unstuffed, mail over the size limit refused
    with 552 after the whole upload (and the session goes on), a line over the limit too."""
    env = small_env

    def run() -> list[int]:
        codes = []
        with smtplib.SMTP("127.0.0.1", env.port("plain-0"), timeout=10) as c:
            c.ehlo("c")
            for body in (
                b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend\r\n",
                b"Subject: big\r\n\r\n" + b"\r\n".join([b"y" * 70] * 100),
                b"Subject: long line\r\n\r\n" + b"z" * 10_000 + b"\r\n",
                b"Subject: after\r\n\r\nstill fine\r\n",
            ):
                c.mail("a@city.example.lg.jp")
                c.rcpt("x@partner.example.co.jp")
                codes.append(c.data(body)[0])
        return codes

    codes = await asyncio.to_thread(run)
    assert codes == [250, 552, 552, 250], codes
    await asyncio.to_thread(env.sink.handler.wait_for, 2)
    got = [m.data for m in env.sink.messages]
    # smtplib dot-stuffs, the relay unstuffs, the upstream leg stuffs again: the body
    # arrives exactly as written
    assert any(b"\r\n.leading dot\r\n..two\r\nend\r\n" in d for d in got)
    assert any(b"still fine" in d for d in got)


async def test_nul_in_the_body_is_refused_and_never_forwarded(env: Env) -> None:
    """Issue 12: RFC 5321 forbids NUL in DATA; the relay forwarded it. Now a NUL anywhere
    (here deep in the body, past the header section, from a trusted MTA on the plain
    listener without AUTH) is a permanent 550 at the end of DATA and nothing goes upstream;
    the same mail without the NUL passes."""
    head = b"From: a@city.example.lg.jp\r\nTo: x@partner.example.co.jp\r\nSubject: nul\r\n\r\n"
    body = b"line\r\n" * 20_000

    def send(raw: bytes) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", env.port("plain-0"), timeout=30) as c:
            c.ehlo("c")
            c.mail("a@city.example.lg.jp")
            c.rcpt("x@partner.example.co.jp")
            return c.data(raw)

    code, text = await asyncio.to_thread(send, head + body + b"bin\x00ary\r\n" + body)
    assert code == 550 and text.startswith(b"5.6.0") and b"NUL" in text, (code, text)
    code, _ = await asyncio.to_thread(send, head + body + b"binary\r\n")
    assert code == 250
    got = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    await asyncio.sleep(0.3)
    assert len(env.sink.messages) == 1 and all(b"\x00" not in m.data for m in env.sink.messages)
    assert got[0].data.endswith(body + b"binary\r\n")
