"""bench/relay/: the pieces the relay benchmarks rely on measure what they claim to."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import pytest
from e2e.sink import Sink as PySink

ROOT = Path(__file__).resolve().parents[1]
RELAY_BENCH = ROOT / "bench" / "relay"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(RELAY_BENCH))
    spec = importlib.util.spec_from_file_location(name, RELAY_BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


h = _load("harness")
curves = _load("curves")


@pytest.mark.parametrize(
    ("kind", "size", "rcpts", "expect"),
    [
        ("pass", 5 * 1024, 10, "pass"),
        ("pass", 500 * 1024, 100, "pass"),
        ("held", 5 * 1024, 10, "hold"),
        ("bcc", 5 * 1024, 10, "bcc"),
    ],
)
def test_each_case_takes_the_path_it_names(
    tmp_path: Path, kind: str, size: int, rcpts: int, expect: str
) -> None:
    mail = h.write_mail(kind, size, tmp_path / "m.eml")
    assert h.check_action(mail, kind, rcpts) == expect


@pytest.mark.parametrize("kind", ["pass", "held", "bcc"])
def test_mail_has_the_size_asked_and_is_7bit_smtp_data(kind: str) -> None:
    for size in (5 * 1024, 50 * 1024):  # the held mail's own text is 1.3 KB
        raw = h.wire_bytes(kind, size)
        assert size <= len(raw) - 3 <= size + 200
        assert raw.endswith(b"\r\n.\r\n")
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert max(raw) < 128


@pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("smtp-sink") and shutil.which("smtp-source")),
    reason="needs root and Postfix's smtp-sink / smtp-source",
)
def test_paced_client_sends_the_bytes_smtp_source_sends() -> None:
    """The latency client and smtp-source -F put the same mail on the wire."""
    # not under pytest's 0700 tmp dir: smtp-sink writes as the postfix user
    tmp_path = Path(tempfile.mkdtemp(prefix="lg-sinkdump-", dir="/tmp"))
    tmp_path.chmod(0o755)
    dump = tmp_path / "dump"
    dump.mkdir()
    dump.chmod(0o777)
    port = h.free_port()
    sink = subprocess.Popen(
        ["smtp-sink", "-u", "postfix", "-d", f"{dump}/%M%S", f"127.0.0.1:{port}", "10"],
        start_new_session=True,
    )
    try:
        h.wait_port(port)
        mail = h.write_mail("held", 5 * 1024, tmp_path / "m.eml")
        h.smtp_source(port, mail, "held", 1, 1, 3)
        end = time.monotonic() + 10
        while not list(dump.iterdir()) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
        (got,) = [p.read_bytes() for p in dump.iterdir()]
    finally:
        sink.terminate()
        sink.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)
    rcpts = [line.split(b"<")[1].rstrip(b">\r") for line in got.splitlines()
             if line.startswith(b"X-Rcpt-Args:")]  # fmt: skip
    assert sorted(r.decode() for r in rcpts) == sorted(h.envelope("held", 3))
    body = got[got.index(b"From: ") :]  # after the sink's own trace headers
    wire = h.wire_bytes("held", 5 * 1024)[: -len(b".\r\n")]
    # the dump ends with blank lines of its own
    assert body.replace(b"\r\n", b"\n").rstrip(b"\n") == wire.replace(b"\r\n", b"\n").rstrip(b"\n")


def test_paced_client_keeps_the_rate_and_times_the_transaction() -> None:
    with PySink() as sink:
        sink.handler.delay = 0.03  # every DATA answered 30 ms late
        got = h.paced(sink.port, "pass", 2048, 3, rate=100, messages=40, sessions=4)
        received = sink.handler.wait_for(40)
    assert len(received) == 40
    assert sorted(received[0].rcpts) == sorted(h.envelope("pass", 3))
    assert received[0].mail_from == h.SENDER
    assert 30 <= got["p50_ms"] < 1000
    assert got["p99_ms"] >= got["p50_ms"]
    # never faster than asked; slower only by what a loaded machine adds (CI saw 48 of 100)
    assert 25 <= got["rate_done"] <= 110


def test_tree_cpu_counts_the_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time,sys\nwhile time.process_time() < 0.4: pass\n"
         "print('done', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "done"
        me = h.tree_cpu(os.getpid()) - h._cpu(os.getpid())
        assert me >= 0.35
        assert h.status_kb(child.pid, "VmRSS") > 0
    finally:
        child.kill()
        child.wait()


def test_linearity_tells_a_line_from_a_curve() -> None:
    xs = [1.0, 10.0, 100.0, 300.0, 1000.0]
    line = curves.linearity(xs, [2 + 0.12 * x for x in xs])
    assert line["linear"] and line["r2"] > 0.999
    assert line["b_ms_per_unit"] == pytest.approx(0.12)
    assert line["growth_exponent"] == pytest.approx(1.0, abs=0.01)
    square = curves.linearity(xs, [2 + 0.001 * x * x for x in xs])
    assert not square["linear"]
    assert square["growth_exponent"] == pytest.approx(2.0, abs=0.1)
    # noise in single steps (one step at half the slope) is still linear growth
    noisy = curves.linearity(xs, [2, 3.2, 14.0, 35.0, 120.0])
    assert noisy["linear"]


def test_paced_mails_each_have_their_own_message_id() -> None:
    """The relay's retry recognition answers identical bytes from the first hold: the paced
    client must not send the same mail twice (stop 18)."""
    with PySink() as sink:
        h.paced(sink.port, "held", 2048, 3, rate=200, messages=20, sessions=4)
        received = sink.handler.wait_for(20)
    ids = [next(x for x in r.data.split(b"\r\n") if x.startswith(b"Message-ID:")) for r in received]
    assert len(set(ids)) == 20


@pytest.mark.skipif(not shutil.which("smtp-source"), reason="needs Postfix's smtp-source")
def test_unique_gives_every_mail_its_own_envelope() -> None:
    """``smtp_source(unique=True)`` (``-N``): no two mails with the same recipients, so held
    mail is held every time, not answered by retry recognition (stop 18)."""
    mail = h.write_mail("held", 2048, Path(tempfile.mkdtemp()) / "m.eml")
    with PySink() as sink:
        h.smtp_source(sink.port, mail, "held", 6, 2, 3, unique=True)
        received = sink.handler.wait_for(6)
    envelopes = {tuple(sorted(r.rcpts)) for r in received}
    assert len(envelopes) == 6
