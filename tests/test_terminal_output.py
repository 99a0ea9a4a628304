"""Issue 12: control characters from mail never reach a terminal (``holds list``, ``holds
show``, ``check``, ``policy test``): window-title (ESC ] 0 ; ... BEL) and screen-clear
(ESC [ 2 J) sequences, C1 CSI, bidi overrides and lone surrogates are printed as visible
escapes, through one helper (``leakguard.terminal``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_holds_cli import _config, main
from test_holds_support import do_hold, make_env, verdict

from leakguard.cli import main as cli_main
from leakguard.holds.model import HoldRecord
from leakguard.terminal import for_terminal, json_for_terminal

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b2J"
RLO = "\u202e"
HOSTILE = f"A{TITLE}B{CLEAR}C{C1_CSI}D{RLO}fdp.exe\u2066E"
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\x00")


def assert_clean(text: str) -> None:
    for c in FORBIDDEN:
        assert c not in text, (repr(c), text[:500])
    text.encode("utf-8")  # no lone surrogate either


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")


def test_helper_escapes_visibly_and_keeps_text() -> None:
    out = for_terminal(HOSTILE + "\ud800\t\nおはよう")
    assert_clean(out)
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out and "\\x9b2J" in out
    assert "\\u202efdp.exe" in out and "\\ud800" in out and "\\x09\\x0a" in out
    assert out.endswith("おはよう")
    assert for_terminal("普通の件名 plain") == "普通の件名 plain"


def test_json_helper_is_the_same_value() -> None:
    value = {"s": HOSTILE + "\ud800", "n": 1}
    text = json_for_terminal(value)
    assert_clean(text)
    assert json.loads(text) == value


def _hostile_hold(tmp_path: Path) -> HoldRecord:
    async def go() -> HoldRecord:
        env = await make_env(tmp_path, db="leakguard.db")
        try:
            return await do_hold(  # type: ignore[no-any-return]
                env,
                verdict(),
                subject=HOSTILE,
                mail_from=f"x{CLEAR}@city.example.lg.jp",
            )
        finally:
            await env.store.close()

    return asyncio.run(go())


def test_holds_list_and_show_escape_mail_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hold = _hostile_hold(tmp_path)
    assert "\x1b" in hold.subject  # the store keeps the subject as it was
    capsys.readouterr()  # the hold's own log lines (see the log test below)
    cfg = str(_config(tmp_path))
    assert main(["holds", "-c", cfg, "list"]) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    assert hold.id in out and "\\x1b]0;pwned\\x07" in out
    assert main(["holds", "-c", cfg, "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    assert json.loads(out.splitlines()[0])["subject"] == hold.subject
    assert main(["holds", "-c", cfg, "show", hold.id]) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    assert "\\x1b[2J" in out and "fdp.exe" in out  # the summary strips some itself
    assert main(["holds", "-c", cfg, "show", f"H-{CLEAR}"]) == 1
    assert_clean(capsys.readouterr().err)


def _hostile_mail(tmp_path: Path) -> Path:
    mail = tmp_path / f"mail{TITLE}.eml"
    mail.write_bytes(
        (
            f"From: Tanaka <tanaka@city.example.lg.jp>\r\n"
            f'To: "{TITLE}{RLO}Sato" <sato@partner.example.co.jp>, '
            f'"{CLEAR}" <a@client-one.example.com>\r\n'
            f"Subject: {HOSTILE}\r\n\r\nhello\r\n"
        ).encode()
    )
    return mail


def test_check_output_escapes_file_names_and_mail_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = _hostile_mail(tmp_path)
    cli_main(["check", str(mail)])
    out = capsys.readouterr()
    assert_clean(out.out + out.err)
    assert "\\x1b]0;pwned\\x07" in out.out  # the file name, visibly
    cli_main(["check", "--json", str(mail)])
    out = capsys.readouterr()
    assert_clean(out.out + out.err)
    assert json.loads(out.out)["file"] == str(mail)
    cli_main(["check", str(tmp_path / f"missing{CLEAR}.eml")])
    assert_clean(capsys.readouterr().err)


@pytest.mark.parametrize("as_json", [True, False])
def test_log_lines_escape_mail_text(as_json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from leakguard.logging import configure_logging, get_logger

    try:
        configure_logging(json=as_json)
        get_logger("t").info("hold.created", subject=HOSTILE + "\ud800", rcpts=[HOSTILE])
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert_clean(err)
    if as_json:
        assert json.loads(err)["subject"] == HOSTILE + "\ud800"
    else:
        assert "\\x1b]0;pwned\\x07" in err
