"""Report commands in replies to notices (issue 9): 「報告」/"report" and 「誤送信」/"mistake".

A report is about mail that may already have gone out, so it is accepted on a hold that is
closed too, with a reply address whose token is spent (used or expired) but genuine: the
store knows it (``find_token``), as for the "used link" pages. Only the hold's sender or
approver, or the person the token was issued to, may report; a stranger learns nothing.

- 「報告」/"report" (any hold): the report is recorded on the hold and handed to the
  ``on_report`` hooks (the officer's desk files the incident and tells the route).
- 「誤送信」/"mistake": on an open hold, a discard as "this was a mistake" through
  ``HoldService.resolve`` (which passes ``mistake=True`` to ``on_resolved``); on a closed
  hold, a report like 「報告」.

The person gets a confirmation mail (ja/en) either way.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from leakguard.holds.commands import Decision, Reading, Report
from leakguard.holds.model import HoldRecord, TokenRecord, Via
from leakguard.holds.tokens import hash_token
from leakguard.masking import mask_identifiers

if TYPE_CHECKING:
    from leakguard.holds.service import HoldService, Outcome

log = structlog.get_logger("leakguard.holds")

REPORTED_NOTE = "reported"
MAX_EVENT_NOTE = 500


def may_report(service: HoldService, hold: HoldRecord, rec: TokenRecord, identity: str) -> bool:
    """The sender, an approver, or the person the token was issued to."""
    ident = (identity or "").strip().lower()
    return bool(service.role_of(hold, identity)) or (
        bool(ident) and ident == rec.actor.strip().lower()
    )


async def file_report(
    service: HoldService, hold: HoldRecord, *, actor: str, via: Via, note: str
) -> Outcome:
    """Record a report on the hold and call the ``on_report`` hooks (never raises)."""
    from leakguard.holds.service import Outcome

    # the person's own words may quote anything: masked before the timeline keeps them
    note = mask_identifiers(note)
    text = REPORTED_NOTE + (f": {note}" if note else "")
    await service.store.record_event(hold.id, actor=actor, via=via, note=text[:MAX_EVENT_NOTE])
    ok = await service._run_hooks(
        "on_report",
        hold.id,
        [functools.partial(hook, hold, actor, via, note) for hook in service.on_report],
    )
    log.info(
        "hold.reported",
        hold_id=hold.id,
        actor=actor,
        via=str(via),
        state=str(hold.state),
        hooks=len(service.on_report),
        ok=ok,
    )
    if not ok:
        return Outcome(False, "report_failed", hold)
    # the incident the hooks filed (or joined), so the person can quote its number
    # (the SQL store's journal; the holds' Store protocol does not require one)
    journal = getattr(service.store, "journal", None)
    try:
        found = await journal.find_incident(hold_id=hold.id) if journal is not None else None
    except Exception:  # the number is a courtesy: the report is filed either way
        found = None
    return Outcome(True, "reported", hold, detail=found.id if found is not None else "")


async def handle_report_reply(
    service: HoldService,
    reading: Reading,
    token: str | None,
    *,
    mail_from: str,
    identity: str,
    auth_user: str | None,
) -> str:
    """Carry out a report command read from a reply; the SMTP answer for the replier."""
    from leakguard.holds.service import Outcome

    now = service.now()
    lang = service.lang_for(mail_from)
    rec = await service.store.peek_token(hash_token(token), now) if token else None
    live = rec is not None
    if rec is None and token:
        rec = await service.store.find_token(hash_token(token))
    hold = await service.store.get_hold(rec.hold_id) if rec is not None else None
    links = service.report_links
    if (
        hold is not None
        and not live
        and links is not None
        and hold.created_at < now - timedelta(seconds=links.max_age)
    ):
        hold = None  # older than what is retained: nothing left to report
    entitled = hold is not None and rec is not None and may_report(service, hold, rec, identity)
    if rec is None or hold is None:
        outcome = Outcome(False, "bad_token")
    elif not entitled:
        outcome = Outcome(False, "not_entitled", hold)
    elif reading.report is Report.MISTAKE and hold.state.is_open:
        if not live:
            outcome = Outcome(False, "bad_token", hold)
        else:
            outcome = await service.resolve(
                hold.id,
                Decision.DISCARD,
                actor=identity,
                via=Via.REPLY,
                token=token,
                identity=identity,
                mistake=True,
            )
            if outcome.ok and reading.note:
                await service.store.record_event(
                    hold.id,
                    actor=identity,
                    via=Via.REPLY,
                    note=f"mistake: {mask_identifiers(reading.note)}"[:MAX_EVENT_NOTE],
                )
    else:
        outcome = await file_report(service, hold, actor=identity, via=Via.REPLY, note=reading.note)
    log.info(
        "hold.reply",
        ok=outcome.ok,
        code=outcome.code,
        unclear=None,
        mail_from=mail_from,
        auth_user=auth_user,
        hold_id=hold.id if hold else None,
    )
    if hold is not None and not entitled:
        await service._reply_confirmation(mail_from, None, Outcome(False, "not_entitled"), lang)
    else:
        shown = outcome.hold if outcome.hold is not None else hold
        await service._reply_confirmation(mail_from, shown, outcome, lang)
    return "250 2.0.0 " + (
        "Command accepted" if outcome.ok else "Command refused, see the reply mail"
    )
