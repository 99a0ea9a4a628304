"""Signed "report a mistake" links (issue 9).

A report link names the mail (a decision of the journal, or a hold) and the person it was
issued to, signed with the service's web secret (``itsdangerous``, its own salt) and valid
while the mail is retained. Reporting is idempotent (a second report of the same mail adds
to the same incident), so a link need not be single-use; it only has to be unforgeable.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "leakguard.report-link.v1"
MAX_LINK = 600


@dataclass(frozen=True, slots=True)
class ReportRef:
    """What a report link points at: a journal decision and/or a hold, and who got it."""

    actor: str
    decision_id: str | None = None
    hold_id: str | None = None


class ReportLinks:
    def __init__(self, secret: str | bytes, *, base_url: str, max_age_seconds: int) -> None:
        self._s = URLSafeTimedSerializer(secret, salt=_SALT)
        self.base_url = base_url.rstrip("/")
        self.max_age = max_age_seconds

    def sign(self, ref: ReportRef) -> str:
        payload: dict[str, str] = {"a": ref.actor[:320]}
        if ref.decision_id:
            payload["d"] = ref.decision_id[:32]
        if ref.hold_id:
            payload["h"] = ref.hold_id[:64]
        return str(self._s.dumps(payload))

    def url(self, ref: ReportRef) -> str:
        """The absolute link put into notices: ``<base>/report/<signed>``."""
        return f"{self.base_url}/report/{self.sign(ref)}"

    def verify(self, signed: str) -> ReportRef | None:
        """The reference inside a genuine, unexpired link; None otherwise."""
        if len(signed) > MAX_LINK:
            return None
        try:
            value = self._s.loads(signed, max_age=self.max_age)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(value, dict):
            return None
        actor, d, h = value.get("a"), value.get("d"), value.get("h")
        if not isinstance(actor, str) or not actor:
            return None
        if d is not None and not isinstance(d, str):
            return None
        if h is not None and not isinstance(h, str):
            return None
        if not d and not h:
            return None
        return ReportRef(actor=actor, decision_id=d, hold_id=h)
