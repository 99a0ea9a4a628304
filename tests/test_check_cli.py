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
        *[arg for r in rcpts for arg in ("--rcpt", r)],
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


def test_readme_example_line_parses(capsys: pytest.CaptureFixture[str]) -> None:
    # The README's tour: several --rcpt flags, then the file name (never taken for an address).
    out = run_json(
        capsys,
        "--sender",
        "kazuya.sato@city.example.lg.jp",
        "--rcpt",
        "info@company01.example",
        "--rcpt",
        "info@company02.example",
        str(EX / "bulk-in-bcc-ja.eml"),
    )
    assert len(out) == 1 and out[0]["file"].endswith("bulk-in-bcc-ja.eml")
    assert out[0]["facts"]["external_recipients"] == 2


def _write_jsonl(path: Path, rows: list[object]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def test_envelopes_file_gives_each_mail_its_envelope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    for name in ("bulk-in-bcc-ja.eml", "bulk-to-12-companies-ja.eml", "mailing-list-ja.eml"):
        shutil.copy(EX / name, tmp_path / name)
    env = tmp_path / "env.jsonl"
    twelve = [f"info@company{i:02d}.example" for i in range(1, 13)]
    _write_jsonl(
        env,
        [
            {
                "file": "bulk-in-bcc-ja.eml",
                "sender": "kazuya.sato@city.example.lg.jp",
                "rcpt": twelve,
            },
            {"file": "bulk-to-12-companies-ja.eml", "rcpt": twelve[:3]},
            {"file": str(tmp_path / "mailing-list-ja.eml")},  # absolute; default envelope
        ],
    )
    out = run_json(capsys, "--envelopes", str(env))
    assert [Path(o["file"]).name for o in out] == [
        "bulk-in-bcc-ja.eml",
        "bulk-to-12-companies-ja.eml",
        "mailing-list-ja.eml",
    ]
    assert out[0]["facts"]["external_recipients"] == 12 and out[0]["action"] == "pass"
    # the header still shows twelve companies, whatever the envelope says
    assert out[1]["facts"]["external_recipients"] == 3 and out[1]["action"] == "bcc"
    assert out[2]["action"] == "pass"


def test_labelled_directory_and_plain_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    labelled = tmp_path / "labelled"
    plain = tmp_path / "plain"
    labelled.mkdir()
    plain.mkdir()
    shutil.copy(EX / "bulk-in-bcc-ja.eml", labelled / "a.eml")
    _write_jsonl(labelled / "envelopes.jsonl", [{"file": "a.eml", "rcpt": ["x@company01.example"]}])
    shutil.copy(EX / "mailing-list-ja.eml", plain / "b.eml")
    shutil.copy(EX / "bulk-to-12-companies-ja.eml", plain / "a.eml")
    (plain / "notes.txt").write_text("not mail", "utf-8")
    out = run_json(capsys, str(labelled), str(plain))
    assert [Path(o["file"]).name for o in out] == ["a.eml", "a.eml", "b.eml"]
    assert out[0]["facts"]["external_recipients"] == 1
    assert out[1]["action"] == "bcc" and out[2]["action"] == "pass"


@pytest.mark.parametrize(
    ("line", "en", "ja"),
    [
        ("{not json", "not valid JSON", "JSON として読めません"),
        ('["a.eml"]', "expected an object", "オブジェクトが必要です"),
        ('{"rcpt": ["a@x.example"]}', '"file" must be a non-empty string', '"file" は空でない'),
        ('{"file": "a.eml", "rcpt": "a@x.example"}', '"rcpt" must be a list', '"rcpt" は'),
        ('{"file": "a.eml", "sender": 3}', '"sender" must be a string', '"sender" は'),
        ('{"file": "a.eml", "to": []}', 'unknown key "to"', '不明なキー "to"'),
    ],
)
def test_bad_envelope_lines_are_named_in_both_languages(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    line: str,
    en: str,
    ja: str,
) -> None:
    env = tmp_path / "env.jsonl"
    env.write_text('{"file": "ok.eml"}\n\n' + line + "\n", "utf-8")
    for lang, want in (("en_US.UTF-8", en), ("ja_JP.UTF-8", ja)):
        monkeypatch.setenv("LANG", lang)
        monkeypatch.delenv("LC_ALL", raising=False)
        monkeypatch.delenv("LEAKGUARD_LANG", raising=False)
        assert main(["check", "--json", "--envelopes", str(env)]) == 2
        cap = capsys.readouterr()
        assert f"{env}:3:" in cap.err and want in cap.err
        assert cap.out == ""  # nothing is checked when the envelope file is wrong


def test_no_mail_and_missing_envelope_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LEAKGUARD_LANG", raising=False)
    assert main(["check"]) == 2
    assert "メールが指定されていません" in capsys.readouterr().err
    assert main(["check", "--envelopes", str(tmp_path / "none.jsonl")]) == 2
    assert "エンベロープファイルを読めません" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert main(["check", str(tmp_path / "empty")]) == 2
    assert "no .eml files" in capsys.readouterr().err
