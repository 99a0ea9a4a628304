"""Wiring for ``leakguard serve``: store, engine, delivery, holds, SMTP listeners and web,
all in one event loop.

Signals: SIGTERM/SIGINT stop gracefully (listeners stop accepting, in-flight transactions
and deliveries finish, then the store closes); SIGHUP reloads the policy (an invalid policy
keeps the running one and the reason is logged).

With ``serve --workers N`` (leakguard/supervisor.py) one ``Service`` runs in each worker
process on listening sockets the parent bound (``listen_sockets``); worker 0 alone runs the
jobs that must happen once per service (hold timers, journal pruning, the audit report).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import signal
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leakguard import budget, sdnotify, stepproc
from leakguard.config import (
    ServiceConfig,
    base_url_problem,
    lease_problem,
    plaintext_auth_problem,
    split_host_port,
)
from leakguard.delivery import Delivery, DeliverySettings, UpstreamTransport
from leakguard.delivery.maildir import MaildirTransport
from leakguard.delivery.service import SendingQueue
from leakguard.delivery.smtp import SmtpTransport, client_tls_context, try_login
from leakguard.holds.service import HoldService
from leakguard.logging import get_logger
from leakguard.message.rewrite import bcc_rewrite
from leakguard.metrics import Metrics, metrics_routes
from leakguard.officer.audit_report import audit_reporter
from leakguard.officer.bcc_notice import bcc_notifier
from leakguard.officer.incidents import IncidentService
from leakguard.officer.links import ReportLinks
from leakguard.policy.loader import files_version
from leakguard.relay.actions import Decider, Relay, RelaySettings
from leakguard.relay.auth import (
    Authenticator,
    Throttle,
    UpstreamAuthenticator,
    UsersFileAuthenticator,
)
from leakguard.relay.balance import BalancedServer, WorkerLoad
from leakguard.relay.journal import JournalSettings, JournalWriter
from leakguard.relay.server import ListenerRuntime, ListenerSpec, server_tls_context, start_listener
from leakguard.store import SqlStore, open_store
from leakguard.web.app import create_app


def _web_server_class() -> Any:
    import uvicorn

    class WebServer(uvicorn.Server):
        """uvicorn without its own signal handling: the service owns SIGTERM/SIGHUP."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return WebServer


def default_policy_path() -> Path:
    from leakguard.policy.loader import default_policy_path as dp

    return dp()


def web_secret(config: ServiceConfig, *, create: bool = True) -> str:
    """Env LEAKGUARD_WEB_SECRET, the configured secret, or one kept in the data directory.

    ``create=False`` (administrative commands) never writes the file: without one, a
    throw-away secret is returned (those commands issue no links).
    """
    env = os.environ.get("LEAKGUARD_WEB_SECRET")
    if env:
        return env
    if config.web.secret is not None:
        return config.web.secret.get_secret_value()
    path = config.data_path / "web-secret"
    try:
        return path.read_text("ascii").strip()
    except FileNotFoundError:
        if not create:
            return secrets.token_urlsafe(32)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def retention_key(config: ServiceConfig, *, create: bool = True) -> bytes | None:
    """The key sealing retained mail: env LEAKGUARD_RETENTION_KEY, the configured key, or
    one kept in the data directory (``retention-key``, 0600). ``create=False``: None when
    there is none (administrative commands never make one: it could not open old mail)."""
    from leakguard.store.sealing import decode_key, encode_key, new_key

    env = os.environ.get("LEAKGUARD_RETENTION_KEY")
    if env:
        return decode_key(env)
    if config.retention.key is not None:
        return decode_key(config.retention.key.get_secret_value())
    path = config.data_path / "retention-key"
    try:
        return decode_key(path.read_text("ascii"))
    except FileNotFoundError:
        if not create:
            return None
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(encode_key(key) + "\n")
    return key


def journal_writer(config: ServiceConfig, store: SqlStore, log: Any, metrics: Any) -> JournalWriter:
    from leakguard.store.sealing import Sealer

    r = config.retention
    sealer = Sealer(k) if r.mode == "encrypted" and (k := retention_key(config)) else None
    return JournalWriter(
        store,
        JournalSettings(
            mode=r.mode,
            retain_seconds=config.seconds(r.days),
            journal_seconds=config.seconds(r.journal_days),
            max_message_size=r.max_message_size,
            buffer_bytes=r.buffer_bytes,
        ),
        sealer=sealer,
        executor=None,
        log=log,
        on_error=lambda kind: metrics.journal_errors.labels(kind).inc(),
    )


class SharedSecretError(ValueError):
    """Relays sharing one store with different secrets (message in Japanese and English)."""


# a listener's accepting side: asyncio's server, or the workers' balanced accept loop
Listening = asyncio.Server | BalancedServer

# leakguard_meta keys: a keyed fingerprint of each secret every relay must share
_SECRET_MARKS = {"web": "fingerprint.web_secret", "retention": "fingerprint.retention_key"}


def secret_fingerprint(secret: bytes) -> str:
    """A keyed fingerprint (HMAC of a fixed label under the secret): equal secrets give
    equal fingerprints; the fingerprint does not reveal the secret."""
    return hmac.new(secret, b"leakguard shared-secret check v1", hashlib.sha256).hexdigest()[:32]


async def shared_secret_problem(config: ServiceConfig, store: SqlStore) -> tuple[str, str] | None:
    """Why this relay's secrets differ from those of the relays already sharing ``store``
    ((ja, en)), or None. The first relay records a fingerprint of its web secret (links,
    admin sessions) and retention key (sealed mail); a later one with another secret would
    issue links the others refuse and seal mail the others cannot open."""
    secrets_now: dict[str, bytes] = {"web": web_secret(config).encode()}
    if config.retention.mode == "encrypted":
        sealing = retention_key(config)
        if sealing is not None:
            secrets_now["retention"] = sealing
    for name, secret in secrets_now.items():
        mine = secret_fingerprint(secret)
        theirs = await store.settle_value(_SECRET_MARKS[name], mine)
        if hmac.compare_digest(mine, theirs):
            continue
        what_ja, what_en, env, field = {
            "web": ("Web の秘密鍵", "web secret", "LEAKGUARD_WEB_SECRET", "web.secret"),
            "retention": (
                "保存メールの暗号鍵",
                "retention key",
                "LEAKGUARD_RETENTION_KEY",
                "retention.key",
            ),
        }[name]
        return (
            f"このストアを共有する他の leakguard と{what_ja}が違います。リンク・管理者の"
            f"ログイン・保存したメールが他のノードで使えなくなるため起動しません。すべての"
            f"ノードで同じ値を {field} (または環境変数 {env}) に設定してください。意図して"
            f"鍵を替えた場合は、全ノードを止めてから leakguard_meta の行 "
            f"'{_SECRET_MARKS[name]}' を削除してください。",
            f"This relay's {what_en} differs from that of the other leakguard relays sharing "
            f"this store: links, admin logins and retained mail would not work across nodes, "
            f"so it does not start. Set the same value in {field} (or the {env} environment "
            f"variable) on every node. If you changed it on purpose, stop every node and "
            f"delete the row '{_SECRET_MARKS[name]}' from leakguard_meta.",
        )
    return None


class DataDirError(ValueError):
    """The data directory cannot be created or written (message in Japanese and English)."""


def data_dir_problem(path: Path) -> tuple[str, str] | None:
    """Why ``path`` cannot serve as the data directory, in Japanese and English, or None.

    Honest for root too (root passes every permission bit, so ``os.access`` would say yes
    on a read-only mount): it creates the directory if needed and writes, fsyncs and removes
    a probe file, exactly what the store and the holds do next."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
        probe = path / f".write-probe-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                probe.unlink()
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "")
        reason = f"{code}: {exc.strerror}" if code and exc.strerror else str(exc)
        return (
            f"データディレクトリ {path} を使えません ({reason})。保留したメール、ストア、"
            "署名用の鍵をここに書き込みます。サービスを実行するユーザーが書き込めるディレクトリを "
            "data_dir (または --data-dir) に指定するか、このディレクトリの所有者と権限を"
            "直してください。",
            f"Cannot use the data directory {path} ({reason}). leakguard writes held mail, "
            "its store and its signing key there. Set data_dir (or --data-dir) to a directory "
            "the service user can write, or fix this directory's owner and permissions.",
        )
    return None


def private_dir(path: Path, log: Any = None) -> None:
    """Create the data directory owner-only (0700); tighten one that others can read.

    Held mail is personal data: nobody but the service account may list or read it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o700)
            if log is not None:
                log.warning("data_dir_permissions_tightened", path=str(path), was=oct(mode))
    except PermissionError:  # not ours (e.g. a mounted volume): leave it, say so
        if log is not None:
            log.warning("data_dir_permissions_unchanged", path=str(path))


def private_sqlite_files(url: str) -> None:
    """Owner-only modes (0600) for a SQLite store, its -wal/-shm files and writer lock."""
    if not url.startswith("sqlite") or ":///" not in url:
        return
    db = url.split(":///", 1)[1].split("?", 1)[0]
    if not db or db == ":memory:":
        return
    for suffix in ("", "-wal", "-shm", "-journal", "-writer.lock"):
        f = Path(db + suffix)
        try:
            if stat.S_IMODE(f.stat().st_mode) & 0o077:
                os.chmod(f, 0o600)
        except OSError:
            continue


@dataclass
class Service:
    config: ServiceConfig
    policy_path: Path
    org_path: Path | None = None
    engine: Decider | None = None  # tests may pass a stand-in; default Engine.from_files
    transport: UpstreamTransport | None = None  # tests may pass one; default from config
    log: Any = field(default_factory=lambda: get_logger("leakguard"))
    # ``serve --workers N``: this process's index, how many there are, and the listening
    # sockets the parent bound (listener name such as "plain-0", and "web")
    worker_index: int = 0
    workers: int = 1
    listen_sockets: dict[str, socket.socket] | None = None
    sent_filter: Any = None  # relay.sent_filter.SentFilter shared by the workers
    load_board: Any = None  # relay.balance.LoadBoard: open connections of every worker

    def __post_init__(self) -> None:
        self.metrics = Metrics()
        budget.use_metrics(self.metrics.step_budget_exceeded)  # issue 12: per-step pools
        self.store: SqlStore | None = None
        self._load: WorkerLoad | None = None
        self.delivery: Delivery | None = None
        self.relay: Relay | None = None
        self.holds: HoldService | None = None
        self.report_links: ReportLinks | None = None
        self.incidents: IncidentService | None = None
        self.servers: list[tuple[Listening, ListenerRuntime, ListenerSpec]] = []
        self.web_server: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self.started_at: datetime | None = None
        self.smtp_ports: dict[str, int] = {}
        self.web_port: int | None = None
        self.reload_error: str | None = None
        self.reload_failed_at: datetime | None = None

    @property
    def node_id(self) -> str:
        """Stable name of this relay process in the shared store (the delivery queue's
        ``claimed_by``): ``config.node_id`` (default: host and data-directory hash) and, with
        several worker processes, ``:w<index>``. The same after a restart of the same
        worker, different for siblings and other hosts."""
        ident = self.config.node_identity()
        return f"{ident}:w{self.worker_index}" if self.workers > 1 else ident

    def _socket(self, name: str) -> socket.socket | None:
        return (self.listen_sockets or {}).get(name)

    def _worker_load(self) -> WorkerLoad | None:
        """This worker's open connections on the workers' board (one count for all its
        listeners); None in a single process."""
        if self.load_board is None:
            return None
        if self._load is None:
            self._load = WorkerLoad(self.load_board, self.worker_index)
        return self._load

    # ------------------------------------------------------------------ start

    def _make_engine(self) -> Decider:
        from leakguard.engine import Engine

        engine: Decider = Engine.from_files(self.policy_path, self.org_path, self.config.extract)
        return engine

    def _make_transport(self) -> UpstreamTransport:
        up = self.config.upstream
        if up is None:
            md = self.config.maildir_path()
            self.log.warning(
                "no_upstream",
                msg=f"no upstream configured: mail is delivered to the local maildir {md}/new/ "
                "(demo mode; set upstream: in the config or --upstream HOST:PORT)",
                maildir=str(md),
            )
            return MaildirTransport(md)
        ctx = client_tls_context(verify=up.verify, ca_file=up.ca_file) if up.tls != "none" else None
        return SmtpTransport(
            up.host,
            up.port,
            tls=up.tls,
            tls_context=ctx,
            username=up.username,
            password=self.config.upstream_password(),
            timeout=self.config.seconds(up.timeout),
            pool_size=up.pool_size,
            helo_name=up.helo_name or self.config.hostname,
        )

    def _make_authenticator(self) -> Authenticator | None:
        auth = self.config.auth
        if auth.mode == "none":
            return None
        if auth.mode == "upstream":
            up = self.config.upstream
            if up is None:
                raise ValueError("auth.mode 'upstream' needs an upstream")
            problem = plaintext_auth_problem(auth, up)  # also after command-line overrides
            if problem:
                raise ValueError(problem)
            ctx = (
                client_tls_context(verify=up.verify, ca_file=up.ca_file)
                if up.tls != "none"
                else None
            )

            async def check(login: str, password: str) -> bool:
                return await try_login(
                    up.host, up.port, tls=up.tls, tls_context=ctx, username=login, password=password
                )

            return UpstreamAuthenticator(
                check, cache_seconds=self.config.seconds(auth.cache_upstream_success)
            )
        return UsersFileAuthenticator(self.config.users_file_path())

    def _make_report_links(self) -> ReportLinks:
        cfg = self.config
        return ReportLinks(
            web_secret(cfg),
            base_url=cfg.link_base_url(),
            # valid while the mail is retained (a day's grace: the link may be opened late)
            max_age_seconds=int(cfg.seconds(cfg.retention.days)) + 86400,
        )

    def _make_holds(self, store: SqlStore, engine: Decider) -> HoldService:
        holds = HoldService(
            store,
            self.config.holds,
            self.config.web,
            secret=web_secret(self.config),
            organization=lambda: engine.policy.organization,
            bcc_rewrite=bcc_rewrite,
            base_url=self.config.link_base_url(),
            report_links=self.report_links,
        )
        holds.background_notices = True  # the 250 waits for the hold's commit only
        return holds

    def _make_incidents(self, store: SqlStore, engine: Decider) -> IncidentService:
        cfg = self.config

        def rules() -> list[str] | None:
            found = getattr(engine.policy, "rules", None)
            return [str(r.id) for r in found] if found is not None else None

        return IncidentService(
            store,
            cfg.incidents,
            organization=lambda: engine.policy.organization,
            notice_from=cfg.holds.notice_from,
            links=self.report_links,  # one signer for notices, pages and the report route
            log=self.log,
            language=cfg.holds.language,
            timezone=cfg.holds.timezone,
            base_url=cfg.link_base_url(),
            policy_rules=rules,
            lookback=timedelta(seconds=cfg.seconds(cfg.retention.days)),
        )

    async def start(self) -> None:
        cfg = self.config
        problem = base_url_problem(cfg.web.base_url, cfg.web.listen)
        if problem is not None:
            raise ValueError(problem[0] + "\n" + problem[1])
        lease = lease_problem(cfg)
        if lease is not None:
            raise ValueError(lease[0] + "\n" + lease[1])
        bad_dir = data_dir_problem(cfg.data_path)  # before anything is started or written
        if bad_dir is not None:
            raise DataDirError(bad_dir[0] + "\n" + bad_dir[1])
        private_dir(cfg.data_path, self.log)
        engine = self.engine or self._make_engine()
        self.engine = engine
        start_extraction = getattr(engine, "start_extraction", None)
        if start_extraction is not None:
            start_extraction()  # worker processes up before the first attachment arrives
        # the content steps' worker processes (issue 12): this process's own (a worker of
        # ``serve --workers N`` starts its own fork server here, after the fork); the fork
        # server starts in the background, the workers of a step on its first use
        stepproc.configure(cfg.steps.memory_mb())
        self._tasks.append(
            asyncio.create_task(asyncio.to_thread(stepproc.start, ()), name="steps-start")
        )
        store = await open_store(cfg.store_url())
        self.store = store
        private_sqlite_files(cfg.store_url())
        if store.dialect != "sqlite":  # a store other relays may share: same secrets?
            mismatch = await shared_secret_problem(cfg, store)
            if mismatch is not None:
                await store.close()
                self.store = None
                raise SharedSecretError(mismatch[0] + "\n" + mismatch[1])
        transport = self.transport or self._make_transport()
        self.transport = transport
        delivery = Delivery(
            store,
            transport,
            DeliverySettings(
                queue_on_temporary_failure=cfg.delivery.queue_on_temporary_failure,
                workers=cfg.delivery.workers,
                retry_base=cfg.seconds(cfg.delivery.retry_base),
                retry_max=cfg.seconds(cfg.delivery.retry_max),
                give_up_after=cfg.seconds(cfg.delivery.give_up_after),
                max_attempts=cfg.delivery.max_attempts,
                poll_interval=cfg.seconds(cfg.delivery.poll_interval),
                stale_claim_after=cfg.seconds(cfg.delivery.stale_claim_after),
                upstream_timeout=cfg.seconds(cfg.limits.upstream_timeout),
                hostname=cfg.hostname,
            ),
            metrics=self.metrics,
            log=self.log,
            worker_id=self.node_id,
        )
        self.delivery = delivery
        store.on_enqueue.append(delivery.wake)
        self.report_links = self._make_report_links()
        self.holds = self._make_holds(store, engine)
        # notices queued claimed and tried at once (no claim query, no re-read)
        self.holds.sender = delivery.enqueue_and_send
        self.incidents = self._make_incidents(store, engine)
        self.holds.on_report.append(self.incidents.on_report)
        self.holds.on_resolved.append(self.incidents.on_resolved)
        authenticator = self._make_authenticator()
        self.relay = Relay(
            engine=engine,
            store=store,
            delivery=delivery,
            holds=self.holds,
            settings=RelaySettings(
                language=cfg.language,
                check_from_header=cfg.auth.check_from_header,
                allowed_senders=cfg.auth.allowed_senders,
                bcc_header=cfg.bcc.header,
                bcc_header_to_external=cfg.bcc.header_to_external,
                decide_timeout=cfg.seconds(cfg.limits.decide_timeout),
                hostname=cfg.hostname,
                shared_store=self.workers > 1,
            ),
            metrics=self.metrics,
            log=self.log,
            senders_of=authenticator.senders_of if authenticator is not None else lambda _p: (),
            journal=journal_writer(cfg, store, self.log, self.metrics),
            bcc_notices=bcc_notifier(cfg, SendingQueue(delivery), self.report_links, self.log),
        )
        self.relay.reports = self.incidents
        self.relay.sent_filter = self.sent_filter
        tls_ctx: ssl.SSLContext | None = None
        if cfg.tls.cert_file and cfg.tls.key_file:
            tls_ctx = server_tls_context(cfg.tls.cert_file, cfg.tls.key_file, cfg.tls.min_version)
        throttle = Throttle()
        for i, lc in enumerate(cfg.listeners):
            host, port = split_host_port(lc.listen)
            spec = ListenerSpec(
                name=f"{lc.kind}-{i}",
                kind=lc.kind,
                host=host,
                port=port,
                trusted_networks=lc.trusted_networks,
                max_connections=lc.max_connections,
                proxy_protocol=lc.proxy_protocol,
                proxy_trusted=lc.proxy_trusted,
            )
            server, runtime = await start_listener(
                spec,
                relay=self.relay,
                hostname=cfg.hostname,
                tls_context=tls_ctx,
                authenticator=authenticator,
                throttle=throttle,
                metrics=self.metrics,
                log=self.log,
                data_size_limit=cfg.limits.max_message_size,
                max_recipients=cfg.limits.max_recipients,
                idle_timeout=cfg.seconds(cfg.limits.idle_timeout),
                line_length_limit=cfg.limits.line_length_limit,
                sock=self._socket(spec.name),
                load=self._worker_load(),
            )
            self.servers.append((server, runtime, spec))
            bound = server.sockets[0].getsockname()[1] if server.sockets else port
            self.smtp_ports[spec.name] = int(bound)
            self.log.info(
                "listening",
                listener=spec.name,
                kind=lc.kind,
                address=f"{host}:{bound}",
                trusted_networks=lc.trusted_networks if lc.kind == "plain" else [],
                proxy_trusted=lc.proxy_trusted if lc.proxy_protocol else [],
            )
        delivery.start()  # every worker: claiming a delivery is a conditional UPDATE
        if self.worker_index == 0:  # once per service, not once per worker process
            if self.holds is not None:
                timers = self.holds.run_timers()
                self._tasks.append(asyncio.create_task(timers, name="hold-timers"))
            self._tasks.append(asyncio.create_task(self._prune_journal(), name="journal-prune"))
            reporter = audit_reporter(cfg, store, engine, self.log)  # issue 9: hourly, once
            self._tasks.append(asyncio.create_task(reporter.run(), name="audit-report"))
        await self._start_web()
        self.started_at = datetime.now(UTC)
        self.log.info(
            "started",
            policy=str(self.policy_path),
            store=store.dialect,
            upstream=getattr(transport, "name", "?"),
            node=self.node_id,
        )

    async def _start_web(self) -> None:
        import uvicorn
        from starlette.applications import Starlette

        _WebServer = _web_server_class()

        routes: list[Any] = metrics_routes(
            self.metrics, self.health, self.config.web.metrics_networks
        )
        app: Any
        if self.holds is not None:
            smtp_users = (
                self.config.users_file_path() if self.config.auth.mode == "users_file" else None
            )
            app = create_app(
                self.holds,
                self.config.web,
                extra_routes=routes,
                smtp_users_file=smtp_users,
                incidents=self.incidents,
            )
        else:
            app = Starlette(routes=routes)
        host, port = split_host_port(self.config.web.listen)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        server = _WebServer(config)
        self.web_server = server
        sock = self._socket("web")
        serving = server.serve(sockets=[sock]) if sock is not None else server.serve()
        self._tasks.append(asyncio.create_task(serving, name="web"))
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        if server.started and server.servers:
            socks = server.servers[0].sockets
            if socks:
                self.web_port = int(socks[0].getsockname()[1])
        base = self.config.link_base_url(self.web_port)
        if self.holds is not None:
            self.holds.base_url = base
        if self.report_links is not None:
            self.report_links.base_url = base.rstrip("/")
        if self.incidents is not None:
            self.incidents.base_url = base
        self.log.info("web", address=f"{host}:{self.web_port or port}", base_url=base)

    async def health(self) -> dict[str, object]:
        ok = True
        depth: int | None = None
        try:
            assert self.store is not None
            depth = await self.store.queue_depth()
        except Exception:
            ok = False
        policy = self.policy_status()
        ok = ok and not self._stop.is_set()
        status = "ok" if ok and not policy["stale"] else ("degraded" if ok else "failing")
        return {
            "ok": ok,
            "status": status,
            "queue_depth": depth,
            "listeners": {name: port for name, port in self.smtp_ports.items()},
            "policy": policy,
        }

    def policy_status(self) -> dict[str, object]:
        """The policy in force against the files on disk (``stale`` when they differ)."""
        pol = getattr(self.engine, "policy", None)
        running = str(getattr(pol, "version", "") or "")
        files = tuple(getattr(pol, "files", ()) or ())
        on_disk = files_version(files) if files else running
        stale = bool(running) and on_disk != running
        self.metrics.policy_stale.set(1 if stale else 0)
        out: dict[str, object] = {
            "path": str(self.policy_path),
            "running_version": running,
            "file_version": on_disk,
            "stale": stale,
        }
        if self.reload_error is not None:
            out["last_reload_error"] = self.reload_error
            out["last_reload_failed_at"] = (
                self.reload_failed_at.isoformat() if self.reload_failed_at else None
            )
        return out

    # ------------------------------------------------------------------ control

    def reload(self) -> bool:
        engine = self.engine
        try:
            if engine is None or not hasattr(engine, "reload"):
                return False
            engine.reload()
        except Exception as exc:
            self.reload_error = str(exc)[:2000]
            self.reload_failed_at = datetime.now(UTC)
            self.metrics.reload_failures.inc()
            self.log.error(
                "reload_failed", error=self.reload_error, msg="the running policy stays in force"
            )
            self.policy_status()
            return False
        self.reload_error = None
        self.reload_failed_at = None
        self.log.info("reloaded", policy=str(self.policy_path))
        self.policy_status()
        return True

    async def _prune_journal(self, interval: float = 3600.0) -> None:
        """Delete expired retained mail and old journal rows: at start, then hourly (also
        when no mail flows, so that nothing is kept past ``retention.days``)."""
        while not self._stop.is_set():
            if self.relay is not None and self.relay.journal is not None:
                await self.relay.journal.prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self, timeout: float = 20.0) -> None:
        self.log.info("stopping")
        self._stop.set()  # periodic tasks (journal pruning) end now, not at their next wake
        for server, runtime, _spec in self.servers:
            runtime.draining = True
            server.close()  # stop accepting
        if self.relay is not None:
            await self.relay.drain(timeout)
        if self.holds is not None:
            await self.holds.drain_notices(timeout)
        # wait for open SMTP sessions to finish their transaction (bounded)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end and any(rt.active for _s, rt, _sp in self.servers):
            await asyncio.sleep(0.05)
        for _server, runtime, _spec in self.servers:
            for proto in list(runtime.peers):
                with contextlib.suppress(Exception):
                    if proto.transport is not None:
                        proto.transport.close()
        for server, _rt, _sp in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        if self.holds is not None:
            self.holds.stop_timers()
        if self.incidents is not None:
            with contextlib.suppress(Exception):
                await self.incidents.drain(5)
        if self.web_server is not None:
            self.web_server.should_exit = True
        if self.delivery is not None:
            await self.delivery.stop(timeout)
        if self.relay is not None and self.relay.journal is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.journal.flush(), 10)
        for t in self._tasks:
            if t.get_name() == "audit-report":  # sleeps for an hour: nothing to finish
                t.cancel()
        for t in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 5)
        if self.transport is not None:
            await self.transport.close()
        if self.store is not None:
            await self.store.close()
        close_engine = getattr(self.engine, "close", None)
        if close_engine is not None:
            close_engine()  # the extraction workers
        with contextlib.suppress(Exception):
            await asyncio.to_thread(budget.shutdown)  # step pools and their worker processes
        self.log.info("stopped")

    async def run(self, ready: Callable[[Service], None] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT, stop. SIGHUP reloads the policy."""
        loop = asyncio.get_running_loop()
        # handlers first: a signal that arrives while listeners open must not kill us
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        sdnotify.ready(f"serving: SMTP {sorted(self.smtp_ports.values())}, web {self.web_port}")
        if ready is not None:
            ready(self)
        try:
            await self._stop.wait()
        finally:
            await self.stop()
