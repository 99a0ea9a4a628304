"""Configuration of the web server (``web:`` section of leakguard.yaml)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field("127.0.0.1:8025", description="HOST:PORT of the web server.")
    base_url: str | None = Field(
        None,
        description="Public URL used in links inside notices (e.g. https://review.example.jp). "
        "Default: derived from listen (http://HOST:PORT, the service hostname when listening "
        "on all addresses). A loopback URL must reach this listener's port.",
    )
    secret: SecretStr | None = Field(
        None,
        description="Signing secret for links and CSRF; env LEAKGUARD_WEB_SECRET overrides. "
        "Generated and kept in the data directory when unset.",
    )
    metrics_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Client networks allowed to read /metrics and /healthz.",
    )
    admin_users_file: str | None = Field(
        None,
        description="Users allowed into the administrators' view (argon2 users file, "
        "written by 'leakguard users add --file'). Must be a separate file, never the SMTP "
        "AUTH users file: every mail user would become an administrator (refused at start).",
    )

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v
