"""Configuration of the officer's desk: ``retention:`` and ``incidents:`` in leakguard.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from leakguard.durations import parse_duration

# The four fact families whose release is a near miss by default (issue 9).
DEFAULT_ALERT_ON_RELEASE = (
    "quoted_third_party_addresses",
    "lookalike_domains",
    "name_similar_recipients",
    "personal_data",
)


def _duration(v: str) -> str:
    parse_duration(v)
    return v


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["encrypted", "hashed", "off"] = Field(
        "encrypted",
        description="What is kept of each mail that was decided, so that it can be reported "
        "and replayed: encrypted (AES-256-GCM, the bytes), hashed (only the SHA-256 and the "
        "journal row), off (the journal row only).",
    )
    days: str = Field("30d", description="How long the retained mail is kept; then it is deleted.")
    journal_days: str = Field(
        "400d",
        description="How long the decision journal (masked: who, to whom, rules, outcome) is "
        "kept for statistics and incident records. Rows an incident refers to are kept.",
    )
    key: SecretStr | None = Field(
        None,
        description="32-byte key (base64 or hex) for mode encrypted; env "
        "LEAKGUARD_RETENTION_KEY overrides. Generated and kept in the data directory when unset.",
    )
    max_message_size: int = Field(
        50 * 1024 * 1024,
        ge=0,
        description="Mail larger than this is journaled with its hash only.",
    )
    buffer_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Retained bytes waiting to be written at most; beyond, mail is journaled "
        "with its hash only (and a warning is logged) rather than the relay growing.",
    )

    @field_validator("days", "journal_days")
    @classmethod
    def _days(cls, v: str) -> str:
        return _duration(v)


class IncidentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    officers: list[str] = Field(
        default_factory=list,
        description="Addresses told at once of every incident report and alert.",
    )
    deputy: str | None = Field(
        None, description="Also told of every report (the officer's deputy)."
    )
    notify_supervisor: bool = Field(
        True, description="Also tell the sender's supervisor (from the directory) of a report."
    )
    report_address: str = Field(
        "leakguard-report@localhost",
        description="Mail sent or forwarded to this address through the relay reports a "
        "mistake (the reply command of notices names it too).",
    )
    webhook_url: str | None = Field(
        None, description="Optional URL that receives a JSON POST for every report and alert."
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signs webhook bodies (HMAC-SHA256 in X-Leakguard-Signature); env "
        "LEAKGUARD_WEBHOOK_SECRET overrides.",
    )
    bcc_notice: bool = Field(
        True, description="Tell the sender when the relay moved visible recipients to Bcc."
    )
    alert_on_release: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALERT_ON_RELEASE),
        description="A hold released (or released as Bcc) although it matched one of these "
        "alerts the officers at once (a near miss): fact names (personal_data also covers "
        "every personal_data.* kind and personal_data_items) or rule:<id>. Empty: no alerts "
        "on release.",
    )
    alert_on_mistake: bool = Field(
        True,
        description='Alert the officers when a held mail is discarded as "this was a mistake".',
    )
    except_rules: list[str] = Field(
        default_factory=list,
        description="Rule ids whose holds never raise a near-miss alert on release.",
    )
    audit_report_after: str = Field(
        "14d",
        description="A rule in mode: audit is reported to the officers once, this long after "
        "its first hit: what it would have done and how those mails were answered.",
    )

    @field_validator("audit_report_after")
    @classmethod
    def _after(cls, v: str) -> str:
        return _duration(v)
