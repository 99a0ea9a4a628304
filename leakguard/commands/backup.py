"""``leakguard backup`` / ``leakguard restore``: the store, the web secret and the config.

A backup is one ``.tar.gz`` archive (mode 0600: it holds personal data and secrets):

- ``store/leakguard.db``: a consistent snapshot of a SQLite store taken with SQLite's
  online backup API while the service runs (WAL readers never block), checked with
  ``PRAGMA integrity_check``; or ``store/leakguard.pgdump``: ``pg_dump --format=custom``
  of a PostgreSQL store (``pg_dump`` must be installed; it also runs while serving);
- ``data/web-secret`` and ``data/users.txt`` when they exist (the secret signs every link
  already sent: without it, links in notices stop working);
- ``config/``: the configuration, policy and organisation files, with their original paths
  in ``manifest.json``;
- ``manifest.json``: format, leakguard version, schema revision, counts, SHA-256 of every
  member (checked before anything is restored).

``restore`` writes into the data directory (and store) the configuration names, refuses to
overwrite an existing store or secret without ``--force``, and opens the restored store so
that a backup of an older release is upgraded to this one's schema. Stop the service first.
Configuration files are written only with ``--config-to DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from leakguard import __version__
from leakguard.i18n import lang_from_env

FORMAT = "leakguard-backup"
FORMAT_VERSION = 1
CONFIG_ENV = "LEAKGUARD_CONFIG"
SYSTEM_CONFIG = Path("/etc/leakguard/leakguard.yaml")
_MAX_MEMBER = 64 * 1024**3  # refuse absurd members of a hostile archive

_T = {
    "config": ("設定ファイルが使えません:", "cannot use the configuration:"),
    "no_target": (
        "復元先が分かりません。-c 設定ファイル、環境変数 LEAKGUARD_CONFIG、または "
        "--data-dir を指定してください。",
        "no restore target: name the service's configuration with -c or LEAKGUARD_CONFIG, "
        "or give --data-dir",
    ),
    "no_store": ("バックアップするストアがありません:", "there is no store to back up at"),
    "written": ("バックアップを書き出しました:", "backup written:"),
    "holds": ("保留", "holds"),
    "queued": ("送信待ち", "queued deliveries"),
    "bad_archive": ("バックアップとして読めません:", "not a leakguard backup:"),
    "checksum": ("チェックサムが一致しません:", "checksum mismatch:"),
    "exists": (
        "復元先に既にデータがあります (上書きするには --force):",
        "the target already holds data (use --force to overwrite):",
    ),
    "kind": (
        "バックアップのストアの種類が復元先と違います:",
        "the backup's store kind differs from the target's:",
    ),
    "pg_dump": (
        "PostgreSQL のストアには pg_dump / pg_restore が必要です (postgresql-client):",
        "a PostgreSQL store needs pg_dump / pg_restore (package postgresql-client):",
    ),
    "pg_failed": ("PostgreSQL のコマンドが失敗しました:", "the PostgreSQL tool failed:"),
    "restored": ("復元しました:", "restored:"),
    "config_to": ("設定ファイルを書き出しました:", "configuration files written to:"),
    "config_kept": (
        "設定ファイルはアーカイブ内にあります (--config-to DIR で取り出せます):",
        "configuration files are in the archive (extract them with --config-to DIR):",
    ),
    "mismatch": (
        "復元後の保留件数がバックアップ時と違います:",
        "the restored store's hold count differs from the backup's:",
    ),
    "integrity": ("SQLite の整合性検査に失敗しました:", "SQLite integrity check failed:"),
}


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


class BackupError(Exception):
    """A clear, already translated reason; the command prints it and exits 1."""


def register(sub: Any) -> None:
    b: argparse.ArgumentParser = sub.add_parser(
        "backup",
        help="write the store, web secret and configuration to one archive",
        description="Back up a running service: a consistent snapshot of the store (SQLite "
        "online backup or pg_dump), the web secret, the users file and the configuration, "
        "policy and organisation files, into one .tar.gz (mode 0600).",
    )
    _common(b)
    b.add_argument("output", type=Path, metavar="ARCHIVE", help="file to write (.tar.gz)")
    b.set_defaults(func=run_backup)
    r: argparse.ArgumentParser = sub.add_parser(
        "restore",
        help="restore a backup into an empty data directory / database",
        description="Restore a backup made by 'leakguard backup' into the data directory and "
        "store of the named configuration (stop the service first). An older backup is "
        "upgraded to this release's schema.",
    )
    _common(r)
    r.add_argument("archive", type=Path, metavar="ARCHIVE")
    r.add_argument("--force", action="store_true", help="overwrite an existing store and secret")
    r.add_argument(
        "--config-to", type=Path, metavar="DIR", help="also write the configuration files here"
    )
    r.set_defaults(func=run_restore)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration (default $LEAKGUARD_CONFIG, then "
        "/etc/leakguard/leakguard.yaml when it exists)",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (overrides the configuration)")


# ---------------------------------------------------------------------- shared helpers


def _config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def _load(args: argparse.Namespace, lang: str) -> tuple[Any, Path | None]:
    from leakguard.config import ConfigError, load_config

    path = _config_path(args.config)
    if path is None and args.data_dir is None:
        raise BackupError(_t("no_target", lang))
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        raise BackupError(f"{_t('config', lang)}\n{exc}") from exc
    if args.data_dir is not None:
        cfg = cfg.model_copy(update={"data_dir": str(args.data_dir)})
    return cfg, path


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    db = url.split(":///", 1)[1].split("?", 1)[0]
    return None if not db or db == ":memory:" else Path(db)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A URL pg_dump understands, and the password moved to PGPASSWORD (not on argv)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    env = dict(os.environ)
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    plain = u.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pg_tool(name: str, lang: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(f"{_t('pg_dump', lang)} {name}")
    return tool


def _run_tool(cmd: list[str], env: dict[str, str], lang: str) -> None:
    try:
        # argv list, no shell; the tool's path comes from shutil.which
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{_t('pg_failed', lang)} {exc}") from exc
    if done.returncode != 0:
        raise BackupError(f"{_t('pg_failed', lang)} {Path(cmd[0]).name}: {done.stderr[-2000:]}")


async def _store_facts(url: str) -> dict[str, Any]:
    """Schema revision and counts, read without creating or upgrading anything."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from leakguard.store import migrate
    from leakguard.store.sql import _normalize_url

    engine = create_async_engine(_normalize_url(url))
    try:
        async with engine.connect() as conn:
            rev = await conn.run_sync(migrate.current_revision)
            holds = (await conn.execute(sa.text("SELECT count(*) FROM holds"))).scalar_one()
            queued = (
                await conn.execute(
                    sa.text("SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending')")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return {
        "revision": rev or migrate.BASELINE,
        "holds": int(holds),
        "queued_deliveries": int(queued),
    }


# ---------------------------------------------------------------------- backup


def sqlite_snapshot(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (online backup API), integrity-checked."""
    with (
        contextlib.closing(sqlite3.connect(src, timeout=30)) as source,
        contextlib.closing(sqlite3.connect(dst)) as target,
    ):
        source.backup(target)  # one step: a single read snapshot, writers go on (WAL)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        result = target.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise BackupError(f"{_t('integrity', lang_from_env())} {result}")


def make_backup(cfg: Any, config_path: Path | None, output: Path, lang: str) -> dict[str, Any]:
    """Write the archive; returns its manifest."""
    url = cfg.store_url()
    db = _sqlite_path(url)
    with tempfile.TemporaryDirectory(prefix="leakguard-backup-") as tmp_s:
        tmp = Path(tmp_s)
        members: dict[str, Path] = {}
        if db is not None:
            if not db.is_file():
                raise BackupError(f"{_t('no_store', lang)} {db}")
            snap = tmp / "leakguard.db"
            sqlite_snapshot(db, snap)
            members["store/leakguard.db"] = snap
            facts = asyncio.run(_store_facts(f"sqlite+aiosqlite:///{snap}"))
            kind = "sqlite"
        else:
            dump = tmp / "leakguard.pgdump"
            target, env = _libpq(url)
            _run_tool(
                [
                    _pg_tool("pg_dump", lang),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={dump}",
                    f"--dbname={target}",
                ],
                env,
                lang,
            )
            members["store/leakguard.pgdump"] = dump
            facts = asyncio.run(_store_facts(url))
            kind = "postgresql"
        secret = cfg.data_path / "web-secret"
        if secret.is_file():
            members["data/web-secret"] = secret
        users = cfg.users_file_path()
        if users.is_file():
            members["data/users.txt"] = users
        paths: dict[str, str | None] = {
            "data_dir": str(cfg.data_path.resolve()),
            "config": None,
            "policy": None,
            "org": None,
            "users_file": str(users.resolve()),
        }
        for key, value in (("config", config_path), ("policy", cfg.policy), ("org", cfg.org)):
            if value is not None and Path(value).is_file():
                p = Path(value)
                members[f"config/{key}{p.suffix or '.yaml'}"] = p
                paths[key] = str(p.resolve())
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "leakguard": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "store": kind,
            **facts,
            "paths": paths,
            "files": {
                name: {"sha256": _sha256(p), "size": p.stat().st_size}
                for name, p in sorted(members.items())
            },
        }
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=".leakguard-backup-", dir=output.parent)
        os.fchmod(fd, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mode = len(data), 0o600
                info.mtime = int(datetime.now(UTC).timestamp())
                tar.addfile(info, io.BytesIO(data))
                for name, p in sorted(members.items()):
                    ti = tar.gettarinfo(str(p), arcname=name)
                    ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = 0o600, 0, 0, "", ""
                    with p.open("rb") as f:
                        tar.addfile(ti, f)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, output)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
    return manifest


def run_backup(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    try:
        cfg, path = _load(args, lang)
        manifest = make_backup(cfg, path, args.output, lang)
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(
        f"{_t('written', lang)} {args.output} ({manifest['store']}, "
        f"{_t('holds', lang)} {manifest['holds']}, "
        f"{_t('queued', lang)} {manifest['queued_deliveries']}, {manifest['revision']})"
    )
    return 0


# ---------------------------------------------------------------------- restore


def read_archive(archive: Path, dest: Path, lang: str) -> dict[str, Any]:
    """Extract the archive's known members into ``dest`` after checking them all."""
    try:
        tar = tarfile.open(archive, mode="r:gz")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{_t('bad_archive', lang)} {archive}: {exc}") from exc
    with tar:
        try:
            member = tar.getmember("manifest.json")
            f = tar.extractfile(member)
            manifest = json.loads(f.read(1 << 20)) if f is not None else None
        except (KeyError, ValueError, tarfile.TarError) as exc:
            raise BackupError(f"{_t('bad_archive', lang)} {archive}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BackupError(f"{_t('bad_archive', lang)} {archive}")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise BackupError(f"{_t('bad_archive', lang)} {archive}")
        for name, meta in files.items():
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts or len(pure.parts) != 2:
                raise BackupError(f"{_t('bad_archive', lang)} {name}")
            try:
                m = tar.getmember(name)
            except KeyError as exc:
                raise BackupError(f"{_t('bad_archive', lang)} {name} missing") from exc
            if not m.isfile() or m.size > _MAX_MEMBER:
                raise BackupError(f"{_t('bad_archive', lang)} {name}")
            out = dest / pure.parts[0] / pure.parts[1]
            out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            with src, out.open("wb") as w:
                shutil.copyfileobj(src, w)
            out.chmod(0o600)
            if _sha256(out) != meta.get("sha256"):
                raise BackupError(f"{_t('checksum', lang)} {name}")
    return manifest


def _place(src: Path, dst: Path, *, force: bool, lang: str) -> None:
    if dst.exists() and not force:
        if dst.read_bytes() == src.read_bytes():
            return
        raise BackupError(f"{_t('exists', lang)} {dst}")
    dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.restore")
    shutil.copyfile(src, tmp)
    tmp.chmod(0o600)
    os.replace(tmp, dst)


async def _target_has_holds(url: str) -> bool:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from leakguard.store.sql import _normalize_url

    engine = create_async_engine(_normalize_url(url))
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return "holds" in tables


async def _open_and_count(url: str) -> tuple[int, str]:
    from leakguard.store import open_store

    store = await open_store(url)  # upgrades an older backup to this release's schema
    await store.close()
    facts = await _store_facts(url)
    return int(facts["holds"]), str(facts["revision"])


def restore_backup(
    cfg: Any, archive: Path, *, force: bool, config_to: Path | None, lang: str
) -> str:
    url = cfg.store_url()
    db = _sqlite_path(url)
    with tempfile.TemporaryDirectory(prefix="leakguard-restore-") as tmp_s:
        tmp = Path(tmp_s)
        manifest = read_archive(archive, tmp, lang)
        kind = manifest.get("store")
        target_kind = "sqlite" if db is not None else "postgresql"
        if kind != target_kind:
            raise BackupError(f"{_t('kind', lang)} {kind} → {target_kind}")
        data_dir = cfg.data_path
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # secrets first: if the store cannot be placed, the old secret is still there
        secret = tmp / "data" / "web-secret"
        users = tmp / "data" / "users.txt"
        if db is not None:
            if db.exists() and not force:
                raise BackupError(f"{_t('exists', lang)} {db}")
        elif asyncio.run(_target_has_holds(url)) and not force:
            raise BackupError(f"{_t('exists', lang)} {cfg.store_url().split('@')[-1]}")
        if secret.is_file():
            _place(secret, data_dir / "web-secret", force=force, lang=lang)
        if users.is_file():
            _place(users, cfg.users_file_path(), force=force, lang=lang)
        if db is not None:
            snap = tmp / "store" / "leakguard.db"
            db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = db.with_name(f".{db.name}.restore")
            shutil.copyfile(snap, partial)
            partial.chmod(0o600)
            for suffix in ("-wal", "-shm", "-journal"):  # of the store being replaced
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{db}{suffix}").unlink()
            os.replace(partial, db)
        else:
            target, env = _libpq(url)
            cmd = [_pg_tool("pg_restore", lang), "--no-owner", "--no-privileges"]
            cmd += ["--exit-on-error", "--single-transaction"]
            if force:
                cmd += ["--clean", "--if-exists"]
            cmd += [f"--dbname={target}", str(tmp / "store" / "leakguard.pgdump")]
            _run_tool(cmd, env, lang)
        holds, revision = asyncio.run(_open_and_count(url))
        if holds != manifest.get("holds"):
            raise BackupError(f"{_t('mismatch', lang)} {manifest.get('holds')} → {holds}")
        lines = [
            f"{_t('restored', lang)} {archive} → {db if db is not None else target_kind} "
            f"({_t('holds', lang)} {holds}, {manifest.get('revision')} → {revision})"
        ]
        configs = sorted((tmp / "config").glob("*")) if (tmp / "config").is_dir() else []
        if configs and config_to is not None:
            config_to.mkdir(mode=0o700, parents=True, exist_ok=True)
            for c in configs:
                _place(c, config_to / c.name, force=force, lang=lang)
            lines.append(f"{_t('config_to', lang)} {config_to}")
        elif configs:
            originals = manifest.get("paths", {})
            names = ", ".join(f"{c.name} ({originals.get(c.stem) or '?'})" for c in configs)
            lines.append(f"{_t('config_kept', lang)} {names}")
        return "\n".join(lines)


def run_restore(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    try:
        cfg, _path = _load(args, lang)
        print(
            restore_backup(cfg, args.archive, force=args.force, config_to=args.config_to, lang=lang)
        )
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0
