"""Configuration of the hold workflow (``holds:`` section of leakguard.yaml)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HoldsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expire_after: str = Field("72h", description="Open holds are discarded after this long.")
    escalate_after: str = Field(
        "4h", description="Two-person check: ask the deputy when no approver acted in time."
    )
    deputy: str | None = Field(None, description="Address asked when approvers do not act.")
    notice_from: str = Field(
        "leakguard@localhost", description="From address of hold notices and confirmations."
    )
    command_address: str = Field(
        "leakguard-hold@localhost",
        description="Reply-To of notices; replies to it (carrying the token) are commands.",
    )
    language: str = Field("ja", description="Default language of notices: ja or en.")
    default_delay: str = Field("5m", description="Delay used by action: delay without a time.")
    timezone: str = Field(
        "Asia/Tokyo", description="Time zone for times shown in notices and pages (IANA name)."
    )
    notice_grace: str = Field(
        "1m",
        description="A hold whose first notice is still missing after this long (a crash "
        "between the hold and its notice) gets it from the timers.",
    )
    timer_interval: float = Field(
        5.0, gt=0, le=300, description="Seconds between checks for due delays, expiry, escalation."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not a time zone: {v!r}") from None
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not v.strip().lower().startswith(("ja", "en")):
            raise ValueError(f"expected ja or en, got {v!r}")
        return v
