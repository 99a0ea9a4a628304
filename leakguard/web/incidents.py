"""Web pages of incident reporting (issue 9).

- ``GET /report/<signed>``: a signed report link (``ReportLinks``) shows which mail it is
  (date, redacted subject, recipients, what the relay did) and a short form; ``POST`` (CSRF)
  files the report (``IncidentService.report``, idempotent per mail) and says what happens
  next and what to do now. A forged or expired link gets the invalid page (404).
- ``/admin/incidents`` (list) and ``/admin/incidents/<id>`` (the record, follow-up
  checkboxes, close/reopen; POST + CSRF, then a redirect), ``.../record.md`` and
  ``.../record.pdf``: behind the admin login. The record page has its own print stylesheet.

Like the rest of the web app: a GET never changes anything, every value is escaped by Jinja
autoescape, and nothing here reads mail bytes (the journal row and hold record only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from leakguard import budget, stepproc
from leakguard.holds.explain import local_time, zone
from leakguard.holds.texts import t as hold_t
from leakguard.masking import redact_text
from leakguard.officer.incidents import MAX_NOTE, IncidentService, MailRef, ReportRefused
from leakguard.officer.record import Document, sections
from leakguard.officer.texts import t as it
from leakguard.officer.texts import told_words
from leakguard.store.journal import FOLLOWUPS
from leakguard.web.app import read_form

if TYPE_CHECKING:
    from leakguard.web.app import WebApp

FORM_FIELDS = 8
FORM_BYTES = 64 * 1024
REASONS = ("wrong_recipient", "wrong_attachment", "visible_recipients", "personal_data", "other")


class IncidentPages:
    def __init__(self, web: WebApp, incidents: IncidentService) -> None:
        self.web = web
        self.incidents = incidents

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/report/{signed}", self.report_get, methods=["GET", "HEAD"]),
            Route("/report/{signed}", self.report_post, methods=["POST"]),
            Route("/admin/incidents", self.admin_list, methods=["GET"]),
            Route("/admin/incidents/{incident_id}", self.admin_show, methods=["GET", "POST"]),
            Route("/admin/incidents/{incident_id}/record.{fmt}", self.admin_file, methods=["GET"]),
        ]

    def _render(self, request: Request, name: str, lang: str, status: int = 200, **ctx: Any) -> Any:
        def tr(key: str, **fields: object) -> str:
            return it(key, lang, **fields)

        return self.web.render(request, name, lang, status=status, it=tr, **ctx)

    def _invalid(self, request: Request, lang: str, status: int, message: str = "") -> Response:
        ctx = {"message": message} if message else {}
        resp: Response = self.web.render(request, "invalid.html.j2", lang, status=status, **ctx)
        return resp

    # ------------------------------------------------------------------ report page

    def _mail_view(self, mail: MailRef, lang: str) -> dict[str, Any]:
        tz = zone(self.incidents.timezone)
        org = self.incidents.org
        d, h = mail.decision, mail.hold
        rcpts = d.rcpts if d is not None else (h.rcpts if h is not None else ())
        if d is not None:
            at, did = d.at, it(f"outcome.{d.outcome}", lang)
        else:
            assert h is not None
            at, did = h.created_at, hold_t(f"state.{h.state.value}", lang)
        if h is not None and d is not None and h.state.value != "held":
            did = f"{did} → {hold_t(f'state.{h.state.value}', lang)}"
        return {
            "at": local_time(at, tz),
            "subject": redact_text(mail.subject),
            "rcpts": [(r, org.is_internal(r)) for r in rcpts[:100]],
            "more": max(0, len(rcpts) - 100),
            "did": did,
            "ref": d.id if d is not None else (h.id if h is not None else ""),
        }

    async def _open(self, request: Request) -> tuple[Any, MailRef | None, str, Response | None]:
        signed = request.path_params["signed"]
        ref = self.incidents.links.verify(signed) if self.incidents.links else None
        default = self.web.default_lang(request)
        if ref is None:
            lang = self.web.lang_of(request, default)
            return None, None, lang, self._invalid(request, lang, 404)
        lang = self.web.lang_of(request, self.incidents.lang_for(ref.actor))
        try:
            mail = await self.incidents.find_mail(decision_id=ref.decision_id, hold_id=ref.hold_id)
        except ReportRefused as exc:
            return ref, None, lang, self._invalid(request, lang, 404, it(f"err.{exc.code}", lang))
        if not self._entitled(ref.actor, mail):
            return ref, None, lang, self._invalid(request, lang, 403, it("err.not_entitled", lang))
        return ref, mail, lang, None

    async def _already(self, mail: MailRef) -> Any:
        return await self.incidents.existing(
            mail.decision.id if mail.decision else None,
            mail.hold.id if mail.hold else None,
            "report",
        )

    @staticmethod
    def _entitled(actor: str, mail: MailRef) -> bool:
        return actor.startswith("admin:") or actor.strip().lower() in mail.identities

    async def report_get(self, request: Request) -> Response:
        _ref, mail, lang, refused = await self._open(request)
        if refused is not None:
            return refused
        assert mail is not None
        already = await self._already(mail)
        resp: Response = self._render(
            request,
            "report.html.j2",
            lang,
            mail=self._mail_view(mail, lang),
            reasons=REASONS,
            max_note=MAX_NOTE,
            already=already.id if already else "",
            error="",
            note="",
        )
        return resp

    async def report_post(self, request: Request) -> Response:
        # the link first: a body from someone without a genuine link is never read, and the
        # form (csrf, reason, note) is small: a few fields of bounded size (else 400)
        ref, mail, lang, refused = await self._open(request)
        if refused is not None:
            return refused
        form = await read_form(request, max_fields=FORM_FIELDS, max_part_size=FORM_BYTES)
        if not self.web.csrf_ok(request, str(form.get("csrf", ""))):
            return self._invalid(request, lang, 403, it("page.refused", lang, why="CSRF"))
        assert mail is not None and ref is not None
        reason = str(form.get("reason", ""))
        reason = reason if reason in REASONS else "other"
        note = str(form.get("note", ""))
        if len(note) > MAX_NOTE:
            resp: Response = self._render(
                request,
                "report.html.j2",
                lang,
                status=400,
                mail=self._mail_view(mail, lang),
                reasons=REASONS,
                max_note=MAX_NOTE,
                already="",
                error=it("err.too_long", lang, max=MAX_NOTE),
                note=note[:MAX_NOTE],
            )
            return resp
        before = await self._already(mail)
        # what went wrong, in both languages: the record is read in either
        key = "page.reason." + reason
        text = f"[{it(key, 'ja')} / {it(key, 'en')}] {note.strip()}".strip()
        try:
            incident = await self.incidents.report(
                decision_id=mail.decision.id if mail.decision else None,
                hold_id=mail.hold.id if mail.hold else None,
                actor=ref.actor,
                via="web",
                note=text,
            )
        except ReportRefused as exc:
            return self._invalid(request, lang, 403, it(f"err.{exc.code}", lang))
        done: Response = self._render(
            request,
            "report_done.html.j2",
            lang,
            incident=incident,
            again=before is not None,
            who=told_words([role for _, role in self.incidents.route(incident)], lang),
        )
        return done

    # ------------------------------------------------------------------ admin pages

    def _login(self, lang: str) -> Response:
        return RedirectResponse(f"/admin/login?lang={lang}", status_code=303)

    async def admin_list(self, request: Request) -> Response:
        user = await self.web.admin_user(request)
        lang = self.web.lang_of(request, self.web.default_lang(request))
        if user is None:
            return self._login(lang)
        open_only = request.query_params.get("open") == "1"
        rows = await self.incidents.store.journal.list_incidents(
            state="open" if open_only else None, limit=500
        )
        tz = zone(self.incidents.timezone)
        view = [
            {
                "id": r.id,
                "at": local_time(r.created_at, tz),
                "kind": it(f"kind.{r.kind}", lang),
                "state": it(f"state.{r.state}", lang),
                "state_key": r.state,
                "sender": r.sender,
                "department": r.department,
                "rules": r.rules,
                "done": sum(1 for k in FOLLOWUPS if k in r.followups),
            }
            for r in rows
        ]
        resp: Response = self._render(
            request,
            "incidents_list.html.j2",
            lang,
            user=user,
            rows=view,
            open_only=open_only,
            total=len(FOLLOWUPS),
        )
        return resp

    async def _document(self, incident_id: str, lang: str) -> Document | None:
        f = await self.incidents.record(incident_id)
        if f is None:
            return None
        return sections(f, lang, self.incidents.timezone)

    async def admin_show(self, request: Request) -> Response:
        user = await self.web.admin_user(request)
        lang = self.web.lang_of(request, self.web.default_lang(request))
        if user is None:
            return self._login(lang)
        incident_id = request.path_params["incident_id"][:32]
        inc = await self.incidents.store.journal.get_incident(incident_id)
        if inc is None:
            return self._invalid(request, lang, 404, it("adm.unknown", lang))
        if request.method == "POST":
            form = await read_form(request)
            if not self.web.csrf_ok(request, str(form.get("csrf", ""))):
                return self._invalid(request, lang, 403, it("page.refused", lang, why="CSRF"))
            actor = f"admin:{user}"
            op = str(form.get("op", ""))
            if op == "followups":
                for key in FOLLOWUPS:
                    want = form.get(key) == "1"
                    if want != (key in inc.followups):
                        await self.incidents.followup(inc.id, key, done=want, actor=actor)
            elif op in ("close", "reopen"):
                state = "closed" if op == "close" else "open"
                if state != inc.state:
                    await self.incidents.set_state(inc.id, state, actor=actor)
            return RedirectResponse(
                f"/admin/incidents/{inc.id}?lang={lang}&saved=1", status_code=303
            )
        doc = await self._document(inc.id, lang)
        assert doc is not None
        # links to the hold's page and to the other incident filed for the same mail
        journal = self.incidents.store.journal
        hold_id = inc.hold_id
        if hold_id is None and inc.decision_id is not None:
            row = await journal.get(inc.decision_id)
            hold_id = row.hold_id if row is not None else None
        related = []
        for kind in ("report", "near_miss"):
            for other in (
                await journal.find_incident(decision_id=inc.decision_id, kind=kind)
                if inc.decision_id
                else None,
                await journal.find_incident(hold_id=hold_id, kind=kind) if hold_id else None,
            ):
                if other is not None and other.id != inc.id and other not in related:
                    related.append(other)
        resp: Response = self._render(
            request,
            "incident.html.j2",
            lang,
            user=user,
            doc=doc,
            inc=inc,
            hold_id=hold_id,
            related=related,
            followups=[(k, it(f"followup.{k}", lang), k in inc.followups) for k in FOLLOWUPS],
            saved=request.query_params.get("saved") == "1",
        )
        return resp

    async def admin_file(self, request: Request) -> Response:
        user = await self.web.admin_user(request)
        lang = self.web.lang_of(request, self.web.default_lang(request))
        if user is None:
            return self._login(lang)
        fmt = request.path_params["fmt"]
        if fmt not in ("md", "pdf"):
            return self._invalid(request, lang, 404)
        inc = await self.incidents.store.journal.get_incident(
            request.path_params["incident_id"][:32]
        )
        doc = await self._document(inc.id, lang) if inc is not None else None
        if inc is None or doc is None:
            return self._invalid(request, lang, 404, it("adm.unknown", lang))
        name = f"{inc.id}-{lang}.{fmt}"  # the stored id (I- and base32), never the raw path
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        # both render mail-derived text (bounded by the journal's limits): in a worker
        # process of the report step, within its budget (issue 12)
        try:
            if fmt == "md":
                md = await stepproc.report_markdown(doc)
                return Response(md, media_type="text/markdown; charset=utf-8", headers=disposition)
            pdf = await stepproc.report_pdf(doc)
        except budget.BudgetExceeded:
            return self._invalid(request, lang, 503, it("adm.render_budget", lang))
        return Response(pdf, media_type="application/pdf", headers=disposition)
