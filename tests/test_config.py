"""Service configuration: defaults, validation with line numbers, secrets, overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from leakguard.commands.serve import apply_overrides
from leakguard.config import ConfigError, ServiceConfig, load_config, parse_config_text

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_run_without_a_file() -> None:
    cfg = load_config(None)
    assert [(lc.kind, lc.listen) for lc in cfg.listeners] == [("plain", "127.0.0.1:2525")]
    assert cfg.upstream is None and cfg.web.listen == "127.0.0.1:8025"
    assert cfg.store_url().startswith("sqlite+aiosqlite:///")
    assert cfg.store_url().endswith("leakguard-data/leakguard.db")


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "examples" / "leakguard.yaml")
    assert cfg.hostname == "mail-guard.city.example.lg.jp"
    assert cfg.holds.command_address == "leakguard-hold@city.example.lg.jp"


def test_unknown_key_and_bad_values_name_line_and_column() -> None:
    text = (
        "hostname: x\nlisteners:\n  - kind: plain\n    lisen: 1.2.3.4:25\n"
        "limits:\n  idle_timeout: soon\n"
    )
    with pytest.raises(ConfigError) as ei:
        parse_config_text(text, "svc.yaml")
    msgs = [str(p) for p in ei.value.problems]
    assert any(m.startswith("svc.yaml:4:5:") and "unknown key 'lisen'" in m for m in msgs), msgs
    assert any(m.startswith("svc.yaml:6:") and "not a duration" in m for m in msgs), msgs
    with pytest.raises(ConfigError) as ei:
        parse_config_text("listeners: [{kind: plain, trusted_networks: [10.0.0.300/8]}]", "c")
    assert "trusted_networks" in str(ei.value)
    with pytest.raises(ConfigError):
        parse_config_text("upstream: {port: 25}", "c")  # host is required
    with pytest.raises(ConfigError):
        parse_config_text("- a\n- b\n", "c")


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config_text(
        "upstream: {host: smtp.example, password: hunter2}\n"
        "store: {url: 'postgresql://u:pw@db/x'}\n"
    )
    assert "hunter2" not in repr(cfg) and "pw@db" not in repr(cfg)
    assert cfg.upstream_password() == "hunter2"
    monkeypatch.setenv("LEAKGUARD_UPSTREAM_PASSWORD", "fromenv")
    assert cfg.upstream_password() == "fromenv"
    assert cfg.store_url() == "postgresql://u:pw@db/x"


def test_flags_override_the_file(tmp_path: Path) -> None:
    cfg = ServiceConfig()
    args = argparse.Namespace(
        data_dir=tmp_path,
        policy=Path("p.yaml"),
        org=None,
        listen="0.0.0.0:2526",
        upstream="127.0.0.1:2500",
        web_listen=None,
        log_json=True,
        log_level=None,
    )
    out = apply_overrides(cfg, args)
    assert out.listeners[0].listen == "0.0.0.0:2526" and out.listeners[0].kind == "plain"
    assert out.upstream is not None and (out.upstream.host, out.upstream.port) == (
        "127.0.0.1",
        2500,
    )
    assert out.upstream.tls == "none"  # loopback smarthost
    assert out.policy == "p.yaml" and out.data_path == tmp_path and out.log.json_ is True
    args.upstream = "smtp.example.jp:587"
    assert apply_overrides(cfg, args).upstream.tls == "starttls"  # type: ignore[union-attr]


PLAINTEXT_AUTH = (
    "hostname: x\nauth:\n  mode: upstream\n{allow}upstream:\n  host: {host}\n  tls: {tls}\n"
)


def test_pass_through_auth_in_clear_is_refused_with_file_and_line() -> None:
    text = PLAINTEXT_AUTH.format(allow="", host="smtp.example.net", tls="none")
    with pytest.raises(ConfigError) as ei:
        parse_config_text(text, "svc.yaml")
    (p,) = ei.value.problems
    assert str(p).startswith("svc.yaml:5:") and "in clear" in str(p), str(p)
    # also for a loopback upstream unless explicitly allowed
    with pytest.raises(ConfigError):
        parse_config_text(PLAINTEXT_AUTH.format(allow="", host="127.0.0.1", tls="none"))
    # the explicit switch is for loopback only
    allow = "  allow_plaintext_auth: true\n"
    with pytest.raises(ConfigError) as ei:
        parse_config_text(PLAINTEXT_AUTH.format(allow=allow, host="smtp.example.net", tls="none"))
    assert "loopback" in str(ei.value)
    for host in ("127.0.0.1", "localhost", "::1"):
        cfg = parse_config_text(PLAINTEXT_AUTH.format(allow=allow, host=f"'{host}'", tls="none"))
        assert cfg.auth.allow_plaintext_auth and cfg.upstream is not None
    # TLS to the upstream, or another auth mode, is fine
    for tls in ("starttls", "implicit"):
        parse_config_text(PLAINTEXT_AUTH.format(allow="", host="smtp.example.net", tls=tls))
    parse_config_text(
        "auth:\n  mode: users_file\nupstream:\n  host: smtp.example.net\n  tls: none\n"
    )


def test_service_refuses_plaintext_pass_through_after_overrides(tmp_path: Path) -> None:
    from leakguard.config import UpstreamConfig
    from leakguard.service import Service

    cfg = parse_config_text(
        PLAINTEXT_AUTH.format(allow="", host="smtp.example.net", tls="starttls")
    ).model_copy(update={"upstream": UpstreamConfig(host="10.1.2.3", port=25, tls="none")})
    svc = Service(config=cfg, policy_path=tmp_path / "p.yaml")
    with pytest.raises(ValueError, match="in clear"):
        svc._make_authenticator()


# ---------------------------------------------------------------- link base URL (issue 10)


def _serve_args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "config": None,
        "listen": None,
        "upstream": None,
        "policy": None,
        "org": None,
        "data_dir": None,
        "web_listen": None,
        "base_url": None,
        "log_json": None,
        "log_level": None,
    }
    base.update(kw)
    return argparse.Namespace(**base)


def test_link_base_url_follows_the_web_listener() -> None:
    from leakguard.config import derived_base_url

    cfg = apply_overrides(ServiceConfig(), _serve_args(web_listen="127.0.0.1:9125"))
    assert cfg.link_base_url() == "http://127.0.0.1:9125"
    assert derived_base_url("127.0.0.1:0", port=40123) == "http://127.0.0.1:40123"
    assert derived_base_url("[::1]:8025") == "http://[::1]:8025"
    assert derived_base_url("0.0.0.0:8025", "guard.city.example.lg.jp") == (
        "http://guard.city.example.lg.jp:8025"
    )
    cfg = apply_overrides(
        ServiceConfig(),
        _serve_args(web_listen="127.0.0.1:9125", base_url="https://review.city.example.lg.jp/"),
    )
    assert cfg.link_base_url() == "https://review.city.example.lg.jp"


@pytest.mark.parametrize(
    ("base", "listen", "ok"),
    [
        ("http://127.0.0.1:8025", "127.0.0.1:9125", False),  # the wrong links
        ("http://localhost:9125", "127.0.0.1:9125", True),
        ("http://localhost:9125/", "0.0.0.0:9125", True),
        ("http://127.0.0.1:9125", "192.0.2.10:9125", False),  # not listening on loopback
        ("http://127.0.0.1", "127.0.0.1:80", True),
        ("https://review.city.example.lg.jp", "127.0.0.1:9125", True),  # behind a proxy
        ("review.example.jp", "127.0.0.1:9125", False),  # not a URL
        ("http://[::1]:9125", "[::1]:9125", True),
    ],
)
def test_loopback_base_url_must_reach_the_listener(base: str, listen: str, ok: bool) -> None:
    from leakguard.config import base_url_problem

    problem = base_url_problem(base, listen)
    assert (problem is None) == ok, problem
    if problem is not None:
        ja, en = problem
        assert "web.base_url" in ja and "web.base_url" in en


def test_serve_refuses_a_base_url_that_cannot_reach_the_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leakguard.commands import serve

    monkeypatch.setenv("LEAKGUARD_LANG", "ja")
    cfg = tmp_path / "lg.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nweb:\n  base_url: http://127.0.0.1:8025\n")
    rc = serve.run(_serve_args(config=cfg, web_listen="127.0.0.1:9125"))
    err = capsys.readouterr().err
    assert rc == 2
    assert "起動できませんでした" in err and "127.0.0.1:9125" in err
    assert not (tmp_path / "data").exists()  # refused before creating anything
    monkeypatch.setenv("LEAKGUARD_LANG", "en")
    assert serve.run(_serve_args(config=cfg, web_listen="127.0.0.1:9125")) == 2
    assert "would not open" in capsys.readouterr().err


def test_japanese_config_errors() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config_text("web:\n  lisen: 1\nlimits:\n  max_recipients: many\n", "svc.yaml")
    ja = [p.text("ja") for p in ei.value.problems]
    assert ja[0].startswith("svc.yaml:2:3: web.lisen: 不明なキー 'lisen' です。使えるキー: listen")
    assert ja[1].startswith("svc.yaml:4:") and "整数を書いてください" in ja[1]


@pytest.mark.parametrize(
    ("text", "line", "ja_word"),
    [
        ("listeners: [{kind: plain, listen: 'nohostport'}]", 1, "HOST:PORT の形で"),
        ("listeners: [{kind: plain, listen: 'h:99999'}]", 1, "ポート番号"),
        (
            "listeners: [{kind: plain, trusted_networks: [10.0.0.300/8]}]",
            1,
            "ネットワークではありません",
        ),
        (
            "auth: {mode: upstream}\nupstream: {host: smtp.example.jp, tls: none}",
            2,
            "暗号化されずに",
        ),
        ("limits: {idle_timeout: soon}", 1, "時間の長さではありません"),
        ("language: fr", 1, "次のどれかを書いてください: 'ja', 'en'"),
        ("web:\n  metrics_networks: [prometheus-host]", 2, "ネットワークではありません"),
        ("holds:\n  timezone: Tokyo/Japan", 2, "タイムゾーンではありません"),
        ("holds:\n  language: fr", 2, "ja か en を書いてください"),
        ("log: {json: maybe}", 1, "true か false"),
        ("web:\n  listen: a\n listen2: b", 3, "字下げ"),
    ],
)
def test_every_config_message_is_japanese_under_ja(text: str, line: int, ja_word: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config_text(text, "c.yaml")
    (p,) = ei.value.problems
    assert p.line == line, p
    ja = p.text("ja")
    assert ja_word in ja, ja
    for english in ("expected", "Input should", "does not appear", "would send", " or "):
        assert english not in ja.split(": ", 2)[-1], ja


def test_workers_from_the_file_and_the_flag() -> None:
    import os

    from leakguard.cli import main
    from leakguard.commands.serve import count

    assert ServiceConfig().worker_count() == 1
    assert parse_config_text("workers: 3\n").worker_count() == 3
    assert parse_config_text("workers: auto\n").worker_count() == max(1, os.cpu_count() or 1)
    for bad in ("workers: 0\n", "workers: 65\n", "workers: many\n"):
        with pytest.raises(ConfigError) as err:
            parse_config_text(bad, "x.yaml")
        assert "x.yaml:1" in err.value.problems[0].text("en")
    with pytest.raises(ConfigError) as err:
        parse_config_text("workers: 0\n", "x.yaml")
    assert "1 から 64" in err.value.problems[0].text("ja")
    assert count("auto") == "auto" and count("2") == 2
    for bad in ("0", "65", "two"):
        with pytest.raises(ValueError):
            count(bad)
    cfg = apply_overrides(parse_config_text("workers: 4\n"), _serve_args(workers=2))
    assert cfg.worker_count() == 2
    assert apply_overrides(cfg, _serve_args()).worker_count() == 2  # no flag: the file's
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])
