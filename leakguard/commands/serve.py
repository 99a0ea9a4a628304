"""``leakguard serve``: run the relay and the web server.

With no options it runs the embedded default: a plain SMTP listener on 127.0.0.1:2525
(loopback trusted), the web on 127.0.0.1:8025, SQLite in ./leakguard-data and delivery to
the maildir ./leakguard-data/maildir/new/ (no upstream configured).

``--workers N`` (or ``workers:`` in the configuration) runs N worker processes on the same
ports under one supervising parent (leakguard/supervisor.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from leakguard.config import (
    ConfigError,
    ListenerConfig,
    ServiceConfig,
    UpstreamConfig,
    base_url_problem,
    find_config_file,
    load_config,
    split_host_port,
)
from leakguard.i18n import lang_from_env

_TEXT = {
    "config": ("設定ファイルに誤りがあります:", "The configuration file has errors:"),
    "policy": ("ポリシーを読み込めません:", "The policy cannot be loaded:"),
    "start": ("起動できませんでした:", "Could not start:"),
    "flag": ("指定が正しくありません:", "Invalid option:"),
}


def _t(key: str, lang: str) -> str:
    ja, en = _TEXT[key]
    return ja if lang == "ja" else en


def count(value: str) -> int | str:
    """``--workers``: a number from 1 to 64, or ``auto`` (one per CPU core)."""
    if value == "auto":
        return value
    n = int(value)  # ValueError: argparse says "invalid count value"
    if not 1 <= n <= 64:
        raise ValueError(value)
    return n


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the SMTP relay and the web server",
        description="Run the SMTP relay and the web server. Flags override the config file.",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration (YAML); default $LEAKGUARD_CONFIG, then "
        "/etc/leakguard/leakguard.yaml when it exists, else built-in defaults",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="plain SMTP listener (trusted networks only; loopback is trusted)",
    )
    p.add_argument(
        "--upstream",
        metavar="HOST:PORT",
        help="smarthost to relay to (default: local maildir under the data dir)",
    )
    p.add_argument("--policy", type=Path, metavar="FILE", help="policy file")
    p.add_argument("--org", type=Path, metavar="FILE", help="organisation file")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory")
    p.add_argument("--web-listen", metavar="HOST:PORT", help="web server address")
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="public URL of the web server used in notice links "
        "(default: derived from --web-listen)",
    )
    p.add_argument(
        "--workers",
        type=count,
        metavar="N",
        help="worker processes serving the same ports (1-64, or 'auto': one per CPU core)",
    )
    p.add_argument(
        "--log-json",
        action="store_true",
        default=None,
        help="log JSON lines (default: JSON unless on a terminal)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="least important level logged",
    )
    p.set_defaults(func=run)


def apply_overrides(cfg: ServiceConfig, args: argparse.Namespace) -> ServiceConfig:
    data = cfg.model_dump(by_alias=True, exclude_unset=False)
    # SecretStr values must survive the round trip
    updates: dict[str, Any] = {}
    if args.data_dir is not None:
        updates["data_dir"] = str(args.data_dir)
    if args.policy is not None:
        updates["policy"] = str(args.policy)
    if args.org is not None:
        updates["org"] = str(args.org)
    if args.listen:
        split_host_port(args.listen)
        listeners = [lc for lc in cfg.listeners if lc.kind != "plain"]
        old_plain = next((lc for lc in cfg.listeners if lc.kind == "plain"), None)
        new = ListenerConfig(
            kind="plain",
            listen=args.listen,
            trusted_networks=old_plain.trusted_networks
            if old_plain
            else ListenerConfig().trusted_networks,
        )
        updates["listeners"] = [new, *listeners]
    if args.upstream:
        host, port = split_host_port(args.upstream, 25)
        if cfg.upstream is not None:
            updates["upstream"] = cfg.upstream.model_copy(update={"host": host, "port": port})
        else:
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            updates["upstream"] = UpstreamConfig(
                host=host,
                port=port,
                tls="none" if local else ("implicit" if port == 465 else "starttls"),
            )
    if getattr(args, "workers", None) is not None:
        updates["workers"] = args.workers
    if args.web_listen:
        split_host_port(args.web_listen)
        updates["web"] = cfg.web.model_copy(update={"listen": args.web_listen})
    if getattr(args, "base_url", None):
        web = updates.get("web", cfg.web)
        updates["web"] = web.model_copy(update={"base_url": args.base_url})
    if args.log_json or args.log_level:
        log = cfg.log.model_copy()
        if args.log_json:
            log = log.model_copy(update={"json_": True})
        if args.log_level:
            log = log.model_copy(update={"level": args.log_level})
        updates["log"] = log
    del data
    return cfg.model_copy(update=updates)


def run(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    try:
        cfg = load_config(find_config_file(args.config))
    except ConfigError as exc:
        print(_t("config", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
        return 2
    try:
        cfg = apply_overrides(cfg, args)
    except ValueError as exc:
        print(f"{_t('flag', lang)} {exc}", file=sys.stderr)
        return 2
    problem = base_url_problem(cfg.web.base_url, cfg.web.listen)
    if problem is not None:
        print(_t("start", lang), file=sys.stderr)
        print(f"  {problem[0] if lang == 'ja' else problem[1]}", file=sys.stderr)
        return 2
    from leakguard.logging import configure_logging

    configure_logging(json=cfg.log.json_, level=cfg.log.level)
    workers = cfg.worker_count()
    if workers > 1:
        from leakguard.supervisor import use_metrics_dir

        use_metrics_dir(cfg)  # before prometheus_client is imported (by leakguard.service)
    from leakguard.service import Service, default_policy_path

    policy = Path(cfg.policy) if cfg.policy else default_policy_path()
    org = Path(cfg.org) if cfg.org else None
    try:
        from leakguard.engine import Engine

        engine = Engine.from_files(policy, org)
    except Exception as exc:
        print(_t("policy", lang), file=sys.stderr)
        problems = getattr(exc, "problems", None)
        for p in problems or ():
            print(f"  {p.text(lang)}", file=sys.stderr)
        if not problems:
            print(f"  {exc}", file=sys.stderr)
        return 2
    # Everything the service creates (store, held mail, secrets, maildir) is owner-only:
    # held mail is personal data.
    os.umask(0o077)
    # the policy's and organisation's indexes are built: freeze them before the loop runs
    # (a full collection here takes ~0.2 s; inside the loop it would stall the listeners);
    # worker processes forked later inherit the frozen heap and the thresholds
    from leakguard.runtime import run as run_loop
    from leakguard.runtime import settle_heap

    settle_heap()
    if workers > 1:
        return _run_workers(cfg, policy, org, engine, workers, lang)
    service = Service(config=cfg, policy_path=policy, org_path=org, engine=engine)
    try:
        run_loop(service.run(), cfg.event_loop)
    except (OSError, ValueError) as exc:
        print(f"{_t('start', lang)} {exc}", file=sys.stderr)
        return 1
    return 0


def _run_workers(
    cfg: ServiceConfig, policy: Path, org: Path | None, engine: Any, workers: int, lang: str
) -> int:
    """Pre-fork: the parent prepares, binds and supervises; each worker runs a Service."""
    from leakguard.logging import get_logger
    from leakguard.supervisor import Supervisor, run_worker

    def child(sup: Supervisor, index: int, pipe: int) -> int:
        try:
            return run_worker(sup, index, pipe)
        except (OSError, ValueError) as exc:
            print(f"{_t('start', lang)} {exc}", file=sys.stderr)
            return 1

    sup = Supervisor(
        config=cfg,
        policy_path=policy,
        org_path=org,
        engine=engine,
        workers=workers,
        log=get_logger("leakguard"),
        child_main=child,
    )
    try:
        sup.prepare()
    except (OSError, ValueError) as exc:
        print(f"{_t('start', lang)} {exc}", file=sys.stderr)
        return 1
    return sup.run()
