"""``leakguard check``: the DESIGN §7 contract (human and --json output, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leakguard.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:  # type: ignore[type-arg]
    assert main(["check", "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, str(EX / "bulk-to-12-companies-ja.eml"), str(EX / "mailing-list-ja.eml"))
    assert len(out) == 2
    first = out[0]
    assert {"file", "action", "rules", "facts", "findings"} <= set(first)
    assert first["file"].endswith("bulk-to-12-companies-ja.eml")
    assert first["action"] == "bcc" and first["rules"] == ["bulk-external"]
    assert first["facts"]["visible_external_recipients"] == 12
    assert first["facts"]["visible_external_organizations"] == 12
    f = next(f for f in first["findings"] if f["fact"] == "visible_external_recipients")
    assert {"detector", "addresses", "detail"} <= set(f)
    assert len(f["addresses"]) == 12
    assert out[1]["action"] == "pass" and out[1]["rules"] == []


def test_envelope_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    # All twelve in Bcc: the header shows nobody, so nothing is visible -> pass.
    rcpts = [f"info@company{i:02d}.example" for i in range(1, 13)]
    out = run_json(
        capsys,
        "--sender",
        "kazuya.sato@city.example.lg.jp",
        "--rcpt",
        *rcpts,
        "--",
        str(EX / "bulk-in-bcc-ja.eml"),
    )
    assert out[0]["action"] == "pass"
    assert out[0]["facts"]["external_recipients"] == 12
    assert out[0]["facts"]["visible_external_recipients"] == 0


def test_org_replaces_policy_organisation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org.yaml"
    # Make the twelve companies' domain pattern internal: nothing is external any more.
    org.write_text(
        "internal_domains: [city.example.lg.jp]\npartner_domains: []\nmailing_lists: []\n",
        encoding="utf-8",
    )
    out = run_json(capsys, "--org", str(org), str(EX / "mailing-list-ja.eml"))
    # all-staff is no longer a configured list but is internal; still pass
    assert out[0]["action"] == "pass"
    org.write_text("internal_domains: [company01.example]\n", encoding="utf-8")
    out = run_json(capsys, "--org", str(org), str(EX / "mailing-list-ja.eml"))
    assert out[0]["facts"]["external_recipients"] == 1  # city.example.lg.jp is external now


def test_human_output_japanese_and_english(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = str(EX / "mixed-organizations-en.eml")
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    assert main(["check", mail]) == 0
    ja = capsys.readouterr().out
    assert "判定: HOLD" in ja and "mixed-organizations" in ja
    assert "複数の社外組織" in ja and "hotel-sakura.example" in ja
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert main(["check", mail]) == 0
    en = capsys.readouterr().out
    assert "action: HOLD" in en and "can see each other" in en


def test_unreadable_file_and_invalid_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert main(["check", str(tmp_path / "missing.eml"), str(EX / "mailing-list-ja.eml")]) == 1
    cap = capsys.readouterr()
    assert "missing.eml: cannot read" in cap.err
    assert "mailing-list-ja.eml" in cap.out  # the readable one is still checked
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{id: x}]\n", encoding="utf-8")
    assert main(["check", "--policy", str(bad), str(EX / "mailing-list-ja.eml")]) == 2
    err = capsys.readouterr().err
    assert "invalid policy" in err and f"{bad}:1:" in err


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "leakguard"
    proc = subprocess.run(
        [str(exe), "check", "--json", str(EX / "similar-to-colleague-ja.eml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["action"] == "hold"
