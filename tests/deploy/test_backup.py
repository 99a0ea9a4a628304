"""leakguard backup / restore: a running store with holds, into an empty data directory."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import smtplib
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from e2e.harness import Relay
from e2e.sink import Sink

from leakguard.cli import main
from leakguard.holds.model import HoldState
from leakguard.store import migrate, open_store, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).parent / "fixtures"
RISKY = (EXAMPLES / "mixed-organizations-en.eml").read_bytes()
RISKY_RCPTS = ["ken.ito@hotel-sakura.example", "mjones@travel-agency.example"]
SENDER = "emily.clark@city.example.lg.jp"


@pytest.fixture(autouse=True)
def _no_system_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEAKGUARD_CONFIG", raising=False)
    monkeypatch.delenv("LEAKGUARD_STORE_URL", raising=False)
    monkeypatch.setenv("LEAKGUARD_LANG", "en")


def cli(*args: str) -> tuple[int, str]:
    """The real console script in a subprocess (its own event loop, like an admin's shell)."""
    done = subprocess.run(
        [sys.executable, "-m", "leakguard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    return done.returncode, done.stdout + done.stderr


async def _hold_snapshot(db: Path) -> list[tuple[str, str, bytes, list[str]]]:
    store = await open_store(sqlite_url(db))
    try:
        out = []
        for h in await store.list_holds():
            raw = await store.get_message(h.message_sha256)
            steps = [f"{t.from_state}->{t.to_state}" for t in await store.timeline(h.id)]
            out.append((h.id, h.state.value, raw, steps))
        return sorted(out)
    finally:
        await store.close()


_SENT = [0]


def _hold_mail(port: int) -> str:
    # each call is another mail (the same bytes again would be a client's retry: one hold)
    _SENT[0] += 1
    raw = f"X-Test-Seq: {_SENT[0]}\r\n".encode() + RISKY
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        c.mail(SENDER)
        for r in RISKY_RCPTS:
            c.rcpt(r)
        code, text = c.data(raw)
    assert code == 250 and text.startswith(b"2.0.0 held H-"), text
    return text.decode().split()[-1]


def test_backup_running_store_and_restore_into_empty_data_dir(tmp_path: Path) -> None:
    with Sink() as sink:
        live = tmp_path / "live"
        live.mkdir()
        relay = Relay(live, sink.port).start()
        try:
            first = _hold_mail(relay.port)
            second = _hold_mail(relay.port)
            archive = tmp_path / "backups" / "lg.tar.gz"
            # while the service runs and holds its store open
            code, out = cli("backup", "-c", str(relay.config), str(archive))
            assert code == 0, out
            assert "holds 2" in out
            third = _hold_mail(relay.port)  # after the backup: must not be in it
        finally:
            assert relay.stop() == 0
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    original = [h for h in asyncio.run(_hold_snapshot(relay.data / "leakguard.db"))]
    assert {h[0] for h in original} == {first, second, third}

    target = tmp_path / "restored-data"
    code, out = cli("restore", "--data-dir", str(target), str(archive))
    assert code == 0, out
    assert "holds 2" in out
    restored = asyncio.run(_hold_snapshot(target / "leakguard.db"))
    assert restored == [h for h in original if h[0] != third]
    assert all(h[1] == HoldState.HELD.value for h in restored)
    # the web secret came back: links already mailed to senders keep working
    assert (target / "web-secret").read_text() == (relay.data / "web-secret").read_text()
    assert stat.S_IMODE((target / "web-secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "leakguard.db").stat().st_mode) == 0o600
    # the configuration is in the archive and comes out on request
    assert "leakguard.yaml" not in os.listdir(target)
    code, out = cli(
        "restore",
        "--data-dir",
        str(target),
        "--force",
        "--config-to",
        str(tmp_path / "etc"),
        str(archive),
    )
    assert code == 0, out
    saved = yaml.safe_load((tmp_path / "etc" / "config.yaml").read_text())
    assert saved["listeners"][0]["listen"].startswith("127.0.0.1:")
    assert (tmp_path / "etc" / "policy.yaml").read_bytes() == Path(saved["policy"]).read_bytes()

    # and a service started on the restored data serves those holds
    with Sink() as sink:
        (tmp_path / "again").mkdir()
        again = Relay(tmp_path / "again", sink.port)
        data = yaml.safe_load(again.config.read_text())
        data["data_dir"] = str(target)
        again.config.write_text(yaml.safe_dump(data))
        again.data = target
        again.start()
        try:
            code, out = cli("holds", "-c", str(again.config), "show", first)
            assert code == 0, out
            assert first in out
        finally:
            assert again.stop() == 0


def test_restore_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_make_store(data))
    archive = tmp_path / "b.tar.gz"
    assert main(["backup", "--data-dir", str(data), str(archive)]) == 0
    code, out = cli("restore", "--data-dir", str(data), str(archive))
    assert code == 1
    assert "already holds data" in out and "--force" in out
    code, out = cli("restore", "--data-dir", str(data), "--force", str(archive))
    assert code == 0, out


def test_restore_messages_in_japanese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    asyncio.run(_make_store(data))
    archive = tmp_path / "b.tar.gz"
    assert main(["backup", "--data-dir", str(data), str(archive)]) == 0
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    code, out = cli("restore", "--data-dir", str(data), str(archive))
    assert code == 1 and "復元先に既にデータがあります" in out


def test_backup_needs_a_target(tmp_path: Path) -> None:
    code, out = cli("backup", str(tmp_path / "x.tar.gz"))
    assert code == 1 and "LEAKGUARD_CONFIG" in out
    code, out = cli("backup", "--data-dir", str(tmp_path / "nothing"), str(tmp_path / "x.tar.gz"))
    assert code == 1 and "no store to back up" in out
    assert not (tmp_path / "x.tar.gz").exists()
    assert not (tmp_path / "nothing").exists()  # nothing created


async def _make_store(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    db = data / "leakguard.db"
    shutil.copyfile(FIXTURES / "store-df55b47.sqlite", db)
    (data / "web-secret").write_text("s3cret\n")


def _rewrite(archive: Path, out: Path, edit: dict[str, bytes | None]) -> None:
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            data = f.read() if f else b""
            if m.name in edit:
                new = edit[m.name]
                if new is None:
                    continue
                data = new
            ti = tarfile.TarInfo(m.name)
            ti.size = len(data)
            dst.addfile(ti, io.BytesIO(data))


def test_tampered_or_foreign_archives_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_make_store(data))
    archive = tmp_path / "b.tar.gz"
    assert main(["backup", "--data-dir", str(data), str(archive)]) == 0
    target = tmp_path / "target"

    bad = tmp_path / "tampered.tar.gz"
    _rewrite(archive, bad, {"data/web-secret": b"someone else's\n"})
    code, out = cli("restore", "--data-dir", str(target), str(bad))
    assert code == 1 and "checksum mismatch: data/web-secret" in out
    assert not (target / "leakguard.db").exists()

    missing = tmp_path / "missing.tar.gz"
    _rewrite(archive, missing, {"store/leakguard.db": None})
    code, out = cli("restore", "--data-dir", str(target), str(missing))
    assert code == 1 and "store/leakguard.db missing" in out

    with tarfile.open(archive) as t:
        f = t.extractfile("manifest.json")
        assert f is not None
        manifest = json.loads(f.read())
    manifest["files"]["../../etc/evil"] = {"sha256": "0" * 64, "size": 1}
    escape = tmp_path / "escape.tar.gz"
    _rewrite(archive, escape, {"manifest.json": json.dumps(manifest).encode()})
    code, out = cli("restore", "--data-dir", str(target), str(escape))
    assert code == 1 and "not a leakguard backup" in out

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    code, out = cli("restore", "--data-dir", str(target), str(junk))
    assert code == 1 and "not a leakguard backup" in out
    assert not (target / "leakguard.db").exists()


def test_backup_of_previous_release_is_upgraded_on_restore(tmp_path: Path) -> None:
    data = tmp_path / "old"
    asyncio.run(_make_store(data))  # a df55b47 store, never opened by this release
    archive = tmp_path / "old.tar.gz"
    assert main(["backup", "--data-dir", str(data), str(archive)]) == 0
    with tarfile.open(archive) as t:
        f = t.extractfile("manifest.json")
        assert f is not None
        assert json.loads(f.read())["revision"] == migrate.BASELINE
    code, out = cli("restore", "--data-dir", str(tmp_path / "new"), str(archive))
    assert code == 0, out
    assert f"{migrate.BASELINE} → {migrate.head()}" in out
    held = asyncio.run(_hold_snapshot(tmp_path / "new" / "leakguard.db"))
    assert [h[0] for h in held] == ["H-LEGACY01", "H-LEGACY02"]


@pytest.mark.postgres
def test_postgres_backup_and_restore(tmp_path: Path, pg_db: Callable[[], str]) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed (package postgresql-client)")
    source, target = pg_db(), pg_db()
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            source,
            "-f",
            str(FIXTURES / "store-df55b47.pg.sql"),
        ],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "leakguard.yaml"
    config.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data"), "store": {"url": source}}), "utf-8"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "web-secret").write_text("pg-secret\n")
    archive = tmp_path / "pg.tar.gz"
    code, out = cli("backup", "-c", str(config), str(archive))
    assert code == 0, out
    assert "postgresql" in out and "holds 2" in out

    restored_cfg = tmp_path / "restored.yaml"
    restored_cfg.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data2"), "store": {"url": target}}), "utf-8"
    )
    code, out = cli("restore", "-c", str(restored_cfg), str(archive))
    assert code == 0, out
    assert (tmp_path / "data2" / "web-secret").read_text() == "pg-secret\n"

    async def check() -> None:
        store = await open_store(target)
        try:
            held = await store.get_hold("H-LEGACY01")
            assert held is not None and held.state is HoldState.HELD
            assert "お見積書".encode() in await store.get_message(held.message_sha256)
            assert await store.queue_depth() == 2
        finally:
            await store.close()

    asyncio.run(check())
    # a second restore over the now populated database needs --force
    code, out = cli("restore", "-c", str(restored_cfg), str(archive))
    assert code == 1 and "--force" in out
    code, out = cli("restore", "-c", str(restored_cfg), "--force", str(archive))
    assert code == 0, out
