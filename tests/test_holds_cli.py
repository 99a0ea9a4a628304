"""``leakguard holds``: list, show (incident timeline), release, release-bcc, discard."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
from test_holds_support import do_hold, make_env, parse, verdict

from leakguard.commands import holds as holds_cmd
from leakguard.holds.model import HoldRecord, HoldState
from leakguard.store import open_store, sqlite_url

POLICY = """\
version: 1
organization:
  internal_domains: [city.example.lg.jp]
rules: []
default_action: pass
"""


def _setup(tmp_path: Path, n: int = 1, **kw: object) -> list[HoldRecord]:
    async def go() -> list[HoldRecord]:
        env = await make_env(tmp_path, db="leakguard.db")
        try:
            return [await do_hold(env, verdict(**kw), subject=f"mail {i}") for i in range(n)]  # type: ignore[arg-type]
        finally:
            await env.store.close()

    return asyncio.run(go())


def _config(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    cfg = tmp_path / "leakguard.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path}\npolicy: {tmp_path / 'policy.yaml'}\n"
        "holds:\n  notice_from: leakguard@city.example.lg.jp\n"
        "  command_address: leakguard-hold@city.example.lg.jp\n"
    )
    return cfg


def _state(tmp_path: Path, hold_id: str) -> tuple[HoldState, list[bytes]]:
    async def go() -> tuple[HoldState, list[bytes]]:
        store = await open_store(sqlite_url(tmp_path / "leakguard.db"))
        try:
            h = await store.get_hold(hold_id)
            assert h is not None
            mails = [
                await store.get_message(d.message_sha256)
                for d in await store.list_deliveries()
                if d.kind == "mail"
            ]
            return h.state, mails
        finally:
            await store.close()

    return asyncio.run(go())


def main(argv: list[str]) -> int:
    """``leakguard`` with only the holds command (independent of the other commands)."""
    parser = argparse.ArgumentParser(prog="leakguard")
    holds_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")


def test_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h1, h2 = _setup(tmp_path, 2)
    assert main(["holds", "--data-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert h1.id in out and h2.id in out and "forwarded-third-party" in out
    assert main(["holds", "--data-dir", str(tmp_path), "list", "--state", "released"]) == 0
    assert "No holds match" in capsys.readouterr().out
    assert (
        main(
            [
                "holds",
                "--data-dir",
                str(tmp_path),
                "discard",
                h1.id,
                "--as",
                "kato",
                "--note",
                "incident 42",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["holds", "--data-dir", str(tmp_path), "show", h1.id]) == 0
    out = capsys.readouterr().out
    assert f"Hold ID: {h1.id}" in out
    assert "The quoted thread contains a third party" in out
    assert "a@client-one.example.com" in out
    lines = [ln for ln in out.splitlines() if "->" in ln]
    assert "relay" in lines[0] and "-> held" in lines[0]
    assert "cli" in lines[-1] and "admin:kato" in lines[-1] and "held -> discarded" in lines[-1]
    assert "incident 42" in lines[-1]
    assert main(["holds", "--data-dir", str(tmp_path), "show", "H-NOPE"]) == 1


def test_release_and_release_bcc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    h1, h2 = _setup(tmp_path, 2)
    assert main(["holds", "-c", str(cfg), "release", h1.id]) == 0
    assert main(["holds", "-c", str(cfg), "release-bcc", h2.id]) == 0
    s1, mails = _state(tmp_path, h1.id)
    s2, _ = _state(tmp_path, h2.id)
    assert s1 == HoldState.RELEASED and s2 == HoldState.RELEASED_BCC
    assert len(mails) == 2
    bcc = parse(mails[1])
    assert bcc["To"] == "undisclosed-recipients:;"
    assert "client-one" not in mails[1].split(b"\r\n\r\n")[0].decode()
    # answering twice is refused with exit code 1 and changes nothing
    assert main(["holds", "-c", str(cfg), "discard", h1.id]) == 1
    assert "already handled" in capsys.readouterr().err
    assert _state(tmp_path, h1.id)[0] == HoldState.RELEASED


def test_list_has_a_header_row_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    (h1,) = _setup(tmp_path, 1)
    capsys.readouterr()  # the hold's own log line
    assert main(["holds", "--data-dir", str(tmp_path), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["id", "held_at", "state", "sender", "rules", "subject"]
    assert lines[1].split("\t")[0] == h1.id and lines[1].split("\t")[2] == "held"
    assert main(["holds", "--data-dir", str(tmp_path), "list", "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["id"] == h1.id and row["state"] == "held" and row["subject"] == "mail 0"
    assert row["rules"] == ["forwarded-third-party"] and row["mail_from"] == h1.mail_from
    assert sorted(row["rcpts"]) == sorted(h1.rcpts)


def test_show_does_not_repeat_the_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (h1,) = _setup(tmp_path, 1)
    assert main(["holds", "--data-dir", str(tmp_path), "release", h1.id]) == 0
    capsys.readouterr()
    assert main(["holds", "--data-dir", str(tmp_path), "show", h1.id]) == 0
    out = capsys.readouterr().out
    assert "State: released\n" in out and "released (released)" not in out


def test_show_in_japanese_names_the_state_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (h1,) = _setup(tmp_path, 1)
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    assert main(["holds", "--data-dir", str(tmp_path), "show", h1.id]) == 0
    assert "状態: 保留中 (held)" in capsys.readouterr().out


# ---------------------------------------------------------------- finding the service


def _no_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory with no configuration anywhere."""
    import leakguard.config as config

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("LEAKGUARD_CONFIG", raising=False)
    monkeypatch.delenv("LEAKGUARD_STORE_URL", raising=False)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "etc" / "leakguard.yaml")
    monkeypatch.setattr(
        config, "checkout_data_dir", lambda: tmp_path / "checkout" / "leakguard-data"
    )
    return elsewhere


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_no_stray_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lang: str
) -> None:
    elsewhere = _no_service(monkeypatch, tmp_path)
    monkeypatch.setenv("LEAKGUARD_LANG", lang)
    assert main(["holds", "list"]) == 2
    err = capsys.readouterr().err
    assert ("LEAKGUARD_CONFIG" in err) and ("-c" in err)
    assert ("見つかりません" in err) if lang == "ja" else ("No leakguard configuration" in err)
    assert list(elsewhere.iterdir()) == []  # no ./leakguard-data, no database, no secret
    # a configuration whose data directory has no store: refused, still nothing created
    cfg = tmp_path / "lg.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'missing'}\n")
    assert main(["holds", "-c", str(cfg), "list"]) == 2
    assert "leakguard.db" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
    assert main(["holds", "--data-dir", str(tmp_path / "missing2"), "list"]) == 2
    assert not (tmp_path / "missing2").exists()


def test_service_found_by_env_and_standard_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leakguard.config as config

    (h1,) = _setup(tmp_path, 1)
    cfg = _config(tmp_path)
    _no_service(monkeypatch, tmp_path)
    capsys.readouterr()
    monkeypatch.setenv("LEAKGUARD_CONFIG", str(cfg))
    assert main(["holds", "list"]) == 0
    assert h1.id in capsys.readouterr().out
    monkeypatch.delenv("LEAKGUARD_CONFIG")
    monkeypatch.setattr(config, "SYSTEM_CONFIG", cfg)
    assert main(["holds", "list"]) == 0
    assert h1.id in capsys.readouterr().out
    # make run's data directory (the checkout's leakguard-data) without any file
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "nothing.yaml")
    monkeypatch.setattr(config, "checkout_data_dir", lambda: tmp_path)
    assert main(["holds", "list"]) == 0
    assert h1.id in capsys.readouterr().out


def test_users_list_finds_the_service_or_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leakguard.cli import main as cli_main

    elsewhere = _no_service(monkeypatch, tmp_path)
    assert cli_main(["users", "list"]) == 2
    assert "LEAKGUARD_CONFIG" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    # with the service's configuration it reads the service's users file
    _setup(tmp_path, 1)
    monkeypatch.setenv("LEAKGUARD_CONFIG", str(_config(tmp_path)))
    capsys.readouterr()
    assert cli_main(["users", "list"]) == 0
    assert str(tmp_path / "users.txt") in capsys.readouterr().out


def test_users_file_option_before_or_after_the_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/configuration.md says `leakguard users add --file FILE`: both orders work."""
    import io

    from leakguard.cli import main as cli_main

    admins = tmp_path / "admins.txt"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    cmd = ["users", "add", "--file", str(admins), "--password-stdin", "officer@example.jp"]
    assert cli_main(cmd) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    cmd = ["users", "--file", str(admins), "add", "--password-stdin", "deputy@example.jp"]
    assert cli_main(cmd) == 0
    capsys.readouterr()
    assert cli_main(["users", "list", "--file", str(admins)]) == 0
    assert capsys.readouterr().out.split() == ["deputy@example.jp", "officer@example.jp"]


def test_service_options_after_the_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`leakguard holds list -c FILE` and `incidents show ID -c FILE` work like `holds -c
    FILE list`: people write the option after the action."""
    from leakguard.cli import main as cli_main

    work = tmp_path / "work"
    work.mkdir()
    _no_service(monkeypatch, work)
    [h] = _setup(tmp_path, 1)
    cfg = _config(tmp_path)
    capsys.readouterr()
    assert cli_main(["holds", "list", "-c", str(cfg)]) == 0
    assert h.id in capsys.readouterr().out
    assert cli_main(["holds", "show", h.id, "--data-dir", str(tmp_path)]) == 0
    assert h.id in capsys.readouterr().out
    assert cli_main(["incidents", "list", "-c", str(cfg)]) == 0
    assert cli_main(["stats", "--json", "-c", str(cfg)]) == 0
    capsys.readouterr()
    # given after the action, the option wins over the one before it
    assert cli_main(["holds", "-c", "/nonexistent.yaml", "list", "-c", str(cfg)]) == 0
    assert h.id in capsys.readouterr().out
