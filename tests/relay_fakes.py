"""A stand-in for ``leakguard.engine.Engine`` in relay tests: the verdict comes from an
``X-Test-Action`` header, so SMTP behaviour is tested apart from the detectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses

from leakguard.organization import Organization, SenderHistory
from leakguard.types import Action, Address, Localized, Message, RuleMatch, Verdict

ORG = Organization(internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"])


def _addrs(values: list[str]) -> tuple[Address, ...]:
    out = []
    for name, addr in getaddresses(values):
        local, _, domain = addr.rpartition("@")
        if local:
            out.append(Address(local=local, domain=domain.lower(), display_name=name))
    return tuple(out)


@dataclass(frozen=True)
class FakePolicy:
    organization: Organization = ORG


@dataclass(frozen=True)
class FakeDecision:
    message: Message
    verdict: Verdict
    cpu_seconds: float = 0.0


class FakeEngine:
    def __init__(self) -> None:
        self.policy = FakePolicy()
        self.calls: list[tuple[str | None, tuple[str, ...], SenderHistory | None, str | None]] = []
        self.reloads = 0
        self.fail_reload = False

    def reload(self) -> None:
        if self.fail_reload:
            raise ValueError("policy.yaml:3:1: broken")
        self.reloads += 1

    def decide(
        self,
        raw: bytes,
        *,
        envelope_from: str | None = None,
        rcpts: Sequence[str] | None = None,
        history: SenderHistory | None = None,
        auth_user: str | None = None,
        thread_lookup: object = None,
    ) -> FakeDecision:
        self.calls.append((envelope_from, tuple(rcpts or ()), history, auth_user))
        h = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        get = lambda n: [str(v) for v in h.get_all(n, [])]  # noqa: E731
        msg = Message(
            raw=raw,
            subject=str(h.get("subject", "")),
            message_id=str(h.get("message-id", "")),
            from_=_addrs(get("from")),
            sender_header=None,
            reply_to=(),
            to=_addrs(get("to")),
            cc=_addrs(get("cc")),
            bcc=(),
            envelope_from=None,
            envelope_rcpts=(),
            text_parts=(),
            attachments=(),
            attached_messages=(),
            quoted_blocks=(),
            headers=(),
        )
        action = Action(str(h.get("x-test-action", "pass")).strip())
        rules: tuple[RuleMatch, ...] = ()
        if action is not Action.PASS:
            rules = (
                RuleMatch(
                    rule_id=f"test-{action.value}",
                    action=action,
                    reason=Localized(
                        ja="社外の宛先が多すぎます", en="Too many external recipients"
                    ),
                ),
            )
        verdict = Verdict(
            action=action,
            rules=rules,
            audit_rules=(),
            facts={},
            findings=(),
            delay_seconds=60 if action is Action.DELAY else None,
        )
        return FakeDecision(message=msg, verdict=verdict)
