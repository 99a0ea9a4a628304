"""Event-loop stall probe (issue 12): while each known hostile mail goes through a real
``leakguard serve``, a second SMTP session sends NOOP every 10 ms and records the slowest
answer. A stall there is time every other session and the web pages waited.

    .venv/bin/python bench/loop_stall_probe.py
"""

from __future__ import annotations

import shutil
import smtplib
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from e2e.harness import Relay  # noqa: E402
from e2e.sink import Sink  # noqa: E402
from test_fuzz_steps import KNOWN_BOMBS  # noqa: E402


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lg-stall-"))
    worst = [0.0]
    stop = threading.Event()
    with Sink() as sink:
        relay = Relay(tmp, sink.port).start()

        def probe() -> None:
            s = socket.create_connection(("127.0.0.1", relay.port))
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"EHLO probe\r\n")
            while f.readline()[3:4] != b" ":
                pass
            while not stop.is_set():
                t = time.perf_counter()
                s.sendall(b"NOOP\r\n")
                f.readline()
                worst[0] = max(worst[0], time.perf_counter() - t)
                time.sleep(0.01)
            s.close()

        try:
            time.sleep(1)
            th = threading.Thread(target=probe, daemon=True)
            th.start()
            for name, raw in KNOWN_BOMBS.items():
                worst[0] = 0.0
                t = time.perf_counter()
                try:
                    with smtplib.SMTP("127.0.0.1", relay.port, timeout=120) as c:
                        c.ehlo("bench")
                        c.mail("kazuya.sato@city.example.lg.jp")
                        c.rcpt("info@company01.example")
                        code: object = c.data(raw)[0]
                except Exception as exc:
                    code = repr(exc)[:80]
                took = time.perf_counter() - t
                print(
                    f"{name:32s} reply {code}  {took:6.2f} s  worst loop stall "
                    f"{worst[0] * 1000:7.1f} ms",
                    flush=True,
                )
            stop.set()
            th.join(5)
        finally:
            relay.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
