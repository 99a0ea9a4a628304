"""``leakguard serve`` as a subprocess, the real engine and policy, a real upstream sink,
and SMTP clients (stdlib smtplib; swaks where installed)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.harness import POLICY, ROOT, Relay
from e2e.sink import Sink
from leakguard.holds.model import DeliveryState, HoldState
from leakguard.store import open_store, sqlite_url

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples"
SENDER = "kazuya.sato@city.example.lg.jp"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, Sink]]:
    with Sink() as sink:
        r = Relay(tmp_path, sink.port).start()
        try:
            yield r, sink
        finally:
            r.stop()


def send(port: int, raw: bytes, rcpts: list[str], sender: str = SENDER) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail(sender)
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


def test_pass_delivers_exact_bytes(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    raw = (EXAMPLES / "internal-only-many-ja.eml").read_bytes().replace(b"\r\n", b"\n")
    raw = raw.replace(b"\n", b"\r\n")
    code, text = send(r.port, raw, ["staff01@city.example.lg.jp", "staff02@city.example.lg.jp"])
    assert code == 250, text
    (got,) = sink.handler.wait_for(1)
    assert got.data == raw
    assert got.rcpts == ["staff01@city.example.lg.jp", "staff02@city.example.lg.jp"]


def test_bcc_rewrites_to_only(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    raw = (EXAMPLES / "bulk-to-12-companies-ja.eml").read_bytes().replace(b"\r\n", b"\n")
    raw = raw.replace(b"\n", b"\r\n")
    rcpts = [f"info@company{i:02d}.example" for i in range(1, 13)]
    code, _ = send(r.port, raw, rcpts)
    assert code == 250
    (got,) = sink.handler.wait_for(1)
    assert got.rcpts == rcpts  # envelope unchanged: everyone still receives it
    head, _, body = raw.partition(b"\r\n\r\n")
    ghead, _, gbody = got.data.partition(b"\r\n\r\n")
    assert gbody == body
    start = head.index(b"To: ")
    end = head.index(b"\r\nSubject:")
    assert ghead == head[:start] + b"To: undisclosed-recipients:;" + head[end:]


def test_hold_is_stored_and_notice_sent(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    raw = (EXAMPLES / "mixed-organizations-en.eml").read_bytes()
    rcpts = ["ken.ito@hotel-sakura.example", "mjones@travel-agency.example"]
    code, text = send(r.port, raw, rcpts, sender="emily.clark@city.example.lg.jp")
    assert code == 250 and text.startswith(b"2.0.0 held H-"), text
    hold_id = text.decode().split()[-1]
    notices = sink.handler.wait_for(1, timeout=15)
    assert len(notices) == 1
    assert notices[0].rcpts == ["emily.clark@city.example.lg.jp"]
    assert f"hold={hold_id}".encode() in notices[0].data
    # the web server listens on a free port (not 8025) and no base URL is configured: the
    # notice's links point at the port it really listens on
    import email
    import email.policy

    note = email.message_from_bytes(notices[0].data, policy=email.policy.default)
    body = note.get_body(preferencelist=("plain",))
    assert body is not None
    assert f"http://127.0.0.1:{r.web_port}/h/" in body.get_content()
    assert r.web_port != 8025

    async def check() -> None:
        store = await open_store(sqlite_url(r.data / "leakguard.db"))
        try:
            hold = await store.get_hold(hold_id)
            assert hold is not None and hold.state is HoldState.HELD
            assert hold.rules == ("mixed-organizations",)
            assert await store.get_message(hold.message_sha256) == raw
            # the plain listener trusts the network: there is no AUTH login to record
            assert hold.auth_user is None
            assert hold.mail_from == "emily.clark@city.example.lg.jp"
            # the sink has the notice; the relay marks it done right after the upstream's
            # 250, which on a loaded machine can be a moment later
            for _ in range(100):
                notice = [d for d in await store.list_deliveries() if d.kind == "notice"]
                if notice and notice[0].state is DeliveryState.DONE:
                    break
                await asyncio.sleep(0.1)
            assert notice and notice[0].state is DeliveryState.DONE
        finally:
            await store.close()

    asyncio.run(check())
    events = [json.loads(x) for x in r.log().splitlines() if x.startswith("{")]
    (audit,) = [e for e in events if e.get("event") == "message" and e.get("action") == "hold"]
    assert audit["auth_user"] is None and audit["trusted_client"] is True
    assert audit["sender"] == "emily.clark@city.example.lg.jp"


def test_reject_gives_550_with_reason(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    rcpts = [f"person{i}@org{i}.example" for i in range(30)]
    raw = (f"From: {SENDER}\r\nTo: {', '.join(rcpts)}\r\nSubject: many\r\n\r\nhello\r\n").encode()
    code, text = send(r.port, raw, rcpts)
    assert code == 550
    assert text.startswith(b"5.7.1 Thirty or more external recipients")
    assert b"[too-many-external]" in text
    time.sleep(0.3)
    assert sink.messages == []


def test_open_relay_refused_and_sigterm_graceful(tmp_path: Path) -> None:
    with Sink() as sink:
        r = Relay(
            tmp_path,
            sink.port,
            extra={
                "listeners": [
                    {"kind": "plain", "listen": "127.0.0.1:0", "trusted_networks": ["192.0.2.0/24"]}
                ]
            },
        )
        r.listen_port = r.port  # not used: port 0 chosen below
        # listen on a known port that does not trust loopback
        cfg = r.config.read_text("utf-8").replace("127.0.0.1:0", f"127.0.0.1:{r.port}")
        r.config.write_text(cfg, "utf-8")
        r.start()
        try:
            with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
                c.ehlo()
                code, text = c.mail(SENDER)
                assert code == 550 and text.startswith(b"5.7.1")
                assert c.rcpt("x@partner.example.co.jp")[0] == 503
        finally:
            assert r.stop() == 0
        assert sink.messages == []
        log = r.log()
        assert '"event": "relay_denied"' in log and '"event": "stopped"' in log


def test_sighup_reload_keeps_policy_on_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = POLICY.read_text("utf-8").replace(
        "../../../policies/organization.yaml", str(ROOT / "policies" / "organization.yaml")
    )
    policy.write_text(text, "utf-8")
    with Sink() as sink:
        r = Relay(tmp_path, sink.port, policy=policy).start()
        try:
            policy.write_text("version: 1\nrules: [ {id: x, when: {nope: 1}} ]\n", "utf-8")
            r.signal(signal.SIGHUP)
            time.sleep(1.0)
            assert '"event": "reload_failed"' in r.log()
            # /healthz no longer says plain "ok": the policy in force is older than the file
            with httpx.Client(base_url=f"http://127.0.0.1:{r.web_port}") as c:
                h = c.get("/healthz")
                assert h.status_code == 200  # still relaying: load balancers keep it
                body = h.json()
                assert body["ok"] is True and body["status"] == "degraded"
                assert body["policy"]["stale"] is True
                assert body["policy"]["running_version"] != body["policy"]["file_version"]
                assert "nope" in body["policy"]["last_reload_error"]
                assert c.get("/healthz?strict=1").status_code == 503
                metrics = c.get("/metrics").text
                assert "leakguard_policy_reload_failures_total 1.0" in metrics
                assert "leakguard_policy_stale 1.0" in metrics
            rcpts = [f"person{i}@org{i}.example" for i in range(30)]
            raw = f"From: {SENDER}\r\nTo: {', '.join(rcpts)}\r\nSubject: m\r\n\r\nx\r\n".encode()
            code, _ = send(r.port, raw, rcpts)
            assert code == 550  # the old policy still rejects
            policy.write_text(text.replace("gte: 30", "gte: 50"), "utf-8")
            r.signal(signal.SIGHUP)
            time.sleep(1.0)
            assert '"event": "reloaded"' in r.log()
            code, _ = send(r.port, raw, rcpts)
            assert code == 250  # now a bcc
            with httpx.Client(base_url=f"http://127.0.0.1:{r.web_port}") as c:
                health = c.get("/healthz?strict=1")
                assert health.status_code == 200 and health.json()["status"] == "ok"
                assert health.json()["policy"]["stale"] is False
                assert "last_reload_error" not in health.json()["policy"]
                assert "leakguard_policy_stale 0.0" in c.get("/metrics").text
                assert 'leakguard_messages_total{action="reject"} 1.0' in c.get("/metrics").text
        finally:
            assert r.stop() == 0


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_pass(relay: tuple[Relay, Sink]) -> None:
    r, sink = relay
    out = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{r.port}",
            "--from",
            SENDER,
            "--to",
            "staff01@city.example.lg.jp",
            "--header",
            "Subject: swaks test",
            "--body",
            "hello",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (got,) = sink.handler.wait_for(1)
    assert b"Subject: swaks test" in got.data and got.rcpts == ["staff01@city.example.lg.jp"]
