"""Service configuration (``leakguard.yaml``), validated like policies.

Every option has a safe default, so ``leakguard serve`` runs with no file at all: a plain
listener on 127.0.0.1:2525 trusting loopback, the web UI on 127.0.0.1:8025, SQLite and a
local maildir in ``./leakguard-data``. Unknown keys are errors that name the file, line and
column. Secrets are ``SecretStr`` (never printed) and may come from the environment:
``LEAKGUARD_UPSTREAM_PASSWORD``, ``LEAKGUARD_STORE_URL`` and ``LEAKGUARD_WEB_SECRET``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from leakguard.durations import parse_duration
from leakguard.extract.config import ExtractConfig
from leakguard.holds.config import HoldsConfig
from leakguard.officer.config import IncidentsConfig, RetentionConfig
from leakguard.policy.loader import (
    Problem,
    cannot_read,
    error_text,
    load_yaml_with_marks,
    not_found,
    not_utf8,
)
from leakguard.web.config import WebConfig

DEFAULT_DATA_DIR = "./leakguard-data"
CONFIG_ENV = "LEAKGUARD_CONFIG"
SYSTEM_CONFIG = Path("/etc/leakguard/leakguard.yaml")
LOOPBACK = ("127.0.0.0/8", "::1/128")


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` name file, line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def split_host_port(value: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``HOST`` (when ``default_port`` is given)."""
    v = value.strip()
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif v.count(":") == 1:
        host, _, port_s = v.partition(":")
    else:
        host, port_s = v, ""
    if not port_s:
        if default_port is None:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return host or "127.0.0.1", default_port
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"not a port number in {value!r}")
    return host or "127.0.0.1", int(port_s)


def _duration(v: Any) -> Any:
    if isinstance(v, str | int):
        parse_duration(v)  # raises ValueError with the reason
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListenerConfig(_Model):
    kind: Literal["plain", "submission", "smtps"] = Field(
        default="plain",
        description="plain: no TLS, only trusted networks may relay (an MTA in front); "
        "submission: STARTTLS then AUTH required (port 587 style); "
        "smtps: implicit TLS, AUTH required (port 465 style).",
    )
    listen: str = Field(default="127.0.0.1:2525", description="HOST:PORT to listen on.")
    trusted_networks: list[str] = Field(
        default_factory=lambda: list(LOOPBACK),
        description="Networks allowed to relay without AUTH on a plain listener; their "
        "envelope sender is taken as the identity.",
    )
    max_connections: int = Field(default=100, ge=1, description="Concurrent connections at most.")
    proxy_protocol: bool = Field(
        default=False,
        description="Behind a TCP load balancer (HAProxy send-proxy / send-proxy-v2): every "
        "connection starts with a PROXY header (v1 or v2) naming the real client, which the "
        "trusted-network check, the AUTH throttle and the logs then use. plain and "
        "submission listeners only.",
    )
    proxy_trusted: list[str] = Field(
        default_factory=list,
        description="With proxy_protocol: the load balancers' networks; a connection from "
        "anywhere else is closed at once.",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("trusted_networks", "proxy_trusted")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v

    @model_validator(mode="after")
    def _proxy(self) -> ListenerConfig:
        if self.proxy_protocol and not self.proxy_trusted:
            raise ValueError(
                "proxy_protocol needs proxy_trusted: the load balancers' addresses "
                "(otherwise anyone could claim to be any client)"
            )
        if self.proxy_protocol and self.kind == "smtps":
            raise ValueError(
                "proxy_protocol works on plain and submission listeners (the PROXY header "
                "comes before TLS); terminate implicit TLS elsewhere or use submission"
            )
        return self


class TlsConfig(_Model):
    cert_file: str | None = Field(default=None, description="PEM certificate chain for listeners.")
    key_file: str | None = Field(default=None, description="PEM private key for listeners.")
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        default="TLSv1.2", description="Oldest TLS version the listeners accept."
    )


class AuthConfig(_Model):
    mode: Literal["users_file", "upstream", "none"] = Field(
        default="users_file",
        description="users_file: argon2 users file (leakguard users add); upstream: try the "
        "same credentials against the upstream smarthost; none: no AUTH offered.",
    )
    users_file: str | None = Field(
        default=None, description="Users file; default <data_dir>/users.txt."
    )
    allowed_senders: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Extra sender addresses a user may use (shared mailboxes): "
        "{user: [addresses or *@domain]}.",
    )
    check_from_header: bool = Field(
        default=True, description="The From: header must also belong to the authenticated user."
    )
    cache_upstream_success: str = Field(
        default="10m", description="upstream mode: remember a successful login this long."
    )
    allow_plaintext_auth: bool = Field(
        default=False,
        description="upstream mode with upstream.tls none: allow passing users' passwords "
        "to the upstream in clear. Only for a loopback upstream (tests); never in production.",
    )

    _d = field_validator("cache_upstream_success")(_duration)


class LimitsConfig(_Model):
    max_message_size: int = Field(default=50 * 1024 * 1024, ge=1024, description="Bytes (SIZE).")
    max_recipients: int = Field(default=500, ge=1, description="Recipients per message.")
    idle_timeout: str = Field(
        default="5m", description="Between commands (includes the DATA upload)."
    )
    line_length_limit: int = Field(
        default=65536,
        ge=1001,
        description="Longest SMTP command line accepted (real clients exceed RFC's 1000). "
        "Inside DATA a line is bounded by max_message_size only (mail with bare LF line ends).",
    )
    decide_timeout: str = Field(default="30s", description="CPU budget for one decision.")
    upstream_timeout: str = Field(
        default="2m", description="Whole synchronous relay of one message."
    )

    _d = field_validator("idle_timeout", "decide_timeout", "upstream_timeout")(_duration)


class UpstreamConfig(_Model):
    host: str = Field(..., description="Smarthost name or address.")
    port: int = Field(
        default=25, ge=1, le=65535, description="Smarthost port (587 submission, 465 implicit)."
    )
    tls: Literal["none", "starttls", "implicit"] = Field(
        default="starttls", description="none (trusted LAN only), starttls (required), implicit."
    )
    verify: bool = Field(default=True, description="Check the upstream's certificate and name.")
    ca_file: str | None = Field(default=None, description="Extra CA bundle for the upstream.")
    username: str | None = Field(
        default=None, description="AUTH login at the upstream; none: no AUTH."
    )
    password: SecretStr | None = Field(
        default=None, description="Env LEAKGUARD_UPSTREAM_PASSWORD overrides."
    )
    timeout: str = Field(default="60s", description="Per socket operation.")
    pool_size: int = Field(default=8, ge=1, le=256, description="Connections kept open and reused.")
    helo_name: str | None = Field(
        default=None, description="Name sent in EHLO to the upstream; default hostname."
    )

    _d = field_validator("timeout")(_duration)


def is_loopback_host(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def derived_base_url(listen: str, hostname: str = "localhost", port: int | None = None) -> str:
    """The link base URL when none is configured: ``http://`` + the web listener.

    A wildcard listener (``0.0.0.0``, ``::``) is reached through the service's host name.
    ``port`` is the port actually bound (the configured one may be 0: any free port).
    """
    host, conf_port = split_host_port(listen)
    port = conf_port if port is None else port
    h = host.strip("[]")
    if h in ("0.0.0.0", "::", ""):  # noqa: S104 (recognising a wildcard, not binding)
        h = hostname if hostname and hostname != "localhost" else "127.0.0.1"
    if ":" in h:
        h = f"[{h}]"
    return f"http://{h}:{port}"


def base_url_problem(base_url: str | None, listen: str) -> tuple[str, str] | None:
    """Why a configured loopback base URL cannot reach the web listener ((ja, en)), or None.

    Only a loopback/localhost URL can be checked from here: behind a reverse proxy the
    public URL legitimately differs from the listener.
    """
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"web.base_url {base_url!r} は URL ではありません (例: https://review.example.jp)",
            f"web.base_url {base_url!r} is not a URL (expected e.g. https://review.example.jp)",
        )
    if not is_loopback_host(parts.hostname):
        return None
    try:
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return (
            f"web.base_url {base_url!r} のポート番号が正しくありません",
            f"web.base_url {base_url!r} has an invalid port",
        )
    lhost, lport = split_host_port(listen)
    lh = lhost.strip("[]")
    reachable_host = lh in ("0.0.0.0", "::", "") or is_loopback_host(lh)  # noqa: S104
    if lport == 0:  # any free port: only the host can be checked
        lport = url_port
    if reachable_host and url_port == lport:
        return None
    return (
        f"リンクのURL web.base_url ({base_url}) はこのマシン自身を指していますが、"
        f"Web サーバーは {listen} で待ち受けるため、通知のリンクが開けません。"
        f"--base-url (web.base_url) を {derived_base_url(listen)} にするか、指定を外して"
        "自動で決めさせてください。",
        f"the link URL web.base_url ({base_url}) points at this machine, but the web server "
        f"listens on {listen}, so the links in notices would not open. Set --base-url "
        f"(web.base_url) to {derived_base_url(listen)} or leave it unset to derive it.",
    )


def lease_problem(config: ServiceConfig) -> tuple[str, str] | None:
    """Why the delivery lease is too short ((ja, en)), or None.

    Another node takes back a delivery whose claim is older than the lease: if one
    upstream attempt may last longer, a live node's delivery would be sent twice."""
    lease = config.seconds(config.delivery.stale_claim_after)
    attempt = config.seconds(config.limits.upstream_timeout)
    if lease > attempt:
        return None
    return (
        f"delivery.stale_claim_after ({config.delivery.stale_claim_after}) は "
        f"limits.upstream_timeout ({config.limits.upstream_timeout}) より長くしてください。"
        "短いと、送信中の配送を別のノードが取り戻し、同じメールを二度送ります。",
        f"delivery.stale_claim_after ({config.delivery.stale_claim_after}) must be longer "
        f"than limits.upstream_timeout ({config.limits.upstream_timeout}); otherwise another "
        "node takes back a delivery still being sent and the mail goes out twice.",
    )


def plaintext_auth_problem(auth: AuthConfig, upstream: UpstreamConfig | None) -> str | None:
    """Why pass-through AUTH would send users' passwords in clear, or None when it won't."""
    if auth.mode != "upstream" or upstream is None or upstream.tls != "none":
        return None
    if not auth.allow_plaintext_auth:
        return (
            "auth.mode 'upstream' with upstream.tls 'none' would send users' passwords to "
            "the upstream in clear; use tls: starttls or implicit "
            "(auth.allow_plaintext_auth: true is accepted only for a loopback upstream)"
        )
    if not is_loopback_host(upstream.host):
        return (
            f"auth.allow_plaintext_auth is only for a loopback upstream, not {upstream.host!r}; "
            "use upstream.tls: starttls or implicit"
        )
    return None


class DeliveryConfig(_Model):
    queue_on_temporary_failure: bool = Field(
        default=False,
        description="When the upstream cannot take a message right now, store it in the "
        "queue and answer 250 (true) or answer 451 so the client retries (false).",
    )
    workers: int = Field(default=4, ge=1, le=64, description="Concurrent queue deliveries.")
    retry_base: str = Field(default="1m", description="First retry delay; doubles each time.")
    retry_max: str = Field(default="1h", description="Longest delay between retries.")
    give_up_after: str = Field(default="5d", description="Then the sender is told it failed.")
    max_attempts: int = Field(
        default=50, ge=1, description="Delivery attempts at most before giving up."
    )
    poll_interval: str = Field(default="2s", description="How often the queue looks for due work.")
    stale_claim_after: str = Field(
        default="10m",
        description="Delivery lease: a delivery another node (or worker) left in 'sending' "
        "this long ago is taken back into the queue (a dead host). Must exceed "
        "limits.upstream_timeout; a restarting node takes back its own at once.",
    )
    maildir: str | None = Field(
        default=None, description="With no upstream: deliver here (default <data_dir>/maildir)."
    )

    _d = field_validator(
        "retry_base", "retry_max", "give_up_after", "poll_interval", "stale_claim_after"
    )(_duration)


class BccConfig(_Model):
    header: str | None = Field(
        default=None,
        description="Header that records a BCC rewrite (e.g. X-Leakguard-Bcc); off when null.",
    )
    header_to_external: bool = Field(
        default=False, description="Also show that header to external recipients."
    )


class StoreConfig(_Model):
    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db; default "
        "SQLite in the data directory. Env LEAKGUARD_STORE_URL overrides.",
    )


class LogConfig(_Model):
    json_: bool | None = Field(
        default=None, alias="json", description="JSON lines (true), console (false), auto (null)."
    )
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least important level written."
    )


class StepsConfig(BaseModel):
    """Memory budgets (``RLIMIT_AS``) of the content steps' worker processes (issue 12)."""

    model_config = ConfigDict(extra="forbid")

    review_page_memory_mb: int = Field(
        default=1024, ge=256, le=65536, description="The review page's view of a held mail (MiB)."
    )
    reply_memory_mb: int = Field(
        default=512, ge=256, le=65536, description="Reading a reply command (MiB)."
    )
    report_memory_mb: int = Field(
        default=1024,
        ge=256,
        le=65536,
        description="Reading a report mail, rendering an incident record as Markdown or PDF (MiB).",
    )
    bcc_release_memory_mb: int = Field(
        default=1024, ge=256, le=65536, description="The Bcc rewrite of a release as Bcc (MiB)."
    )
    dsn_memory_mb: int = Field(
        default=512, ge=256, le=65536, description="Building a DSN from the original (MiB)."
    )

    def memory_mb(self) -> dict[str, int]:
        """Step name -> MiB, as ``stepproc.configure`` takes it."""
        return {
            "review_page": self.review_page_memory_mb,
            "reply": self.reply_memory_mb,
            "report": self.report_memory_mb,
            "bcc_release": self.bcc_release_memory_mb,
            "dsn": self.dsn_memory_mb,
        }


class ServiceConfig(_Model):
    hostname: str = Field(default="localhost", description="Name in the SMTP greeting.")
    node_id: str | None = Field(
        default=None,
        max_length=100,
        description="This relay's name in the shared store (who claimed a delivery); must "
        "differ between relays sharing one store and stay the same across restarts. "
        "Default: the machine's host name and a hash of the data directory.",
    )
    data_dir: str = Field(default=DEFAULT_DATA_DIR, description="SQLite store, maildir, secrets.")
    policy: str | None = Field(
        default=None, description="Policy file; default policies/default.yaml."
    )
    org: str | None = Field(default=None, description="Organisation file (as in leakguard check).")
    language: Literal["ja", "en"] = Field(default="ja", description="Default language for people.")
    listeners: list[ListenerConfig] = Field(default_factory=lambda: [ListenerConfig()])
    workers: int | Literal["auto"] = Field(
        default=1,
        description="Worker processes serving the same listening ports (forked by one "
        "parent after the policy is loaded); 'auto' = one per CPU core.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The event loop: uvloop (libuv; about 15 % less CPU a mail, measured "
        "in bench/relay) or Python's own asyncio loop. Where uvloop is not installed, "
        "asyncio's is used.",
    )
    tls: TlsConfig = Field(default_factory=TlsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    upstream: UpstreamConfig | None = Field(
        default=None, description="Smarthost; when absent mail goes to a local maildir (demo mode)."
    )
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    bcc: BccConfig = Field(default_factory=BccConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    holds: HoldsConfig = Field(default_factory=lambda: HoldsConfig.model_validate({}))
    web: WebConfig = Field(default_factory=lambda: WebConfig.model_validate({}))
    extract: ExtractConfig = Field(
        default_factory=ExtractConfig,
        description="Reading attachments' text: worker processes, time and memory budgets.",
    )
    steps: StepsConfig = Field(
        default_factory=lambda: StepsConfig.model_validate({}),
        description="Worker processes of the content steps off the mail path (review page, "
        "replies, report mails and records, release as Bcc, DSNs): memory budgets.",
    )
    retention: RetentionConfig = Field(
        default_factory=lambda: RetentionConfig.model_validate({}),
        description="The decision journal and retained mail (reports, statistics, replay).",
    )
    incidents: IncidentsConfig = Field(
        default_factory=lambda: IncidentsConfig.model_validate({}),
        description="Who is told of reported mistakes and near misses, and how.",
    )

    @field_validator("upstream")
    @classmethod
    def _no_plaintext_passwords(cls, v: UpstreamConfig | None, info: Any) -> Any:
        auth = info.data.get("auth")
        if v is not None and isinstance(auth, AuthConfig):
            problem = plaintext_auth_problem(auth, v)
            if problem:
                raise ValueError(problem)
        return v

    # ---------------------------------------------------------------- derived values

    @field_validator("workers")
    @classmethod
    def _workers_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 64:
            raise ValueError("workers must be between 1 and 64, or 'auto'")
        return v

    def worker_count(self) -> int:
        """How many worker processes ``serve`` runs (``auto``: one per CPU core)."""
        if self.workers == "auto":
            return max(1, min(64, os.cpu_count() or 1))
        return int(self.workers)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    def node_identity(self) -> str:
        """``node_id``, or ``<host name>:<8 hex of the data directory's path>``: stable
        across restarts, different for two relays on one host with two data directories."""
        if self.node_id:
            return self.node_id
        digest = hashlib.sha256(str(self.data_path.resolve()).encode()).hexdigest()[:8]
        return f"{socket.gethostname()[:80]}:{digest}"

    def store_url(self) -> str:
        env = os.environ.get("LEAKGUARD_STORE_URL")
        if env:
            return env
        if self.store.url is not None:
            return self.store.url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_path / 'leakguard.db').resolve()}"

    def upstream_password(self) -> str | None:
        env = os.environ.get("LEAKGUARD_UPSTREAM_PASSWORD")
        if env:
            return env
        if self.upstream is not None and self.upstream.password is not None:
            return self.upstream.password.get_secret_value()
        return None

    def users_file_path(self) -> Path:
        return Path(self.auth.users_file) if self.auth.users_file else self.data_path / "users.txt"

    def maildir_path(self) -> Path:
        return Path(self.delivery.maildir) if self.delivery.maildir else self.data_path / "maildir"

    def link_base_url(self, bound_port: int | None = None) -> str:
        """The base of links in notices: configured, or derived from the web listener."""
        if self.web.base_url:
            return self.web.base_url.rstrip("/")
        return derived_base_url(self.web.listen, self.hostname, bound_port)

    def seconds(self, value: str) -> float:
        return float(parse_duration(value))


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the configuration section at ``loc``."""
    model: Any = ServiceConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        model = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _problems(
    exc: ValidationError, marks: dict[tuple[Any, ...], tuple[int, int]], source: str
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path: tuple[Any, ...] = loc
        # the longest prefix of loc that exists in the file
        while path and path not in marks:
            path = path[:-1]
        if err.get("type") == "extra_forbidden" and (*loc, "__key__") in marks:
            line, col = marks[(*loc, "__key__")]
        else:
            line, col = marks.get(path, (1, 1))
        where = ".".join(str(p) for p in loc)
        if err.get("type") == "extra_forbidden":
            allowed = ", ".join(_keys_at(loc[:-1]))
            en = f"unknown key {loc[-1]!r}; expected one of: {allowed}"
            ja = f"不明なキー {loc[-1]!r} です。使えるキー: {allowed}"
        elif err.get("type") == "missing":
            en, ja = "missing required key", "必須のキーがありません"
        else:
            en, ja = error_text(err)
        out.append(
            Problem(
                source, line, col, f"{where or '(top level)'}: {en}", f"{where or '(最上位)'}: {ja}"
            )
        )
    out.sort(key=lambda p: (p.line, p.column))
    return out


def parse_config_text(text: str, source: str = "<config>") -> ServiceConfig:
    try:
        data, marks = load_yaml_with_marks(text, source)
    except Exception as exc:  # PolicyError from the YAML layer: same problem list
        problems = getattr(exc, "problems", None)
        if problems is not None:
            raise ConfigError(list(problems)) from exc
        raise
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                Problem(
                    source,
                    1,
                    1,
                    "expected a mapping of settings (see docs/configuration.md)",
                    "設定のマッピングを書いてください (docs/configuration.md を参照)",
                )
            ]
        )
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, marks, source)) from exc


def load_config(path: Path | None) -> ServiceConfig:
    """Read ``path`` (None: all defaults)."""
    if path is None:
        return ServiceConfig()
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([not_found(str(path))]) from None
    except OSError as exc:
        raise ConfigError([cannot_read(str(path), exc)]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([not_utf8(str(path))]) from exc
    return parse_config_text(text, str(path))


# --------------------------------------------------------------------------- finding the service


class NoServiceError(Exception):
    """Administrative commands found no service configuration or data (ja and en text)."""

    def __init__(self, ja: str, en: str) -> None:
        self.ja = ja
        self.en = en
        super().__init__(en)

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


def find_config_file(explicit: Path | None) -> Path | None:
    """The service's configuration file: ``-c``, ``$LEAKGUARD_CONFIG``, or
    ``/etc/leakguard/leakguard.yaml`` when it exists; None when there is none."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        return Path(env)
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return None


def checkout_data_dir() -> Path:
    """``make run``'s data directory: ``leakguard-data`` at the top of the source checkout."""
    return Path(__file__).resolve().parents[1] / "leakguard-data"


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    db = url.split(":///", 1)[1].split("?", 1)[0]
    return None if not db or db == ":memory:" else Path(db)


def locate_service(config: Path | None, data_dir: Path | None = None) -> ServiceConfig:
    """The configuration of the running service, for administrative commands.

    Looks at ``-c``, ``$LEAKGUARD_CONFIG``, ``/etc/leakguard/leakguard.yaml``; without a
    file, at ``./leakguard-data`` and ``make run``'s data directory. Creates nothing: raises
    ``NoServiceError`` (ja/en) when no service data is found, ``ConfigError`` for a bad file.
    """
    path = find_config_file(config)
    cfg = load_config(path)
    if data_dir is not None:
        cfg = cfg.model_copy(update={"data_dir": str(data_dir)})
    elif path is None:
        candidates = [Path(DEFAULT_DATA_DIR).resolve(), checkout_data_dir()]
        found = next((c for c in candidates if (c / "leakguard.db").is_file()), None)
        if found is None and not os.environ.get("LEAKGUARD_STORE_URL"):
            where = ", ".join(
                ["-c FILE", f"${CONFIG_ENV}", str(SYSTEM_CONFIG), *(str(c) for c in candidates)]
            )
            raise NoServiceError(
                "leakguard の設定もデータも見つかりません。サービスの設定ファイルを -c で"
                f"指定するか、環境変数 {CONFIG_ENV} に設定してください (探した場所: {where})。"
                "何も作成していません。",
                "No leakguard configuration or data found. Name the service's configuration "
                f"with -c FILE or the {CONFIG_ENV} environment variable (looked at: {where}). "
                "Nothing was created.",
            )
        if found is not None:
            cfg = cfg.model_copy(update={"data_dir": str(found)})
    db = _sqlite_file(cfg.store_url())
    if db is not None and not db.is_file():
        source = str(path) if path is not None else "--data-dir"
        raise NoServiceError(
            f"保留メールのデータベース {db} がありません ({source} による)。leakguard serve を"
            "このデータディレクトリで動かしたことがないか、設定が違います。何も作成していません。",
            f"There is no hold database at {db} (from {source}): leakguard serve has not run "
            "with this data directory, or this is not the service's configuration. "
            "Nothing was created.",
        )
    return cfg
