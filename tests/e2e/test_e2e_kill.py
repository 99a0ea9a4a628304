"""SIGKILL under load, restart, reconcile (DESIGN §4: nothing acknowledged is lost, nothing
is sent twice).

12 clients send concurrently a mix of mail the policy passes, holds, and mail the upstream
temporarily refuses (queued: ``queue_on_temporary_failure``). The relay is killed with
SIGKILL mid-stream, restarted on the same data directory, and the upstream is made healthy.
Then every message a client got 250 for must be at the sink (passed or queued, exactly
once) or stored as a hold; no message may reach the sink twice.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import threading
import time
from collections import Counter
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest

from e2e.harness import Relay
from e2e.sink import Sink
from leakguard.store import open_store, sqlite_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SENDER = "kazuya.sato@city.example.lg.jp"
CLIENTS = 12


def message(seq: int) -> tuple[bytes, list[str]]:
    kind = seq % 3
    if kind == 0:  # one external organisation: pass
        rcpts = ["ken@hotel-sakura.example"]
    elif kind == 1:  # two external organisations visible: hold
        rcpts = ["ken@hotel-sakura.example", "mary@travel-agency.example"]
    else:  # upstream says 451 for this recipient until the restart: queued
        rcpts = ["later@defer.example"]
    raw = (
        f"From: {SENDER}\r\nTo: {', '.join(rcpts)}\r\nSubject: load {seq}\r\n"
        f"Message-ID: <seq{seq}@city.example.lg.jp>\r\nX-Test-Seq: {seq}\r\n\r\n"
        f"message number {seq}\r\n" + ("x" * 76 + "\r\n") * 26
    ).encode()
    return raw, rcpts


def test_sigkill_under_load_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    acked: dict[int, str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1_000_000))

    with Sink() as sink:
        sink.handler.refuse = {"later@defer.example": "451 4.3.0 try later"}
        extra = {
            "delivery": {
                "queue_on_temporary_failure": True,
                "poll_interval": "1s",
                "retry_base": "1s",
                "retry_max": "1s",
            }
        }
        relay = Relay(tmp_path, sink.port, extra=extra).start()

        def client() -> None:
            while not stop.is_set():
                with lock:
                    seq = next(counter)
                raw, rcpts = message(seq)
                try:
                    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as c:
                        c.ehlo("load.test")
                        c.mail(SENDER)
                        for r in rcpts:
                            c.rcpt(r)
                        code, text = c.data(raw)
                except (OSError, smtplib.SMTPException):
                    continue  # no 250 seen: the client would retry; we do not count it
                if code == 250:
                    with lock:
                        acked[seq] = text.decode("ascii", "replace")

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        # let load build up (first decisions warm the engine), then kill mid-stream
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 60:
                    break
            time.sleep(0.05)
        relay.kill()
        stop.set()
        for t in threads:
            t.join(15)
        with lock:
            acked_now = dict(acked)
        assert len(acked_now) >= 30, f"too little load before the kill: {len(acked_now)}"

        # restart on the same data directory, upstream healthy again
        sink.handler.refuse = {}
        relay2 = relay.start()  # same config, ports and data directory
        try:
            queued = {s for s, t in acked_now.items() if "queued as Q" in t}
            held = {s: t.split()[-1] for s, t in acked_now.items() if " held " in f" {t}"}
            passed = set(acked_now) - set(queued) - set(held)
            assert queued and held and passed, (len(queued), len(held), len(passed))

            def seqs_at_sink() -> Counter[int]:
                c: Counter[int] = Counter()
                for m in sink.messages:
                    h = BytesHeaderParser().parsebytes(m.data)
                    v = h.get("X-Test-Seq")
                    if v is not None and re.fullmatch(r"\d+", v.strip()):
                        c[int(v)] += 1
                return c

            end = time.monotonic() + 40
            while time.monotonic() < end:
                got = seqs_at_sink()
                if all(got[s] >= 1 for s in passed | queued):
                    break
                time.sleep(0.25)
            time.sleep(2.0)  # anything sent twice would show up by now
            got = seqs_at_sink()
            missing = sorted(s for s in passed | queued if got[s] == 0)
            assert not missing, f"acknowledged but never delivered: {missing[:20]}"
            twice = sorted(s for s, n in got.items() if n > 1)
            assert not twice, f"delivered more than once: {twice[:20]}"
            assert not any(got[s] for s in held), "a held message reached the upstream"
        finally:
            assert relay2.stop() == 0

        async def check_holds() -> None:
            store = await open_store(sqlite_url(relay.data / "leakguard.db"))
            try:
                for seq, hold_id in held.items():
                    h = await store.get_hold(hold_id)
                    assert h is not None, f"hold {hold_id} for message {seq} lost"
                    raw = await store.get_message(h.message_sha256)
                    assert f"X-Test-Seq: {seq}\r\n".encode() in raw
                assert await store.queue_depth() == 0
            finally:
                await store.close()

        asyncio.run(check_holds())
        print(
            f"\nkill test: acked={len(acked_now)} passed={len(passed)} held={len(held)} "
            f"queued={len(queued)}"
        )
