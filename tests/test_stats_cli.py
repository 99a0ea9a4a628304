"""``leakguard stats`` and ``leakguard stats audit RULE``: tables in ja/en, --json."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stats_seed import AUDIT, HOSTILE, NOISY, seed

from leakguard.cli import main
from leakguard.commands.service_args import parse_when
from leakguard.officer.stats import width
from leakguard.store import open_store, sqlite_url


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "leakguard.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path}\n"
        "holds:\n  notice_from: leakguard@city.example.lg.jp\n  timezone: Asia/Tokyo\n"
    )
    return cfg


@pytest.fixture
def svc(tmp_path: Path) -> Path:
    async def go() -> None:
        store = await open_store(sqlite_url(tmp_path / "leakguard.db"))
        try:
            await seed(store)
        finally:
            await store.close()

    asyncio.run(go())
    return _config(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_en_marks_noisy_and_strips_control(
    svc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, out, _ = run(capsys, "stats", "-c", str(svc))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("period: ") and lines[0].endswith(" JST")
    # the mails the rows count, each once: the sum of the days, by what the relay did
    _, js, _ = run(capsys, "stats", "-c", str(svc), "--json")
    days = json.loads(js)["days"]
    total = sum(v for d in days for k, v in d.items() if k != "day")
    held = sum(d["hold"] for d in days)
    assert lines[1].startswith(f"Mails decided: {total} (") and f"held {held}," in lines[1]
    assert "counts for each rule" in lines[1]
    lines = [lines[0], *lines[2:]]
    assert "release rate" in lines[1] and "median to release" in lines[1]
    noisy = next(x for x in lines if NOISY in x)
    assert noisy.startswith("* ") and " 90%" in noisy
    assert "* noisy:" in out
    assert "\x1b" not in out
    table = lines[1 : lines.index("")]
    assert len(table) == 8 and len({width(x) for x in table}) == 1, table


def test_table_ja_by_department_is_width_aligned(
    svc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "--by", "department")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("期間: ") and lines[1].startswith("判定したメール: ")
    assert "部署" in lines[2] and "送信率" in lines[2]
    table = [x for x in lines[2:] if x.strip()]
    assert any("財政課" in x for x in table) and any(HOSTILE in x for x in table)
    # right-aligned numbers: every line of the table takes the same terminal width
    assert len({width(x) for x in table}) == 1, table


def test_json_and_period(
    svc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "--json", "--noisy-min", "20")
    assert code == 0
    data = json.loads(out)
    rows = {r["key"]: r for r in data["rows"]}
    assert rows[NOISY]["release_rate"] == 0.9 and rows[NOISY]["noisy"] is False
    assert rows["bulk-external"]["bcc_rewrites"] == 4
    assert len(data["days"]) in (30, 31)
    code, out, _ = run(capsys, "stats", "-c", str(svc), "--json", "--since", "36h")
    assert {r["key"] for r in json.loads(out)["rows"]} == {NOISY}
    code, _, err = run(capsys, "stats", "-c", str(svc), "--since", "yesterday-ish")
    assert code == 2 and "not a period" in err
    # the value given, not Python's own (English) message
    assert "yesterday-ish" in err and "isoformat" not in err
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    code, _, err = run(capsys, "stats", "-c", str(svc), "--since", "yesterday-ish")
    assert code == 2 and "期間の指定が不正です" in err and "Invalid" not in err
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, _, err = run(
        capsys, "stats", "-c", str(svc), "--since", "2026-01-02", "--until", "2026-01-01"
    )
    assert code == 2


def test_audit_report_cli(
    svc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "audit", AUDIT)
    assert code == 0
    assert "監査モードのルール new-rule の報告" in out and "該当したメール: 6" in out
    assert "1234-5678-9012" not in out and "M-SEED" in out
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "audit", AUDIT, "--json", "--since", "100d")
    data = json.loads(out)
    assert data["total"] == 7 and data["reported"] == 1 and data["would_have"] == "hold"
    assert data["answers"] == {"sent": 6, "held:released": 1}


def test_audit_report_says_when_the_rule_is_not_an_audit_rule(
    svc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty report of a rule that is enforced, or misspelt, says so (the service runs
    the default policy here)."""
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "audit", "bulk-external")
    assert code == 0 and "not in audit mode (mode: enforce)" in out
    code, out, _ = run(capsys, "stats", "-c", str(svc), "audit", "bulk-externel")
    assert code == 0 and "has no rule bulk-externel" in out
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    code, out, _ = run(capsys, "stats", "-c", str(svc), "audit", "bulk-external")
    assert "監査モードではありません" in out


def test_parse_when() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Tokyo")
    now = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert parse_when("7d", tz, now) == datetime(2026, 11, 23, tzinfo=UTC)
    assert parse_when("2026-11-01", tz, now) == datetime(2026, 11, 1, tzinfo=tz)
    assert parse_when("2026-11-01", tz, now, end=True) == datetime(2026, 11, 2, tzinfo=tz)
    assert parse_when("2026-11-01T10:00", tz, now) == datetime(2026, 11, 1, 10, tzinfo=tz)
    with pytest.raises(ValueError):
        parse_when("soon", tz, now)


def test_json_shows_bidi_and_c1_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = "rule\u202egpj.exe\x9b2J\u2066x"

    async def go() -> None:
        store = await open_store(sqlite_url(tmp_path / "leakguard.db"))
        try:
            await seed(store, hostile=evil)
        finally:
            await store.close()

    asyncio.run(go())
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    code, out, _ = run(capsys, "stats", "-c", str(_config(tmp_path)), "--json")
    assert code == 0
    assert not any(c in out for c in "\u202e\x9b\u2066"), repr(out)
    assert evil in {r["key"] for r in json.loads(out)["rows"]}  # the same value, escaped
