"""Helpers shared by the hold and web tests (no tests here).

Builds ``Message`` views by hand so the hold workflow is tested without depending on the
parser, a ``Verdict`` like the policy engine's, and a ``HoldService`` on a real SQLite store
with a settable clock.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from leakguard.holds.config import HoldsConfig
from leakguard.holds.service import HoldService
from leakguard.message.addresses import make_address
from leakguard.organization import Organization, Person
from leakguard.store import SqlStore, open_store, sqlite_url
from leakguard.types import (
    Action,
    Attachment,
    Finding,
    Localized,
    Message,
    RuleMatch,
    TextPart,
    Verdict,
)
from leakguard.web.config import WebConfig

SECRET = "test-secret-not-for-production"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

ORG = Organization(
    internal_domains=["city.example.lg.jp"],
    directory=[
        Person("tanaka@city.example.lg.jp", "田中 太郎", supervisor="sato@city.example.lg.jp"),
        Person("sato@city.example.lg.jp", "佐藤 花子", language="en"),
        Person("suzuki@city.example.lg.jp", "鈴木 一郎"),
        Person("alice@city.example.lg.jp", "Alice", language="en"),
    ],
    partner_domains=["partner.example.co.jp"],
    groups={"security": ["sec1@city.example.lg.jp", "sec2@city.example.lg.jp"]},
)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.t = now

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> datetime:
        self.t = self.t + timedelta(**kw)
        return self.t


def raw_mail(
    *,
    sender: str = "tanaka@city.example.lg.jp",
    to: Sequence[str] = ("a@client-one.example.com", "b@client-two.example.net"),
    cc: Sequence[str] = (),
    subject: str = "見積書の送付",
    body: str = "お世話になっております。\n見積書を送付いたします。\nhttp://evil.example/x\n",
    html: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"] = sender
    m["To"] = ", ".join(to)
    if cc:
        m["Cc"] = ", ".join(cc)
    m["Subject"] = subject
    m["Message-ID"] = "<orig-1@city.example.lg.jp>"
    for k, v in extra_headers:
        m[k] = v
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
    return m.as_bytes()


def message_of(raw: bytes, *, mail_from: str, rcpts: Sequence[str]) -> Message:
    """A hand-built Message view (stdlib parse) for tests independent of the parser."""
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(m, EmailMessage)

    def addrs(name: str) -> tuple:
        h = m.get(name)
        if h is None:
            return ()
        return tuple(make_address(a.addr_spec, a.display_name) for a in h.addresses)

    parts: list[TextPart] = []
    atts: list[Attachment] = []
    for i, p in enumerate(m.walk()):
        if p.is_multipart():
            continue
        if p.get_content_disposition() == "attachment":
            payload = p.get_payload(decode=True) or b""
            atts.append(
                Attachment(p.get_filename() or "", p.get_content_type(), len(payload), str(i))
            )
            continue
        if p.get_content_type() in ("text/plain", "text/html"):
            txt = p.get_content()
            parts.append(
                TextPart(
                    p.get_content_type(),
                    txt,
                    "utf-8",
                    str(i),
                    html=txt if p.get_content_type() == "text/html" else "",
                )
            )
    return Message(
        raw=raw,
        subject=str(m.get("Subject", "")),
        message_id=str(m.get("Message-ID", "")),
        from_=addrs("From"),
        sender_header=None,
        reply_to=(),
        to=addrs("To"),
        cc=addrs("Cc"),
        bcc=(),
        envelope_from=make_address(mail_from),
        envelope_rcpts=tuple(make_address(r) for r in rcpts),
        text_parts=tuple(parts),
        attachments=tuple(atts),
        attached_messages=(),
        quoted_blocks=(),
        headers=tuple((k, str(v)) for k, v in m.items()),
    )


def verdict(
    *,
    action: Action = Action.HOLD,
    approval: str | None = None,
    delay_seconds: int | None = None,
    offer_bcc: bool = False,
    findings: Sequence[Finding] = (),
) -> Verdict:
    rule = RuleMatch(
        rule_id="forwarded-third-party" if action == Action.HOLD else "delay-external",
        action=action,
        reason=Localized(
            "引用部分に、宛先が知らないはずの第三者のアドレスがあります",
            "The quoted thread contains a third party's address the recipients should not see",
        )
        if action == Action.HOLD
        else Localized(
            "社外宛てのメールは5分後に送信されます", "External mail leaves after 5 minutes"
        ),
        approval=approval,
        delay_seconds=delay_seconds,
        findings=tuple(findings),
    )
    return Verdict(
        action=action,
        rules=(rule,),
        audit_rules=(),
        facts={"quoted_third_party_addresses": 1},
        findings=tuple(findings),
        offer_bcc=offer_bcc,
        approval=approval,
        delay_seconds=delay_seconds,
    )


THIRD_PARTY = Finding(
    detector="quoted",
    fact="quoted_third_party_addresses",
    addresses=("secret-person@other-client.example.org",),
    detail="third party in quoted thread",
    evidence={"location": "text part 1, line 12", "news_to": "a@client-one.example.com"},
)
LOOKALIKE = Finding(
    detector="lookalike",
    fact="lookalike_domains",
    addresses=("b@client-two.example.net",),
    detail="lookalike",
    evidence={"resembles": "partner.example.co.jp"},
)


@dataclass
class Env:
    store: SqlStore
    service: HoldService
    clock: Clock
    config: HoldsConfig
    web: WebConfig
    sent: list[tuple[str, bytes]] = field(default_factory=list)


async def make_env(tmp: Path, db: str = "lg.db", **holds_kw: object) -> Env:
    store = await open_store(sqlite_url(tmp / db))
    clock = Clock()
    cfg = HoldsConfig(
        notice_from="leakguard@city.example.lg.jp",
        command_address="leakguard-hold@city.example.lg.jp",
        **holds_kw,  # type: ignore[arg-type]
    )
    web = WebConfig(base_url="http://review.test")
    svc = HoldService(store, cfg, web, secret=SECRET, organization=ORG, now=clock)
    return Env(store, svc, clock, cfg, web)


async def do_hold(env: Env, v: Verdict | None = None, **mail_kw: object):
    sender = str(mail_kw.pop("mail_from", "tanaka@city.example.lg.jp"))
    raw = raw_mail(**mail_kw)  # type: ignore[arg-type]
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    rcpts = [a.addr_spec for h in ("To", "Cc") if m.get(h) for a in m[h].addresses]
    msg = message_of(raw, mail_from=sender, rcpts=rcpts)
    return await env.service.hold(
        raw=raw, verdict=v or verdict(), message=msg, mail_from=sender, rcpts=rcpts, auth_user=None
    )


async def queued(env: Env, kind: str | None = None) -> list[tuple[str, list[str], bytes, str]]:
    """Every queued delivery: (kind, rcpts, raw bytes, hold_id)."""
    out = []
    for d in await env.store.list_deliveries():
        if kind is None or d.kind == kind:
            out.append(
                (d.kind, list(d.rcpts), await env.store.get_message(d.message_sha256), d.hold_id)
            )
    return out


def parse(raw: bytes) -> EmailMessage:
    m = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(m, EmailMessage)
    return m


def text_of(raw: bytes, subtype: str = "plain") -> str:
    m = parse(raw)
    part = m.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())
