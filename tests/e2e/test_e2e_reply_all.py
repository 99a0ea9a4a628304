"""Issue 8 over real SMTP with ``leakguard serve``, the real engine and default policy: the
relay's own thread record lets a later reply-all with attribution-only quoting pass, while
a fresh mix of organisations in the same thread is still held.

1. The sender writes to A (org A) and B (org B) together: a new mix, held; an
   administrator releases it (CLI), and the relay records who saw whom.
2. B answers all (not through the relay). The sender's reply-all to B with A in Cc quotes
   only "… 中村 真理 <…>:" (Gmail ja, iPhone ja, Thunderbird ja, Outlook en): it passes,
   byte for byte, because its References name mail 1.
3. The same reply-all with C (org C, never on the thread) added is held.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from replyall_mails import CLIENTS, SENDER, A, B, C, first_mail

from e2e.harness import ROOT, Relay
from e2e.sink import Received, Sink

pytestmark = pytest.mark.e2e


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, Sink]]:
    with Sink() as sink:
        r = Relay(tmp_path, sink.port, policy=ROOT / "policies" / "default.yaml").start()
        try:
            yield r, sink
        finally:
            r.stop()


def send(port: int, raw: bytes, rcpts: list[str]) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail(SENDER)
        for r in rcpts:
            c.rcpt(r)
        return c.data(raw)


def arrived(sink: Sink, pred: Callable[[Received], bool], timeout: float = 20.0) -> Received:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for m in list(sink.handler.messages):
            if pred(m):
                return m
        time.sleep(0.05)
    raise AssertionError("not delivered")


def test_reply_all_passes_on_the_relays_record_fresh_mix_held(
    relay: tuple[Relay, Sink],
) -> None:
    r, sink = relay
    first = first_mail()
    code, text = send(r.port, first, [B, A])
    assert code == 250 and text.startswith(b"2.0.0 held H-"), text
    hold_id = text.decode().split()[-1]
    out = subprocess.run(
        [sys.executable, "-m", "leakguard", "holds", "-c", str(r.config), "release", hold_id],
        capture_output=True,
        cwd=str(r.tmp),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    released = arrived(sink, lambda m: m.data == first)
    assert sorted(released.rcpts) == sorted([A, B])
    for name, build in sorted(CLIENTS.items()):
        raw = build()
        code, text = send(r.port, raw, [B, A])
        assert code == 250 and b"held" not in text, (name, text)
        got = arrived(sink, lambda m, raw=raw: m.data == raw)  # type: ignore[misc]
        assert sorted(got.rcpts) == sorted([A, B]), name
        # C was never on the thread: the same reply-all with C in Cc is a new mix
        code, text = send(r.port, build(msg_id=f"fresh-{name}@x", extra_cc=(C,)), [B, A, C])
        assert code == 250 and text.startswith(b"2.0.0 held H-"), (name, text)
    assert not any(C in m.rcpts for m in sink.handler.messages)
