"""The fault suite (issue 12): lost = 0 and duplicated = 0 with clients that retry.

The relay runs as a real subprocess (``leakguard serve``, SQLite in a temporary data
directory, the default policy and its organisation); a real upstream (``e2e.sink``) records
every delivery. Clients in threads send mail built from ``examples/`` (pass, Bcc and hold
verdicts), each with its own Message-ID, and retry as MTAs do: after a 4xx, or after the
connection broke or timed out before the final reply, they reconnect and send the same bytes
again, a bounded number of times with a short backoff.

Each scenario then counts:

- **lost**: a mail whose final answer was 250 that reached no upstream recipient and is not
  stored as a hold (every recipient of the envelope must have it, once);
- **duplicated**: a Message-ID delivered twice to one recipient, a second hold for one mail,
  a second notice of one kind for one hold and one person.

A duplicate the design accepts is counted apart and bounded (``docs/security.md``,
"Retries"): a SIGKILL after the upstream took a mail and before its client saw the 250
leaves the restarted relay nothing to recognise the retry by (on SQLite, the memory of sent
mail dies with the process). Only a mail whose client had a transaction cut off after DATA
may be such a duplicate, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Protocol

import pytest

from e2e.harness import ROOT, Relay
from e2e.sink import Received, Sink
from leakguard.store import open_store, sqlite_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
EXAMPLES = ROOT / "examples"
# one example per verdict of the default policy
KINDS = {
    "pass": "one-organization-several-people-ja.eml",
    "bcc": "bulk-to-12-companies-ja.eml",
    "hold": "mixed-organizations-en.eml",
}
NOTICE_HEADER = "X-Leakguard-Notice"
KILL_MAILS = 240  # the SIGKILL test: mails, and clients sending them at once
CLIENTS = 8
# Quick timers: the queue and the hold timers look every second; a hold whose first notice is
# missing 3 s after it was made gets it (a crash between the hold and its notice).
EXTRA: dict[str, Any] = {
    "delivery": {"poll_interval": "1s", "retry_base": "1s", "retry_max": "1s"},
    "holds": {"timer_interval": 1.0, "notice_grace": "3s"},
}


class Upstream(Protocol):
    @property
    def messages(self) -> list[Received]: ...


# ---------------------------------------------------------------------------- mail


@dataclass(frozen=True, slots=True)
class Mail:
    seq: int
    kind: str
    message_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes


def _template(name: str) -> tuple[bytes, str, tuple[str, ...]]:
    raw = (EXAMPLES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    h = BytesHeaderParser().parsebytes(raw)
    sender = getaddresses([str(h["From"])])[0][1]
    rcpts = tuple(
        a for _n, a in getaddresses([str(v) for k in ("To", "Cc") for v in h.get_all(k, [])])
    )
    return raw, sender, rcpts


TEMPLATES = {kind: _template(name) for kind, name in KINDS.items()}


def make_mail(scenario: str, seq: int, kinds: tuple[str, ...] = ("pass", "bcc", "hold")) -> Mail:
    kind = kinds[seq % len(kinds)]
    raw, sender, rcpts = TEMPLATES[kind]
    mid = f"<fault-{scenario}-{seq}@city.example.lg.jp>"
    raw, n = re.subn(rb"(?im)^Message-ID:[^\r\n]*", f"Message-ID: {mid}".encode(), raw, count=1)
    assert n == 1
    raw = f"X-Test-Seq: {scenario}-{seq}\r\n".encode() + raw
    return Mail(seq, kind, mid, sender, rcpts, raw)


# ---------------------------------------------------------------------------- clients


@dataclass
class Outcome:
    mail: Mail
    code: int = 0  # the final answer to DATA (0: never got one)
    text: str = ""
    attempts: int = 0
    cut_after_data: int = 0  # attempts whose connection broke after DATA, before the answer
    replies_4xx: int = 0


class _Cut(Exception):
    """The connection broke after the message was sent, before the final answer."""


def send_once(port: int, mail: Mail, timeout: float) -> tuple[int, str]:
    """One transaction. Raises OSError/SMTPException when the connection breaks before
    DATA, ``_Cut`` when it breaks after the whole message went out."""
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as c:
        c.ehlo("client.test")
        code, text = c.mail(mail.mail_from)
        if code != 250:
            return code, text.decode("utf-8", "replace")
        for r in mail.rcpts:
            code, text = c.rcpt(r)
            if code not in (250, 251):
                return code, text.decode("utf-8", "replace")
        code, text = c.docmd("DATA")
        if code != 354:
            return code, text.decode("utf-8", "replace")
        # smtplib.data's own framing: CRLF line ends, dot-stuffing, CRLF.CRLF
        q = smtplib.quotedata(mail.raw.decode("latin-1")).encode("latin-1")
        try:
            c.send(q + (b"" if q.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            code, text = c.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            raise _Cut from exc
        return code, text.decode("utf-8", "replace")


def send_with_retries(
    port: Callable[[], int],
    mail: Mail,
    *,
    attempts: int = 60,
    timeout: float = 20.0,
    give_up_at: float | None = None,
) -> Outcome:
    """Send like an MTA: the same bytes again after a 4xx or a broken connection, with a
    short backoff, until a 2xx or 5xx, ``attempts`` tries or ``give_up_at``."""
    out = Outcome(mail)
    delay = 0.1
    for _ in range(attempts):
        out.attempts += 1
        try:
            code, text = send_once(port(), mail, timeout)
        except _Cut:
            out.cut_after_data += 1
            code, text = 0, ""
        except (OSError, smtplib.SMTPException):
            code, text = 0, ""
        if 200 <= code < 300 or 500 <= code < 600:
            out.code, out.text = code, text
            return out
        if 400 <= code < 500:
            out.replies_4xx += 1
        if give_up_at is not None and time.monotonic() > give_up_at:
            break
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)
    return out


class Load:
    """``clients`` threads sending ``mails`` (a shared list, in order) with retries."""

    def __init__(
        self, port: Callable[[], int], mails: list[Mail], clients: int, **kw: float
    ) -> None:
        self.port = port
        self.todo = list(reversed(mails))
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.kw = kw
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.todo:
                    return
                mail = self.todo.pop()
            out = send_with_retries(self.port, mail, **self.kw)  # type: ignore[arg-type]
            with self.lock:
                self.outcomes.append(out)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def done_count(self) -> int:
        with self.lock:
            return len(self.outcomes)

    def join(self, timeout: float) -> list[Outcome]:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "clients still sending"
        with self.lock:
            return list(self.outcomes)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.todo.clear()


# ---------------------------------------------------------------------------- accounting


@dataclass
class Tally:
    scenario: str
    mails: int = 0
    acked: int = 0
    refused: int = 0
    gave_up: int = 0
    retried_4xx: int = 0
    cut_after_data: int = 0
    delivered: int = 0
    held: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    window_duplicates: list[str] = field(default_factory=list)  # the documented window
    notices: int = 0
    missing_notices: list[str] = field(default_factory=list)
    bcc_notices_missing: int = 0
    recovered: int = 0  # deliveries the queue took up again after a restart
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.scenario}: mails={self.mails} acked={self.acked} refused={self.refused} "
            f"gave_up={self.gave_up} 4xx_retried={self.retried_4xx} "
            f"cut_after_data={self.cut_after_data} delivered={self.delivered} "
            f"held={self.held} notices={self.notices} lost={len(self.lost)} "
            f"duplicated={len(self.duplicated)} window_dup={len(self.window_duplicates)} "
            f"queue_recovered={self.recovered} "
            f"missing_notices={len(self.missing_notices)} "
            f"bcc_notices_missing={self.bcc_notices_missing} time={self.seconds:.1f}s"
        )


def _holds_in_store(data: Path) -> list[tuple[str, str]]:
    """(hold id, Message-ID) of every hold in the relay's SQLite store."""

    async def read() -> list[tuple[str, str]]:
        store = await open_store(sqlite_url(data / "leakguard.db"))
        try:
            out = []
            for h in await store.list_holds(limit=100_000):
                raw = await store.get_message(h.message_sha256)
                mid = BytesHeaderParser().parsebytes(raw).get("Message-ID", "")
                out.append((h.id, str(mid).strip()))
            return out
        finally:
            await store.close()

    return asyncio.run(read())


def _queue_empty(data: Path) -> bool:
    """Nothing queued or being sent in the relay's store (read while it runs: WAL)."""
    try:
        db = f"file:{data / 'leakguard.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(db, uri=True, timeout=5)) as c:
            (n,) = c.execute(
                "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending')"
            ).fetchone()
    except sqlite3.Error:
        return False
    return int(n) == 0


def reconcile(
    scenario: str,
    outcomes: list[Outcome],
    upstream: Upstream,
    data: Path,
    log: str,
    *,
    wait: float = 30.0,
    started: float,
) -> Tally:
    """Wait for the queue to drain (every acknowledged mail and notice delivered), then
    count lost and duplicated. Call with the relay running; stop it afterwards."""
    tally = Tally(scenario, mails=len(outcomes))
    acked = [o for o in outcomes if o.code == 250]
    tally.acked = len(acked)
    tally.refused = sum(1 for o in outcomes if 500 <= o.code < 600)
    tally.gave_up = sum(1 for o in outcomes if o.code == 0)
    tally.retried_4xx = sum(o.replies_4xx for o in outcomes)
    tally.cut_after_data = sum(o.cut_after_data for o in outcomes)
    held_ids = {o.mail.message_id: o.text.split()[2] for o in acked if " held H-" in f" {o.text}"}

    def deliveries() -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[str]]]:
        mails: Counter[tuple[str, str]] = Counter()
        notices: dict[tuple[str, str], list[str]] = {}  # (notice header, rcpt) -> Message-IDs
        for m in upstream.messages:
            h = BytesHeaderParser().parsebytes(m.data)
            notice = h.get(NOTICE_HEADER)
            mid = str(h.get("Message-ID", "")).strip()
            for r in m.rcpts:
                if notice is not None:
                    notices.setdefault((str(notice).strip(), r.lower()), []).append(mid)
                else:
                    mails[(mid, r.lower())] += 1
        return mails, notices

    def complete(
        mails: Counter[tuple[str, str]], notices: dict[tuple[str, str], list[str]]
    ) -> bool:
        noticed = {k[0].partition("hold=")[2] for k in notices}
        return all(
            o.mail.message_id in held_ids
            or all(mails[(o.mail.message_id, r)] for r in o.mail.rcpts)
            for o in acked
        ) and all(h in noticed for h in held_ids.values())

    end = time.monotonic() + wait
    while time.monotonic() < end and not (complete(*deliveries()) and _queue_empty(data)):
        time.sleep(0.25)
    end = time.monotonic() + wait
    time.sleep(1.5)  # a second copy, if any, would arrive by now
    mails, notices = deliveries()
    holds = _holds_in_store(data)
    hold_mids = Counter(mid for _id, mid in holds)
    hold_by_id = dict(holds)
    cut = {o.mail.message_id for o in outcomes if o.cut_after_data}

    for o in acked:
        mid = o.mail.message_id
        if mid in held_ids:
            if hold_by_id.get(held_ids[mid]) != mid:
                tally.lost.append(f"{mid}: hold {held_ids[mid]} not in the store")
            continue
        missing = [r for r in o.mail.rcpts if not mails[(mid, r)]]
        if missing:
            tally.lost.append(f"{mid}: not delivered to {missing[:3]}")
    tally.held = len(held_ids)
    tally.delivered = len({mid for (mid, _r) in mails})
    for (mid, r), n in sorted(mails.items()):
        if n > 1:
            # the documented window: the client lost a connection after DATA; one copy more
            where = tally.window_duplicates if mid in cut and n == 2 else tally.duplicated
            where.append(f"{mid} to {r} x{n}")
    for mid, n in hold_mids.items():
        if n > 1:
            tally.duplicated.append(f"{mid}: {n} holds")
    for (notice, r), mids in sorted(notices.items()):
        if len(mids) > 1:
            # the same notice (same Message-ID) sent again: the queue re-sent a delivery a
            # kill cut off after the upstream took it (``queue_recovered``); a second notice
            # made anew (another Message-ID) is a real duplicate
            same = len(set(mids)) == 1
            where = tally.window_duplicates if same else tally.duplicated
            where.append(f"notice {notice!r} to {r} x{len(mids)}")
    tally.notices = sum(len(v) for v in notices.values())
    # a Bcc notice per Bcc verdict (queued in the background after the 250: a kill can take
    # it along; counted, not hidden)
    bcc_sent = sum(1 for o in acked if o.mail.kind == "bcc" and "already sent" not in o.text)
    bcc_noticed = {k[0] for k in notices if k[0].startswith("bcc_notice")}
    tally.bcc_notices_missing = bcc_sent - len(bcc_noticed)
    noticed = {k[0].partition("hold=")[2] for k in notices}
    tally.missing_notices = sorted(h for h, _mid in holds if h not in noticed)
    tally.recovered = sum(
        int(m.group(1))
        for m in re.finditer(r'"deliveries": (\d+), "event": "queue_recovered"', log)
    )
    tally.seconds = time.monotonic() - started
    print("\n" + tally.line())
    for d in tally.window_duplicates:
        print(f"  in the documented window: {d}")
    return tally


def assert_clean(t: Tally, *, window_bound: int = 0, bcc_notices_lost: int = 0) -> None:
    """lost = 0, duplicated = 0; duplicates of the documented window at most
    ``window_bound``."""
    assert not t.lost, t.lost[:10]
    assert not t.duplicated, t.duplicated[:10]
    # the window is one more copy per *transaction* (a mail to twelve recipients cut off
    # after DATA is twelve entries, one transaction)
    window_transactions = {d.rsplit(" to ", 1)[0] for d in t.window_duplicates}
    assert len(window_transactions) <= window_bound, t.window_duplicates
    assert not t.missing_notices, f"holds without a notice: {t.missing_notices[:10]}"
    assert 0 <= t.bcc_notices_missing <= bcc_notices_lost, t.bcc_notices_missing
    assert t.gave_up == 0, "a client gave up (no final answer within its retries)"


# ---------------------------------------------------------------------------- scenarios


def start_relay(tmp: Path, sink_port: int) -> Relay:
    return Relay(tmp, sink_port, policy=DEFAULT_POLICY, extra=EXTRA).start()


def test_sigkill_three_times_under_load_with_retrying_clients(tmp_path: Path) -> None:
    """SIGKILL ×3 under 8 retrying clients sending 240 mails (pass, Bcc, hold), restart on
    the same data directory each time."""
    started = time.monotonic()
    mails = [make_mail("kill", i) for i in range(KILL_MAILS)]
    with Sink() as sink:
        relay = start_relay(tmp_path, sink.port)
        with Load(lambda: relay.port, mails, CLIENTS, attempts=80, timeout=20.0) as load:
            kills = 0
            for at in (len(mails) // 6, len(mails) * 2 // 5, len(mails) * 2 // 3):
                while load.done_count() < at and any(t.is_alive() for t in load.threads):
                    time.sleep(0.02)
                relay.kill()
                kills += 1
                time.sleep(0.3)  # clients see refused connections and back off
                relay.start()
            outcomes = load.join(120)
        try:
            tally = reconcile(
                "sigkill x3", outcomes, sink, relay.data, relay.log(), started=started
            )
        finally:
            assert relay.stop() == 0
    assert kills == 3 and tally.acked == len(mails), tally.line()
    assert tally.held and tally.delivered
    # docs/security.md: at most one more copy per transaction a kill cut off after DATA, and
    # per queued delivery a kill cut off after the upstream took it
    assert_clean(
        tally,
        window_bound=tally.cut_after_data + tally.recovered,
        # queued in the background after the 250: the notices of the Bcc mail answered just
        # before a kill may go down with it (docs/security.md: 5-13 in 3 kills measured)
        bcc_notices_lost=kills * CLIENTS,
    )


def test_upstream_outage_under_load(tmp_path: Path) -> None:
    """The upstream is down for ~10 s under load: mail that goes on gets 451 and is retried
    by its client; holds are stored and their notices queued; nothing lost or doubled."""
    started = time.monotonic()
    mails = [make_mail("outage", i) for i in range(120)]
    first = Sink().__enter__()
    port = first.port
    relay = start_relay(tmp_path, port)
    try:
        with Load(lambda: relay.port, mails, 8, attempts=200, timeout=20.0) as load:
            while load.done_count() < 20:
                time.sleep(0.02)
            first.__exit__()  # the upstream goes away ...
            time.sleep(10)
            with Sink(port=port) as second:  # ... and comes back on the same port
                outcomes = load.join(90)
                both = _Both(first, second)
                tally = reconcile(
                    "upstream outage", outcomes, both, relay.data, relay.log(), started=started
                )
    finally:
        assert relay.stop() == 0
    assert tally.retried_4xx > 0, "the outage was not seen by any client"
    assert_clean(tally)


class _Both:
    """Two sinks' deliveries as one (the upstream before and after its outage)."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    @property
    def messages(self) -> list[Received]:
        return [m for s in self.sinks for m in s.messages]


@pytest.fixture
def small_data_dir(tmp_path: Path) -> Iterator[Path]:
    """The relay's data directory on an 8 MB tmpfs (root and mount permission needed)."""
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        pytest.skip("disk-full test: mounting a small tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(data)],
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"disk-full test: cannot mount a tmpfs here: {r.stderr.decode()[:200]}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def _fill(where: Path) -> None:
    """Write until the file system is full, to the last 512 bytes."""
    for name, size in (("filler", 65536), ("filler-small", 512)):
        fd = os.open(where / name, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * size) == size:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)


def test_disk_full_then_freed(tmp_path: Path, small_data_dir: Path) -> None:
    """The data directory (an 8 MB tmpfs) is full while holds arrive: 451, never a 250 for a
    hold that was not stored; after space is freed the retries are held, once each."""
    started = time.monotonic()
    mails = [make_mail("disk", i, ("hold", "hold", "pass")) for i in range(60)]
    with Sink() as sink:
        relay = start_relay(tmp_path, sink.port)
        try:
            # warm up (first decision, store open), then fill the disk
            warm = send_with_retries(lambda: relay.port, make_mail("disk-warm", 0, ("pass",)))
            assert warm.code == 250, warm
            _fill(small_data_dir)
            with Load(lambda: relay.port, mails, 6, attempts=200, timeout=20.0) as load:
                time.sleep(4)
                while_full = load.done_count()
                for f in small_data_dir.glob("filler*"):
                    f.unlink()
                outcomes = load.join(90)
            tally = reconcile(
                "disk full", outcomes, sink, small_data_dir, relay.log(), started=started
            )
        finally:
            assert relay.stop() == 0
    print(f"mails answered while the disk was full: {while_full}")
    assert tally.retried_4xx > 0, "the full disk was not seen by any client"
    assert_clean(tally)


def test_store_write_lock_held_by_another_process(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock (BEGIN IMMEDIATE) for 5 s while clients
    send holds: answers are delayed (or 451), nothing is lost, nothing doubled. The clients
    wait only 2 s for an answer, then send the same mail again while the first try still
    waits for the store: before ``Relay.process`` joined such retries to the transaction in
    flight, this made up to three holds (and notices) of one mail."""
    started = time.monotonic()
    mails = [make_mail("lock", i, ("hold", "hold", "pass", "bcc")) for i in range(60)]
    with Sink() as sink:
        relay = start_relay(tmp_path, sink.port)
        try:
            warm = send_with_retries(lambda: relay.port, make_mail("lock-warm", 0, ("hold",)))
            assert warm.code == 250, warm
            locker = subprocess.Popen(
                [sys.executable, "-c", _LOCKER, str(relay.data / "leakguard.db")],
                stdout=subprocess.PIPE,
            )
            assert locker.stdout is not None
            assert locker.stdout.readline().strip() == b"locked"
            with Load(lambda: relay.port, mails, 8, attempts=100, timeout=2.0) as load:  # impatient
                time.sleep(1)
                during = load.done_count()
                assert locker.wait(15) == 0
                outcomes = load.join(90)
            tally = reconcile(
                "store locked", outcomes, sink, relay.data, relay.log(), started=started
            )
        finally:
            assert relay.stop() == 0
    print(f"mails answered in the lock's first second: {during}")
    assert_clean(tally)


_LOCKER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(5)
c.execute("ROLLBACK")
"""
