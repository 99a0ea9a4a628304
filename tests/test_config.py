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
