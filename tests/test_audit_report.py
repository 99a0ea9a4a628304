"""The automatic audit-first rollout report: due after ``incidents.audit_report_after``
from the rule's first hit, mailed once to the officers (ja + en) through the delivery
queue, remembered in leakguard_meta across restarts and relays (SQLite + PostgreSQL)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine
from stats_seed import AUDIT, seed
from test_store import store  # noqa: F401  (the sqlite + postgres fixture)

from leakguard.config import ServiceConfig
from leakguard.officer.audit_report import AuditReporter, audit_reporter
from leakguard.service import Service
from leakguard.store import SqlStore
from leakguard.store.journal import DecisionEntry

OFFICERS = ("officer@city.example.lg.jp", "deputy@city.example.lg.jp")
DAY = 86400


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    warning = info


def reporter(store: SqlStore, **kw: Any) -> AuditReporter:  # noqa: F811
    args: dict[str, Any] = dict(
        officers=OFFICERS, after_seconds=14 * DAY, from_addr="leakguard@city.example.lg.jp"
    )
    args.update(kw)
    return AuditReporter(store, **args)


async def notices(store: SqlStore) -> list[EmailMessage]:  # noqa: F811
    out = []
    for d in await store.list_deliveries():
        if d.kind == "notice":
            raw = await store.get_message(d.message_sha256)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage) and tuple(d.rcpts) == OFFICERS
            out.append(msg)
    return out


async def test_sent_once_to_the_officers(store: SqlStore) -> None:  # noqa: F811
    await seed(store)  # new-rule: first hit 40 days ago
    log = Log()
    r = reporter(store, log=log)
    assert await r.run_once() == [AUDIT]
    mails = await notices(store)
    assert len(mails) == 1
    m = mails[0]
    assert m["To"] == ", ".join(OFFICERS) and m["Auto-Submitted"] == "auto-generated"
    assert "監査ルール new-rule" in m["Subject"] and "Audit rule report" in m["Subject"]
    body = m.get_content()
    assert "監査モードのルール new-rule の報告" in body and "Audit-mode rule new-rule" in body
    assert "mails it matched: 7" in body and "held by another rule, then released" in body
    assert "reported as a mistake afterwards: 1" in body
    assert "1234-5678-9012" not in body and "****-****-9012" in body
    assert log.events[0][0] == "audit_report_sent" and log.events[0][1]["hits"] == 7
    # once: again, after a restart (a new reporter), from another relay at the same time
    assert await r.run_once() == []
    assert await reporter(store).run_once() == []
    both = await asyncio.gather(reporter(store).run_once(), reporter(store).run_once())
    assert both == [[], []]
    assert len(await notices(store)) == 1


async def test_two_relays_racing_send_one(store: SqlStore) -> None:  # noqa: F811
    await seed(store)
    results = await asyncio.gather(*(reporter(store).run_once() for _ in range(4)))
    assert sorted(map(len, results)) == [0, 0, 0, 1]
    assert len(await notices(store)) == 1


async def test_not_before_it_is_due(store: SqlStore) -> None:  # noqa: F811
    now = datetime.now(UTC)
    entry = DecisionEntry(
        id="M-RECENT000001",
        at=now - timedelta(days=13),
        sender="alice@city.example.lg.jp",
        action="pass",
        outcome="sent",
        audit_rules=("fresh-rule",),
    )
    await store.journal.record([(entry, None)])
    assert await reporter(store).run_once() == []
    # 14 days after the first hit it is due
    later = reporter(store, now=lambda: now + timedelta(days=1, minutes=1))
    assert await later.run_once() == ["fresh-rule"]
    # nobody to tell, or the rule no longer in audit mode: nothing
    await seed(store)
    assert await reporter(store, officers=()).run_once() == []
    assert await reporter(store, audit_rules=lambda: {"other"}).run_once() == []
    assert await reporter(store, audit_rules=lambda: {AUDIT}).run_once() == [AUDIT]


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[tuple[Service, Sink]]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [{"kind": "plain", "listen": "127.0.0.1:0"}],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0", "secret": "e2e-secret"},
                "holds": {"language": "en", "notice_from": "leakguard@city.example.lg.jp"},
                "incidents": {"officers": list(OFFICERS), "audit_report_after": "10d"},
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield service, sink
        finally:
            await service.stop(timeout=5)


@pytest.mark.e2e
async def test_service_mails_the_report_over_smtp(svc: tuple[Service, Sink]) -> None:
    service, sink = svc
    assert service.store is not None
    assert "audit-report" in {t.get_name() for t in service._tasks}
    await seed(service.store)
    r = audit_reporter(service.config, service.store, service.engine, Log())
    assert r.after == timedelta(days=10) and r.officers == OFFICERS
    assert await r.run_once() == [AUDIT]
    got = await asyncio.to_thread(sink.handler.wait_for, 1)
    assert len(got) == 1 and sorted(got[0].rcpts) == sorted(OFFICERS)
    assert b"X-Leakguard-Notice: audit_report" in got[0].data
    assert (
        await audit_reporter(service.config, service.store, service.engine, Log()).run_once() == []
    )
