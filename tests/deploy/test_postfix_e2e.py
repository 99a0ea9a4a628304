"""A real Postfix in front of leakguard (relayhost, content_filter) and behind it.

Each test starts a private Postfix (see ``postfix.py``) and ``leakguard serve`` as
subprocesses on loopback ports, with an SMTP sink as the outside world. What the client
sees differs by position, and the tests check what is true for each:

- Postfix in front: the client gets Postfix's "250 ... queued as QID" whatever leakguard
  decides later. The hold id appears in Postfix's log (leakguard's reply to Postfix) and
  in the notice to the sender; a refusal becomes Postfix's bounce to the sender.
- Postfix behind: the client talks to leakguard and gets "250 2.0.0 held H-..." itself;
  what passes is queued by Postfix and delivered to the sink.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.harness import Relay, free_port
from e2e.sink import Sink

from deploy.postfix import Postfix, why_postfix_cannot_run
from leakguard.holds.model import HoldState
from leakguard.store import open_store, sqlite_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_REASON = why_postfix_cannot_run()
if _REASON is not None:
    print(f"SKIP Postfix end-to-end tests: {_REASON}")
    pytestmark.append(pytest.mark.skip(reason=_REASON))

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
INTERNAL = ["staff01@city.example.lg.jp", "staff02@city.example.lg.jp"]
RISKY_RCPTS = ["ken.ito@hotel-sakura.example", "mjones@travel-agency.example"]
RISKY_SENDER = "emily.clark@city.example.lg.jp"
SENDER = "kazuya.sato@city.example.lg.jp"


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


CLEAN = _crlf((EXAMPLES / "internal-only-many-ja.eml").read_bytes())
RISKY = _crlf((EXAMPLES / "mixed-organizations-en.eml").read_bytes())


def send(port: int, raw: bytes, rcpts: list[str], sender: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.test")
        c.mail(sender)
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = c.data(raw)
        return code, text.decode("utf-8", "replace")


def body(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


def message_events(relay: Relay) -> list[str]:
    return [ln for ln in relay.log().splitlines() if '"event": "message"' in ln]


def hold_state(relay: Relay, hold_id: str) -> HoldState | None:
    async def get() -> HoldState | None:
        store = await open_store(sqlite_url(relay.data / "leakguard.db"))
        try:
            hold = await store.get_hold(hold_id)
            return hold.state if hold else None
        finally:
            await store.close()

    return asyncio.run(get())


def only_mail_to(sink: Sink, rcpts: list[str], timeout: float = 30.0) -> list[bytes]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = [m.data for m in sink.messages if m.rcpts == rcpts]
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"nothing for {rcpts} at the sink: {[m.rcpts for m in sink.messages]}")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# ---------------------------------------------------------------------- relayhost


@pytest.fixture
def relayhost(tmp: Path) -> Iterator[tuple[Postfix, Relay, Sink]]:
    """client -> Postfix (relayhost = leakguard) -> leakguard -> sink (the smarthost)."""
    with Sink() as sink:
        relay = Relay(tmp, sink.port).start()
        try:
            pf = Postfix(free_port())
            pf.add_snippet("relayhost-main.cf", {"127.0.0.1]:2525": f"127.0.0.1]:{relay.port}"})
            with pf:
                yield pf, relay, sink
        finally:
            relay.stop()


def test_relayhost_clean_mail_reaches_the_sink(relayhost: tuple[Postfix, Relay, Sink]) -> None:
    pf, relay, sink = relayhost
    code, text = send(pf.port, CLEAN, INTERNAL, SENDER)
    assert code == 250 and "queued as" in text, text
    (got,) = only_mail_to(sink, INTERNAL)
    assert body(got) == body(CLEAN)
    assert b"by mx.leakguard.test (Postfix)" in got  # it really went through Postfix
    qid = text.rsplit(" ", 1)[-1]
    pf.wait_log(rf"{qid}: to=<staff01@city\.example\.lg\.jp>.*relay=127\.0\.0\.1.*status=sent")
    assert len(message_events(relay)) == 1


def test_relayhost_risky_mail_is_held_client_sees_postfix_queue_id(
    relayhost: tuple[Postfix, Relay, Sink],
) -> None:
    pf, relay, sink = relayhost
    code, text = send(pf.port, RISKY, RISKY_RCPTS, RISKY_SENDER)
    # the client's answer comes from Postfix's queue, before leakguard has seen the mail
    assert code == 250 and "queued as" in text and "held" not in text, text
    qid = text.rsplit(" ", 1)[-1]
    # leakguard's answer to Postfix carries the hold id; Postfix logs it as delivered
    m = pf.wait_log(
        rf"{qid}: to=<ken\.ito@hotel-sakura\.example>.*status=sent \(250 2\.0\.0 held (H-\S+)\)"
    )
    hold_id = m.group(1)
    assert hold_state(relay, hold_id) is HoldState.HELD
    # the sender learns of the hold from leakguard's notice; the recipients get nothing
    (notice,) = only_mail_to(sink, [RISKY_SENDER])
    assert f"hold={hold_id}".encode() in notice
    time.sleep(1)
    assert not [m for m in sink.messages if set(m.rcpts) & set(RISKY_RCPTS)]
    assert pf.queue_ids() == []  # nothing left waiting in Postfix


def test_relayhost_refusal_becomes_a_bounce_to_the_sender(
    relayhost: tuple[Postfix, Relay, Sink],
) -> None:
    pf, relay, sink = relayhost
    rcpts = [f"person{i}@org{i}.example" for i in range(30)]
    raw = f"From: {SENDER}\r\nTo: {', '.join(rcpts)}\r\nSubject: many\r\n\r\nhello\r\n".encode()
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=60) as c:
        c.mail(SENDER)
        for r in rcpts:
            c.rcpt(r)
        code, text = c.data(raw)
    assert code == 250, text  # Postfix accepted it into its queue
    pf.wait_log(r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.7\.1")
    # Postfix's bounce goes to the sender through its relayhost, leakguard, to the sink
    (dsn,) = only_mail_to(sink, [SENDER])
    assert b"Thirty or more external recipients" in dsn
    assert sink.messages[0].mail_from == "<>"  # a bounce keeps its null sender
    assert '"action": "reject"' in relay.log()
    assert not [m for m in sink.messages if set(m.rcpts) & set(rcpts)]


# ---------------------------------------------------------------------- content_filter


@pytest.fixture
def content_filter(tmp: Path) -> Iterator[tuple[Postfix, Relay, Sink]]:
    """client -> Postfix -> content_filter leakguard -> Postfix re-injection -> sink."""
    with Sink() as sink:
        reinject = free_port()
        relay = Relay(
            tmp, reinject, extra={"upstream": {"host": "127.0.0.1", "port": reinject}}
        ).start()
        try:
            pf = Postfix(free_port(), relayhost=f"[127.0.0.1]:{sink.port}")
            pf.add_snippet(
                "content-filter-main.cf", {"127.0.0.1]:2525": f"127.0.0.1]:{relay.port}"}
            )
            pf.add_snippet("content-filter-master.cf", {"127.0.0.1:10026": f"127.0.0.1:{reinject}"})
            with pf:
                yield pf, relay, sink
        finally:
            relay.stop()


def test_content_filter_clean_mail_passes_once(content_filter: tuple[Postfix, Relay, Sink]) -> None:
    pf, relay, sink = content_filter
    code, text = send(pf.port, CLEAN, INTERNAL, SENDER)
    assert code == 250 and "queued as" in text, text
    (got,) = only_mail_to(sink, INTERNAL)
    assert body(got) == body(CLEAN)
    # through Postfix twice (submission, re-injection), through leakguard once: no loop
    assert len(re.findall(rb"by mx\.leakguard\.test \(Postfix\)", got)) == 2
    time.sleep(2)
    assert len(message_events(relay)) == 1
    assert len([m for m in sink.messages if m.rcpts == INTERNAL]) == 1
    assert pf.queue_ids() == []


def test_content_filter_risky_mail_is_held(content_filter: tuple[Postfix, Relay, Sink]) -> None:
    pf, relay, sink = content_filter
    code, text = send(pf.port, RISKY, RISKY_RCPTS, RISKY_SENDER)
    assert code == 250 and "queued as" in text and "held" not in text, text
    qid = text.rsplit(" ", 1)[-1]
    m = pf.wait_log(
        rf"{qid}: to=<ken\.ito@hotel-sakura\.example>.*status=sent \(250 2\.0\.0 held (H-\S+)\)"
    )
    hold_id = m.group(1)
    assert hold_state(relay, hold_id) is HoldState.HELD
    # the notice leaves leakguard through the re-injection listener and Postfix
    (notice,) = only_mail_to(sink, [RISKY_SENDER])
    assert f"hold={hold_id}".encode() in notice
    assert b"by mx.leakguard.test (Postfix)" in notice
    pf.wait_log(r"to=<emily\.clark@city\.example\.lg\.jp>.*status=sent")
    time.sleep(1)
    assert not [m for m in sink.messages if set(m.rcpts) & set(RISKY_RCPTS)]
    # the notice was checked by nobody: re-injected mail skips the filter
    assert len(message_events(relay)) == 1
    assert pf.queue_ids() == []


def test_content_filter_leakguard_down_mail_waits_in_postfix_queue(tmp: Path) -> None:
    with Sink() as sink:
        down = free_port()  # nothing listens here: leakguard is stopped
        pf = Postfix(free_port(), relayhost=f"[127.0.0.1]:{sink.port}")
        pf.add_snippet("content-filter-main.cf", {"127.0.0.1]:2525": f"127.0.0.1]:{down}"})
        pf.add_snippet("content-filter-master.cf", {"127.0.0.1:10026": f"127.0.0.1:{free_port()}"})
        with pf:
            code, text = send(pf.port, CLEAN, INTERNAL, SENDER)
            assert code == 250, text
            qid = text.rsplit(" ", 1)[-1]
            pf.wait_log(rf"{qid}: to=<staff01@city\.example\.lg\.jp>.*status=deferred")
            assert qid in pf.queue_ids()  # kept for retry, not lost, not delivered unfiltered
            assert sink.messages == []


# ---------------------------------------------------------------------- Postfix behind


@pytest.fixture
def behind(tmp: Path) -> Iterator[tuple[Postfix, Relay, Sink]]:
    """client -> leakguard -> Postfix (leakguard's upstream) -> sink."""
    with Sink() as sink:
        pf = Postfix(free_port(), relayhost=f"[127.0.0.1]:{sink.port}")
        with pf:
            relay = Relay(tmp, pf.port).start()
            try:
                yield pf, relay, sink
            finally:
                relay.stop()


def test_behind_clean_mail_is_delivered_by_postfix(behind: tuple[Postfix, Relay, Sink]) -> None:
    pf, relay, sink = behind
    code, text = send(relay.port, CLEAN, INTERNAL, SENDER)
    assert code == 250, text
    (got,) = only_mail_to(sink, INTERNAL)
    assert body(got) == body(CLEAN)
    assert b"by mx.leakguard.test (Postfix)" in got
    pf.wait_log(r"to=<staff01@city\.example\.lg\.jp>.*status=sent")


def test_behind_risky_mail_client_sees_hold_id(behind: tuple[Postfix, Relay, Sink]) -> None:
    pf, relay, sink = behind
    code, text = send(relay.port, RISKY, RISKY_RCPTS, RISKY_SENDER)
    assert code == 250 and text.startswith("2.0.0 held H-"), text
    hold_id = text.split()[-1]
    assert hold_state(relay, hold_id) is HoldState.HELD
    (notice,) = only_mail_to(sink, [RISKY_SENDER])  # the notice, delivered by Postfix
    assert f"hold={hold_id}".encode() in notice
    assert b"by mx.leakguard.test (Postfix)" in notice
    pf.wait_log(r"to=<emily\.clark@city\.example\.lg\.jp>.*status=sent")
    time.sleep(1)
    assert not [m for m in sink.messages if set(m.rcpts) & set(RISKY_RCPTS)]
