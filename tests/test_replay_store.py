"""``leakguard replay --since`` (issue 9): what the relay decided in a period, re-decided
from the retained mail in the store, compared with the verdicts the journal recorded."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_replay import EX, new_policy, replay

from leakguard.config import ServiceConfig
from leakguard.service import retention_key
from leakguard.store import open_store, sqlite_url
from leakguard.store.journal import DecisionEntry, Retained
from leakguard.store.sealing import Sealer

NOW = datetime.now(UTC)


async def seed(data: Path) -> None:
    cfg = ServiceConfig.model_validate({"data_dir": str(data)})
    data.mkdir(parents=True)
    key = retention_key(cfg)
    assert key is not None
    sealer = Sealer(key)
    store = await open_store(sqlite_url(data / "leakguard.db"))

    def row(i: str, name: str, action: str, rules: tuple[str, ...], at: datetime) -> DecisionEntry:
        return DecisionEntry(
            id=i, at=at, sender="emily.clark@city.example.lg.jp", action=action,
            outcome="held" if action == "hold" else "sent_bcc", rules=rules, subject=name,
        )  # fmt: skip

    def sealed(i: str, name: str) -> Retained:
        raw = (EX / name).read_bytes()
        return Retained(
            mode="encrypted", sha256="0" * 64, size=len(raw),
            expires_at=NOW + timedelta(days=30), sealed=sealer.seal(raw, aad=i),
        )  # fmt: skip

    mixed, bulk = "mixed-organizations-en.eml", "bulk-to-12-companies-ja.eml"
    hour = NOW - timedelta(hours=1)
    try:
        await store.journal.record(
            [
                # held by mixed-organizations; the new policy only audits that rule
                (row("M-1", mixed, "hold", ("mixed-organizations",), hour), sealed("M-1", mixed)),
                # moved to Bcc, and still would be
                (row("M-2", bulk, "bcc", ("bulk-external",), hour), sealed("M-2", bulk)),
                # only its hash was kept: reported, not replayed
                (
                    row("M-3", bulk, "bcc", ("bulk-external",), hour),
                    Retained(mode="hashed", sha256="1" * 64, size=1, expires_at=NOW),
                ),
                # outside the period
                (
                    row("M-4", mixed, "hold", ("mixed-organizations",), NOW - timedelta(days=9)),
                    sealed("M-4", mixed),
                ),
            ]
        )
    finally:
        await store.close()


def test_replay_from_the_store_diffs_against_the_recorded_verdicts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(seed(data))
    policy = new_policy(tmp_path)
    p = replay(
        "--policy", str(policy), "--since", "2d", "--data-dir", str(data), "-j", "1", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["totals"]["mails"] == 3
    assert rep["totals"]["decided"] == 2
    assert rep["totals"]["errors"] == 1
    assert rep["totals"]["changed"] == 1
    assert rep["transitions"] == {"hold->pass": 1}
    assert "only its hash was kept" in json.dumps(rep["errors"])
    # a store without the key: every mail is an error, none is read
    (data / "retention-key").unlink()
    p = replay("--policy", str(policy), "--since", "2d", "--data-dir", str(data), "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["totals"]["decided"] == 0 and rep["totals"]["errors"] == 3


def test_replay_needs_a_source_or_a_period(tmp_path: Path) -> None:
    p = replay("--policy", str(new_policy(tmp_path)))
    assert p.returncode == 2 and "--since" in p.stderr
    p = replay("--policy", str(new_policy(tmp_path)), "--since", "2d", "--data-dir",
               str(tmp_path / "nothing"))  # fmt: skip
    assert p.returncode == 2 and "Nothing was created" in p.stderr


def test_an_unchanged_policy_changes_nothing(tmp_path: Path) -> None:
    """The journal keeps the rules in policy order; replaying the same policy over a mail
    that matched several rules reports no change."""
    import email.policy
    from email.parser import BytesParser

    from test_replay import POLICY

    data = tmp_path / "data"
    name = "personal-data-body-ja.eml"
    raw = (EX / name).read_bytes()
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    rcpts = tuple(a.addr_spec for h in ("To", "Cc") if msg.get(h) for a in msg[h].addresses)
    rules = (  # as the relay recorded them: policy order, not sorted
        "forwarded-third-party", "similar-to-colleague", "personal-my-number",
        "personal-identifiers", "unmasked-personal-form", "personal-birth-date",
    )  # fmt: skip
    assert list(rules) != sorted(rules)

    async def go() -> None:
        cfg = ServiceConfig.model_validate({"data_dir": str(data)})
        data.mkdir(parents=True)
        key = retention_key(cfg)
        assert key is not None
        store = await open_store(sqlite_url(data / "leakguard.db"))
        entry = DecisionEntry(
            id="M-9", at=NOW - timedelta(hours=1), sender="kazuya.sato@city.example.lg.jp",
            action="hold", outcome="held", rules=rules, subject=name, rcpts=rcpts,
        )  # fmt: skip
        kept = Retained(
            mode="encrypted", sha256="0" * 64, size=len(raw),
            expires_at=NOW + timedelta(days=30), sealed=Sealer(key).seal(raw, aad="M-9"),
        )  # fmt: skip
        try:
            await store.journal.record([(entry, kept)])
        finally:
            await store.close()

    asyncio.run(go())
    p = replay(
        "--policy", str(POLICY), "--baseline", str(POLICY), "--since", "2d",
        "--data-dir", str(data), "-j", "1", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["totals"]["decided"] == 1 and rep["totals"]["errors"] == 0
    assert rep["totals"]["changed"] == 0, rep
