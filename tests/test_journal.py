"""The officer's records (issue 9): decision journal, retained mail and incidents in the
store (SQLite and the local PostgreSQL), sealing, and the relay writing them over SMTP."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine
from test_store import PG_ADMIN_DSN, store  # noqa: F401  (the sqlite + postgres fixture)

from leakguard.config import ServiceConfig
from leakguard.service import Service, retention_key
from leakguard.store import SqlStore
from leakguard.store.journal import (
    DecisionEntry,
    IncidentRecord,
    Retained,
    new_decision_id,
    new_incident_id,
)
from leakguard.store.sealing import Sealer, SealError, decode_key, encode_key, new_key

NOW = datetime.now(UTC)


def entry(i: int, *, at: datetime | None = None, **kw: object) -> DecisionEntry:
    fields: dict[str, object] = dict(
        id=f"M-TEST{i:08d}",
        at=at or NOW - timedelta(minutes=i),
        sender="alice@city.example.lg.jp",
        action="pass",
        outcome="sent",
        rcpts=("x@alpha.example",),
        external_rcpts=1,
        subject="見積",
        message_id=f"<{i}@city.example.lg.jp>",
        rules=(),
        summary={"facts": {"visible_external_recipients": 1}},
        department="総務課",
        sha256="0" * 64,
        size=10,
    )
    fields.update(kw)
    return DecisionEntry(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- sealing


def test_seal_roundtrip_binds_decision_and_key() -> None:
    key = new_key()
    s = Sealer(key)
    blob = s.seal(b"mail bytes", aad="M-1")
    assert b"mail bytes" not in blob
    assert s.open(blob, aad="M-1") == b"mail bytes"
    with pytest.raises(SealError):
        s.open(blob, aad="M-2")  # copied onto another decision
    with pytest.raises(SealError):
        Sealer(new_key()).open(blob, aad="M-1")
    with pytest.raises(SealError):
        s.open(blob[:-1] + bytes([blob[-1] ^ 1]), aad="M-1")
    assert decode_key(encode_key(key)) == key
    assert decode_key(key.hex()) == key
    with pytest.raises(ValueError):
        decode_key("short")
    assert "key" in repr(s) and encode_key(key) not in repr(s)


def test_retention_key_is_kept_private_in_the_data_dir(tmp_path: Path) -> None:
    cfg = ServiceConfig.model_validate({"data_dir": str(tmp_path)})
    assert retention_key(cfg, create=False) is None
    k = retention_key(cfg)
    assert k is not None and len(k) == 32
    assert retention_key(cfg) == k
    assert (tmp_path / "retention-key").stat().st_mode & 0o077 == 0


# ---------------------------------------------------------------------- the store


async def test_journal_record_find_and_page(store: SqlStore) -> None:  # noqa: F811
    j = store.journal
    kept = Retained(
        mode="encrypted",
        sha256="0" * 64,
        size=10,
        expires_at=NOW + timedelta(days=30),
        sealed=b"LG1sealed",
    )
    await j.record([(entry(i), kept if i % 2 else None) for i in range(25)])
    got = await j.get("M-TEST00000003")
    assert got is not None and got.department == "総務課" and got.rcpts == ("x@alpha.example",)
    assert got.summary["facts"] == {"visible_external_recipients": 1}
    assert (await j.retained("M-TEST00000003")) is not None
    assert (await j.retained("M-TEST00000004")) is None
    many = await j.retained_many([f"M-TEST{i:08d}" for i in range(25)] + ["M-NONE"])
    assert sorted(many) == [f"M-TEST{i:08d}" for i in range(1, 25, 2)]
    newest = await j.find(sender="ALICE@city.example.lg.jp", limit=3)
    assert [d.id for d in newest] == ["M-TEST00000000", "M-TEST00000001", "M-TEST00000002"]
    assert [d.id for d in await j.find(message_id="<7@city.example.lg.jp>")] == ["M-TEST00000007"]
    seen = []
    async for batch in j.iter_range(NOW - timedelta(hours=1), NOW + timedelta(seconds=1), batch=4):
        assert len(batch) <= 4
        seen += [d.id for d in batch]
    assert seen == [f"M-TEST{i:08d}" for i in reversed(range(25))]
    assert await j.count(NOW - timedelta(minutes=9, seconds=30)) == 10


async def test_prune_deletes_expired_mail_and_old_rows_but_keeps_incidents(
    store: SqlStore,  # noqa: F811
) -> None:
    j = store.journal
    old = NOW - timedelta(days=500)

    def kept(expires: datetime) -> Retained:
        return Retained(mode="encrypted", sha256="1" * 64, size=3, expires_at=expires, sealed=b"x")

    await j.record(
        [
            (entry(1), kept(NOW - timedelta(seconds=1))),  # retention over
            (entry(2), kept(NOW + timedelta(days=1))),  # still kept
            (entry(3, at=old), None),  # journal too old
            (entry(4, at=old), None),  # too old, but an incident refers to it
        ]
    )
    await j.create_incident(
        IncidentRecord(
            id="I-1",
            kind="report",
            state="open",
            created_at=NOW,
            reported_by="a@b",
            via="cli",
            decision_id="M-TEST00000004",
        )
    )
    assert await j.prune(NOW, journal_before=NOW - timedelta(days=400)) == (1, 1)
    assert await j.retained("M-TEST00000001") is None
    assert await j.retained("M-TEST00000002") is not None
    assert await j.get("M-TEST00000003") is None
    assert await j.get("M-TEST00000004") is not None


async def test_incident_timeline_followups_and_state(store: SqlStore) -> None:  # noqa: F811
    j = store.journal
    iid = new_incident_id()
    await j.record([(entry(1, outcome="sent"), None)])
    await j.create_incident(
        IncidentRecord(
            id=iid,
            kind="report",
            state="open",
            created_at=NOW,
            reported_by="alice@city",
            via="web",
            decision_id="M-TEST00000001",
            sender="alice@city",
            rules=("r1",),
        ),
        detail="wrong company",
    )
    assert (await j.find_incident(decision_id="M-TEST00000001")) is not None
    assert (await j.find_incident(decision_id="M-NOPE")) is None
    await j.add_incident_event(iid, actor="leakguard", kind="notified", detail="officer@city")
    inc = await j.set_followup(iid, "apology", done=True, actor="officer@city")
    assert inc is not None and inc.followups["apology"]["by"] == "officer@city"
    with pytest.raises(ValueError):
        await j.set_followup(iid, "dance", done=True, actor="x")
    inc = await j.set_followup(iid, "apology", done=False, actor="officer@city")
    assert inc is not None and "apology" not in inc.followups
    assert (await j.set_incident_state(iid, "closed", actor="officer@city")) is not None
    assert (await j.set_incident_state("I-NOPE", "closed", actor="x")) is None
    kinds = [e.kind for e in await j.incident_events(iid)]
    assert kinds == ["reported", "notified", "followup", "followup_undone", "closed"]
    assert [i.id for i in await j.list_incidents(state="closed")] == [iid]
    assert await j.list_incidents(state="open") == []


def test_ids_are_distinct_and_shaped() -> None:
    ids = {new_decision_id() for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("M-") and len(i) == 14 for i in ids)
    assert new_incident_id().startswith("I-")


# ---------------------------------------------------------------------- the relay

ALICE = "alice@city.example.lg.jp"
X = "x@alpha.example"
Y = "y@beta.example"


def mail(tag: str, action: str, extra: str = "") -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {X}, {Y}\r\nSubject: {tag} マイナンバー 1234 5678 9018\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0900\r\n"
        f"X-Test-Action: {action}\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    ).encode()


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
                "holds": {"language": "en"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield service
        finally:
            await service.stop(timeout=5)


def _send(port: int, raw: bytes, *, quit: bool = False) -> tuple[int, bytes]:
    """One transaction. Without ``quit`` the connection is dropped right after the reply,
    as when it broke before the client read it: the relay cannot tell, so a repeat is a
    retry. With ``quit`` the client shows it read the reply (QUIT after it)."""
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        c.ehlo("client.test")
        c.mail(ALICE)
        c.rcpt(X)
        c.rcpt(Y)
        reply = c.data(raw)
        if quit:
            c.quit()
        return reply
    finally:
        c.close()


@pytest.mark.e2e
async def test_relay_journals_every_decision_and_seals_what_was_sent(svc: Service) -> None:
    port = svc.smtp_ports["plain-0"]
    for tag, action in (("p", "pass"), ("b", "bcc"), ("h", "hold"), ("r", "reject")):
        await asyncio.to_thread(_send, port, mail(tag, action))
    assert svc.relay is not None and svc.relay.journal is not None and svc.store is not None
    await svc.relay.journal.flush()
    rows = {d.message_id: d for d in await svc.store.journal.find(sender=ALICE)}
    outcome = {k.strip("<>").split("@")[0]: d.outcome for k, d in rows.items()}
    assert outcome == {"p": "sent", "b": "sent_bcc", "h": "held", "r": "rejected"}
    held = rows["<h@city.example.lg.jp>"]
    assert held.hold_id and held.hold_id.startswith("H-")
    passed = rows["<p@city.example.lg.jp>"]
    assert passed.rcpts == (X, Y) and passed.external_rcpts == 2
    # the subject is kept redacted: never the full identifier
    assert "1234 5678 9018" not in passed.subject and passed.subject.startswith("p ")
    kept = await svc.store.journal.retained(passed.id)
    assert kept is not None and kept.mode == "encrypted" and kept.sealed is not None
    key = retention_key(svc.config, create=False)
    assert key is not None
    opened = Sealer(key).open(kept.sealed, aad=passed.id)
    assert b"X-Test-Action: pass" in opened and b"1234 5678 9018" in opened
    assert len(opened) == kept.size == passed.size


@pytest.mark.e2e
async def test_hashed_mode_keeps_no_bytes(tmp_path: Path) -> None:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
                "retention": {"mode": "hashed"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "x.yaml", engine=FakeEngine())
        await service.start()
        try:
            await asyncio.to_thread(_send, service.smtp_ports["plain-0"], mail("q", "pass"))
            assert service.relay is not None and service.relay.journal is not None
            await service.relay.journal.flush()
            assert service.store is not None
            (row,) = await service.store.journal.find(sender=ALICE)
            kept = await service.store.journal.retained(row.id)
            assert kept is not None and kept.mode == "hashed" and kept.sealed is None
            assert kept.sha256 == row.sha256 and len(row.sha256) == 64
            assert not (tmp_path / "data" / "retention-key").exists()
        finally:
            await service.stop(timeout=5)


def test_report_links_are_signed_scoped_and_expire() -> None:
    from leakguard.officer.links import ReportLinks, ReportRef

    links = ReportLinks("s3cret", base_url="https://guard.example/", max_age_seconds=60)
    ref = ReportRef(actor="alice@city.example.lg.jp", decision_id="M-ABC")
    url = links.url(ref)
    assert url.startswith("https://guard.example/report/")
    signed = url.rsplit("/", 1)[1]
    assert links.verify(signed) == ref
    assert links.verify(signed[:-2] + ("A" if signed[-2] != "A" else "B") + signed[-1]) is None
    other = ReportLinks("other", base_url="https://guard.example", max_age_seconds=60)
    assert other.verify(signed) is None
    expired = ReportLinks("s3cret", base_url="https://guard.example", max_age_seconds=-1)
    assert expired.verify(signed) is None
    assert links.verify("x" * 700) is None
    assert links.verify(links.sign(ReportRef(actor="a@b"))) is None  # names no mail


@pytest.mark.e2e
async def test_service_deletes_expired_retained_mail(svc: Service) -> None:
    """The service prunes at start and hourly; a prune deletes what retention.days ended."""
    assert svc.relay is not None and svc.relay.journal is not None and svc.store is not None
    await asyncio.to_thread(_send, svc.smtp_ports["plain-0"], mail("old", "pass"))
    await svc.relay.journal.flush()
    (row,) = await svc.store.journal.find(sender=ALICE)
    assert await svc.store.journal.retained(row.id) is not None
    writer = svc.relay.journal
    writer.settings = dataclasses.replace(writer.settings, retain_seconds=-1)
    # a second mail, already past retention when written; the first is still within it
    await asyncio.to_thread(_send, svc.smtp_ports["plain-0"], mail("old2", "pass"))
    await writer.flush()
    assert await writer.prune() == (1, 0)
    assert await svc.store.journal.retained(row.id) is not None
    assert len(await svc.store.journal.find(sender=ALICE)) == 2  # the journal rows stay


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL for a Service: SQLite in the data directory, or a fresh PostgreSQL db."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'leakguard.db'}"
        return
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:  # pragma: no cover - environment
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.e2e
async def test_a_retry_of_sent_mail_is_not_sent_twice(tmp_path: Path, store_url: str) -> None:
    """Issue 12: the connection broke after the upstream took the mail; the client sends the
    same transaction again. It is answered 250 and not delivered a second time, from the
    relay's memory and, on another relay sharing a PostgreSQL store, from the journal."""
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "store": {"url": store_url},
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "x.yaml", engine=FakeEngine())
        await service.start()
        try:
            port = service.smtp_ports["plain-0"]
            raw = mail("once", "pass")
            first = await asyncio.to_thread(_send, port, raw)
            again = await asyncio.to_thread(_send, port, raw)
            assert first[0] == again[0] == 250
            assert b"already sent" in again[1] and b"not sent again" in again[1]
            # a mail without Message-ID and Date gets new ones on each try: still one copy
            bare = raw.replace(b"Message-ID: <once@city.example.lg.jp>\r\n", b"").replace(
                b"Date: Mon, 30 Nov 2026 09:00:00 +0900\r\n", b""
            )
            assert (await asyncio.to_thread(_send, port, bare))[0] == 250
            assert b"already sent" in (await asyncio.to_thread(_send, port, bare))[1]
            # another relay sharing the PostgreSQL store (here: this one, forgetful) knows
            # from the journal; an SQLite store has one relay, whose memory is enough
            assert service.relay is not None and service.relay.journal is not None
            await service.relay.journal.flush()
            if store_url.startswith("postgresql"):
                service.relay._sent_recently.clear()
                assert b"already sent" in (await asyncio.to_thread(_send, port, raw))[1]

            # other recipients, or other bytes, are another mail
            def send_to_one() -> tuple[int, bytes]:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                    c.ehlo("client.test")
                    c.mail(ALICE)
                    c.rcpt(X)
                    return c.data(raw)

            assert b"already sent" not in (await asyncio.to_thread(send_to_one))[1]
            other = raw.replace(b"body", b"body 2")
            assert b"already sent" not in (await asyncio.to_thread(_send, port, other))[1]
            await asyncio.sleep(0.2)
            got = sink.messages
            subjects = [m.data.split(b"Subject: ", 1)[1][:6] for m in got]
            assert len(got) == 4, subjects  # once, bare, once to one, other
        finally:
            await service.stop(timeout=5)


async def test_the_same_mail_sent_again_after_the_client_read_the_reply_is_sent(
    tmp_path: Path, store_url: str
) -> None:
    """An in-house system sending the same alert again, byte for byte, or twenty
    connections sending identical mail at once (smtp-source -F): each client went on after
    its 250 (QUIT), so it read it, and each transaction is new mail, delivered. Only a
    transaction whose connection ended before any further command is open to retry
    recognition, in memory and on its journal row (``abandoned``) for other relays."""
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "store": {"url": store_url},
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "x.yaml", engine=FakeEngine())
        await service.start()
        try:
            port = service.smtp_ports["plain-0"]
            raw = mail("alert", "pass")
            assert (await asyncio.to_thread(_send, port, raw, quit=True))[0] == 250
            again = await asyncio.to_thread(_send, port, raw, quit=True)
            assert again[0] == 250 and b"already sent" not in again[1]
            # at once, from 8 connections
            together = await asyncio.gather(
                *(asyncio.to_thread(_send, port, raw, quit=True) for _ in range(8))
            )
            assert all(code == 250 and b"already sent" not in t for code, t in together)
            assert service.relay is not None and service.relay.journal is not None
            await service.relay.journal.flush()
            rows = await service.store.journal.find(sender=ALICE, limit=20)  # type: ignore[union-attr]
            assert len(rows) == 10 and not any(r.abandoned for r in rows)
            # a forgetful relay (another node, a sibling worker) asks the journal: rows of
            # clients that read their answer are not retries there either
            service.relay._sent_recently.clear()
            service.relay.settings = dataclasses.replace(service.relay.settings, shared_store=True)
            cut = await asyncio.to_thread(_send, port, raw)  # read, then the line drops
            assert b"already sent" not in cut[1]
            await asyncio.sleep(0.2)
            assert len(sink.messages) == 11
            # that last one left without a further command: its repeat is a retry, known
            # from memory and, once its row is marked, from the journal
            assert b"already sent" in (await asyncio.to_thread(_send, port, raw))[1]
            await service.relay.journal.flush()
            service.relay._sent_recently.clear()
            assert b"already sent" in (await asyncio.to_thread(_send, port, raw))[1]
            rows = await service.store.journal.find(sender=ALICE, limit=20)  # type: ignore[union-attr]
            assert sum(r.abandoned for r in rows) == 1
            await asyncio.sleep(0.2)
            assert len(sink.messages) == 11
        finally:
            await service.stop(timeout=5)


@pytest.mark.e2e
async def test_a_retry_landing_on_a_sibling_worker_is_not_sent_twice(tmp_path: Path) -> None:
    """``serve --workers 2`` with SQLite: the retry may reach the other worker, whose memory
    never saw the mail; with ``workers > 1`` the journal is asked, as for PostgreSQL."""
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
            }
        )
        from leakguard.relay.sent_filter import SentFilter

        # the filter the parent shares between the workers: it spares the journal lookup
        # for mail no worker sent on, and lets through the lookup for one that was
        shared = SentFilter(600, tmp_path / "sent-filter.lock", slots=1 << 16)
        service = Service(
            config=cfg,
            policy_path=tmp_path / "x.yaml",
            engine=FakeEngine(),
            workers=2,
            sent_filter=shared,
        )
        await service.start()
        try:
            assert service.relay is not None and service.relay.journal is not None
            assert service.relay.settings.shared_store
            assert service.store is not None
            lookups = 0
            find = service.store.journal.find

            async def counting(**kw: Any) -> Any:
                nonlocal lookups
                lookups += 1
                return await find(**kw)

            service.store.journal.find = counting  # type: ignore[method-assign]
            port = service.smtp_ports["plain-0"]
            raw = mail("sibling", "pass")
            assert (await asyncio.to_thread(_send, port, raw))[0] == 250
            assert lookups == 0  # no worker had sent it: the journal was not asked
            await service.relay.journal.flush()
            service.relay._sent_recently.clear()  # as if the retry reached the sibling
            code, text = await asyncio.to_thread(_send, port, raw)
            assert code == 250 and b"already sent" in text
            assert lookups == 1
            await asyncio.sleep(0.2)
            assert len(sink.messages) == 1
        finally:
            await service.stop(timeout=5)


@pytest.mark.e2e
async def test_stop_does_not_wait_for_the_hourly_prune(tmp_path: Path) -> None:
    """The pruning task sleeps an hour between runs; stopping ends it at once (it used to
    cost every stop five seconds)."""
    cfg = ServiceConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
            "upstream": {"host": "127.0.0.1", "port": 9, "tls": "none"},
            "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
        }
    )
    service = Service(config=cfg, policy_path=tmp_path / "x.yaml", engine=FakeEngine())
    await service.start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await service.stop(timeout=5)
    assert loop.time() - t0 < 2.5
