"""--help in Japanese and English, ``leakguard help TOPIC``, the configuration reference."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from leakguard.cli import build_parser, main
from leakguard.cli_ja import HELP_JA, error_ja, missing_translations, walk
from leakguard.commands.help import TOPICS, topic_text
from leakguard.config_reference import reference

ROOT = Path(__file__).resolve().parents[1]
JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_help_text_has_a_japanese_version() -> None:
    parser = build_parser("en")
    assert missing_translations(parser) == []
    # and no stale entries pile up in the catalogue
    used = {text for _h, _a, text in walk(parser)}
    assert set(HELP_JA) - used == set()


@pytest.mark.parametrize("path", [p for p, _ in _parsers(build_parser("en"))], ids=" ".join)
def test_japanese_help_for_every_command(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    with pytest.raises(SystemExit) as ei:
        main([*path, "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("使い方: leakguard")
    assert "オプション:" in out and "options:" not in out and "usage:" not in out
    assert "このヘルプを表示して終了する" in out
    # every help line that is not a flag, metavar or choice list is Japanese
    for action_text in (t for _h, _a, t in walk(dict(_parsers(build_parser("en")))[path])):
        assert action_text not in out or action_text == HELP_JA.get(action_text), action_text


@pytest.mark.parametrize("path", [p for p, _ in _parsers(build_parser("en"))], ids=" ".join)
def test_english_help_stays_english(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: leakguard") and not JA.search(out)


def test_japanese_locale_through_lang(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "leakguard", "serve", "--help"],
        capture_output=True,
        text=True,
        env={"LANG": "ja_JP.UTF-8", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert out.returncode == 0
    assert "--base-url URL" in out.stdout and "通知のリンクに使う" in out.stdout


@pytest.mark.parametrize(
    ("en", "ja"),
    [
        ("the following arguments are required: ID", "次の引数が必要です: ID"),
        ("unrecognized arguments: --bogus", "解釈できない引数です: --bogus"),
        (
            "argument --limit: invalid int value: 'x'",
            "引数 --limit: 'x' は正しい値ではありません (int)",
        ),
    ],
)
def test_argparse_errors_in_japanese(en: str, ja: str) -> None:
    assert error_ja(en) == ja


def test_japanese_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    with pytest.raises(SystemExit) as ei:
        main(["holds", "show"])
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert "エラー: 次の引数が必要です: ID" in err


# ---------------------------------------------------------------- help topics

_CMD = re.compile(r"leakguard ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)((?: [^\n]*)?)")


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_topic_exists_and_names_only_real_commands_and_flags(topic: str, lang: str) -> None:
    text = topic_text(topic, lang)
    assert text.strip()
    if lang == "ja":
        assert JA.search(text)
    else:  # English, except the Japanese reply commands it quotes (送信 / 破棄)
        assert len(JA.findall(text)) <= 8, text
    parsers = dict(_parsers(build_parser("en")))
    for m in _CMD.finditer(text):
        words = m.group(1).split()
        path = tuple(words) if tuple(words) in parsers else tuple(words[:1])
        if path not in parsers:
            continue  # "leakguard and Postfix", "leakguard の..." (prose)
        flags = {
            o
            for _p, sub in parsers.items()
            if _p[: len(path)] == path
            for a in sub._actions
            for o in a.option_strings
        }
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", m.group(2)):
            assert flag in flags, f"{topic}.{lang}: leakguard {' '.join(path)} has no {flag}"


def test_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "--lang", "en"]) == 0
    assert "serve, policy, holds" in capsys.readouterr().out
    assert main(["help", "holds", "--lang", "ja"]) == 0
    assert "保留メールの管理" in capsys.readouterr().out


def test_readme_and_help_agree() -> None:
    """The README points at the help topics, and the flags the README shows exist."""
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "leakguard help" in readme
    parsers = dict(_parsers(build_parser("en")))
    for m in re.finditer(r"leakguard (serve|holds|users|policy|check)\b([^\n`]*)", readme):
        flags = {
            o
            for p, sub in parsers.items()
            if p[:1] == (m.group(1),)
            for a in sub._actions
            for o in a.option_strings
        }
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", m.group(2)):
            assert flag in flags, f"README: leakguard {m.group(1)} has no {flag}"


# ---------------------------------------------------------------- configuration reference


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    assert committed == reference(), (
        "docs/configuration.md is stale: run .venv/bin/leakguard config reference "
        "-o docs/configuration.md"
    )


def test_reference_lists_every_option_with_default_and_example() -> None:
    from pydantic import BaseModel

    from leakguard.config import ServiceConfig

    text = reference()

    def paths(model: type[BaseModel], prefix: str = ""):  # type: ignore[no-untyped-def]
        from leakguard.config_reference import _model_of

        for name, f in model.model_fields.items():
            key = prefix + (f.alias or name)
            sub = _model_of(f.annotation)
            if sub is not None:
                inner = key + ".*" if "list" in str(f.annotation) else key
                yield from paths(sub, inner + ".")
                if "list" not in str(f.annotation):
                    continue
            yield key

    for p in paths(ServiceConfig):
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{p}` |")), None)
        assert row is not None, p
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 5 and all(cells[:4]) and cells[4], row


def test_config_reference_command(tmp_path: Path) -> None:
    out = tmp_path / "c.md"
    assert main(["config", "reference", "-o", str(out)]) == 0
    assert out.read_text("utf-8") == reference()
