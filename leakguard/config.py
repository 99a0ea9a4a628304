"""Service configuration (``leakguard.yaml``), validated like policies.

Every option has a safe default, so ``leakguard serve`` runs with no file at all: a plain
listener on 127.0.0.1:2525 trusting loopback, the web UI on 127.0.0.1:8025, SQLite and a
local maildir in ``./leakguard-data``. Unknown keys are errors that name the file, line and
column. Secrets are ``SecretStr`` (never printed) and may come from the environment:
``LEAKGUARD_UPSTREAM_PASSWORD``, ``LEAKGUARD_STORE_URL`` and ``LEAKGUARD_WEB_SECRET``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from leakguard.durations import parse_duration
from leakguard.extract.config import ExtractConfig
from leakguard.holds.config import HoldsConfig
from leakguard.policy.loader import Problem, load_yaml_with_marks
from leakguard.web.config import WebConfig

DEFAULT_DATA_DIR = "./leakguard-data"
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

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v


class TlsConfig(_Model):
    cert_file: str | None = Field(default=None, description="PEM certificate chain for listeners.")
    key_file: str | None = Field(default=None, description="PEM private key for listeners.")
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"


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
        default=65536, ge=1001, description="Longest line accepted; real clients exceed RFC's 1000."
    )
    decide_timeout: str = Field(default="30s", description="CPU budget for one decision.")
    upstream_timeout: str = Field(
        default="2m", description="Whole synchronous relay of one message."
    )

    _d = field_validator("idle_timeout", "decide_timeout", "upstream_timeout")(_duration)


class UpstreamConfig(_Model):
    host: str = Field(..., description="Smarthost name or address.")
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["none", "starttls", "implicit"] = Field(
        default="starttls", description="none (trusted LAN only), starttls (required), implicit."
    )
    verify: bool = Field(default=True, description="Check the upstream's certificate and name.")
    ca_file: str | None = Field(default=None, description="Extra CA bundle for the upstream.")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="Env LEAKGUARD_UPSTREAM_PASSWORD overrides."
    )
    timeout: str = Field(default="60s", description="Per socket operation.")
    pool_size: int = Field(default=8, ge=1, le=256, description="Connections kept open and reused.")
    helo_name: str | None = None

    _d = field_validator("timeout")(_duration)


def is_loopback_host(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


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
    max_attempts: int = Field(default=50, ge=1)
    poll_interval: str = Field(default="2s", description="How often the queue looks for due work.")
    stale_claim_after: str = Field(
        default="10m", description="PostgreSQL: reclaim work a crashed node left in 'sending'."
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
    level: Literal["debug", "info", "warning", "error"] = "info"


class ServiceConfig(_Model):
    hostname: str = Field(default="localhost", description="Name in the SMTP greeting.")
    data_dir: str = Field(default=DEFAULT_DATA_DIR, description="SQLite store, maildir, secrets.")
    policy: str | None = Field(
        default=None, description="Policy file; default policies/default.yaml."
    )
    org: str | None = Field(default=None, description="Organisation file (as in leakguard check).")
    language: Literal["ja", "en"] = Field(default="ja", description="Default language for people.")
    listeners: list[ListenerConfig] = Field(default_factory=lambda: [ListenerConfig()])
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

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

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

    def seconds(self, value: str) -> float:
        return float(parse_duration(value))


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
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err.get("type") == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif err.get("type") == "missing":
            msg = "missing required key"
        else:
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append(Problem(source, line, col, f"{where}: {msg}"))
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
        raise ConfigError([Problem(source, 1, 1, "expected a mapping of settings")])
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
        raise ConfigError([Problem(str(path), 1, 1, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), 1, 1, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), 1, 1, "not UTF-8 text")]) from exc
    return parse_config_text(text, str(path))
