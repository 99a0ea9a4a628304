"""The web application: review pages for hold links and the administrators' view.

``create_app(service, config, extra_routes=...)`` returns a Starlette app that the service
runs with uvicorn in the relay's event loop. Rules it keeps:

- A GET never changes anything (mail systems' link scanners open every link). Every state
  change is a POST carrying a CSRF token (HMAC of a per-browser cookie). The cookie itself
  is a random value signed by this server: a value the server did not issue (planted by an
  attacker on a sibling host) is refused and replaced. It is rotated at admin login and
  logout.
- Redirects are relative (``/admin``, never ``http://<Host header>/...``): Starlette's
  add-or-strip-the-slash redirect is replaced by one that keeps only the path. With an
  https base URL every response carries ``Strict-Transport-Security``.
- Review links are signed, expiring and single-use (``HoldService.open_link``); the token
  is spent only when an answer is executed.
- Pages work without JavaScript and send a strict Content-Security-Policy: no scripts at
  all, styles only from here, images only ``data:``, forms only to this site, no framing.
- Held mail is shown as text, or as HTML sanitised by nh3 without any link or image source.
- Administrators log in against ``web.admin_users_file``, which must not be the SMTP AUTH
  users file (``create_app`` refuses it: every mail user would become an administrator).
  An admin session is a signed cookie (key derived from the web secret, so every worker
  and every node sharing the store accepts it) bound to a random session id and the
  user's password hash; every admin request checks that the user is still in the file
  with the same password and that the session was not logged out: logout records the id
  in the store (``revoked_sessions``, kept until the session would have expired), so it
  ends the session on every node.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from leakguard import budget, stepproc
from leakguard.durations import parse_duration
from leakguard.holds.model import HoldRecord, HoldState, Via
from leakguard.holds.service import ADMIN_ONLY, Decision, HoldService, Outcome
from leakguard.holds.texts import t
from leakguard.i18n import normalize_lang
from leakguard.relay.auth import PEER_SOFT_AFTER, SOFT_MAX_DELAY, Throttle
from leakguard.relay.users import User, read_users, verify_hash
from leakguard.web.config import WebConfig
from leakguard.web.render import MessageView, fallback_view, wrap_addresses
from leakguard.web.stats import stats_routes

CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CSRF_COOKIE = "lg_csrf"
SESSION_COOKIE = "lg_admin"
SESSION_MAX_AGE = 8 * 3600

_ENV = Environment(
    loader=PackageLoader("leakguard.web", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["addr"] = wrap_addresses


HSTS = "max-age=31536000"


_LINK_PAGES = ("/h/", "/report/")


def _link_scope(request: Request) -> bytes:
    """The hash of the signed link a review or report page is served under (their forms'
    CSRF tokens are bound to it), or b"" for every other page."""
    signed = request.path_params.get("signed")
    if not isinstance(signed, str) or not request.url.path.startswith(_LINK_PAGES):
        return b""
    return b"link:" + hashlib.sha256(signed.encode("utf-8", "surrogateescape")).hexdigest().encode()


async def _message_view(raw: bytes) -> MessageView:
    """The review page's view of a held mail: hostile content, so in a killable worker
    process of the review step (``stepproc``); past its budget (time, memory, a crash),
    the plain-text truncated view that says the mail could not be fully displayed
    (issue 12). The worker returns plain data; escaping stays in the page's templates."""
    try:
        return await stepproc.review_page(raw)
    except budget.BudgetExceeded:
        return fallback_view(raw)


async def _verify(record: User | None, password: str) -> bool:
    """argon2 in the password pool, never on the event loop; past its budget: refused."""
    try:
        return await budget.run(budget.PASSWORD, verify_hash, record, password) and (
            record is not None
        )
    except budget.BudgetExceeded:
        return False


class _SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: Any, *, hsts: bool = False) -> None:
        super().__init__(app)
        self.hsts = hsts

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["X-Frame-Options"] = "DENY"
        if self.hsts:
            h["Strict-Transport-Security"] = HSTS
        if not request.url.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
        return response


# Every form of the web app is small (a token, an action, a user name and password, a short
# note): no files, a few fields of bounded size; a bigger request body is refused with 413
# before any handler reads it (issue 12).
FORM_MAX_FIELDS = 16
FORM_MAX_PART = 64 * 1024
MAX_BODY = 1024 * 1024


async def read_form(
    request: Request, *, max_fields: int = FORM_MAX_FIELDS, max_part_size: int = FORM_MAX_PART
) -> FormData:
    """``request.form()`` with the app's limits: no files, ``max_fields`` fields of at most
    ``max_part_size`` bytes each (beyond them Starlette answers 400, see ``_limit_page``)."""
    return await request.form(max_files=0, max_fields=max_fields, max_part_size=max_part_size)


_LIMIT_TEXT = {
    400: (
        "送信されたフォームが正しくないか、大きすぎます。ページを開き直してください。",
        "The form sent is malformed or too large. Please open the page again.",
    ),
    413: (
        "送信されたデータが大きすぎるため、受け付けませんでした。",
        "The request was refused because it is too large.",
    ),
}


def _limit_body(status: int) -> bytes:
    """A small page in Japanese and English for a refused request body (400, 413)."""
    ja, en = _LIMIT_TEXT[status]
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>{status}</title></head><body>"
        f'<p lang="ja">{ja}</p><p lang="en">{en}</p></body></html>'
    ).encode()


async def _limit_page(request: Request, exc: Exception) -> Response:
    """Starlette's form limits raise HTTPException(400): answered with the ja/en page."""
    status = getattr(exc, "status_code", 400)
    if status not in _LIMIT_TEXT:
        return PlainTextResponse(str(getattr(exc, "detail", "")), status_code=status)
    return HTMLResponse(_limit_body(status), status_code=status)


class _BodyTooLarge(Exception):
    pass


class _BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (ja/en): at once when the
    Content-Length says so, else as soon as the streamed body passes the limit."""

    def __init__(self, app: Any, *, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", ()):
            if k == b"content-length" and (not v.isdigit() or int(v) > self.max_bytes):
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            msg = await receive()
            if msg.get("type") == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Any) -> None:
            nonlocal started
            if msg.get("type") == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = _limit_body(413)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class WebConfigError(ValueError):
    """A web configuration the app refuses to run with (message in Japanese and English)."""


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when both paths name one file (resolved path, or same inode when both exist)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):
        pass
    try:
        return os.path.samefile(pa, pb)
    except OSError:
        return False


def check_admin_users_file(
    admin_users_file: str | os.PathLike[str] | None,
    smtp_users_file: str | os.PathLike[str] | None,
) -> None:
    """Refuse an administrators' users file that is the SMTP AUTH users file."""
    if admin_users_file and smtp_users_file and _same_file(admin_users_file, smtp_users_file):
        raise WebConfigError(
            t("admin.same_as_smtp", "ja", path=str(admin_users_file))
            + "\n"
            + t("admin.same_as_smtp", "en", path=str(admin_users_file))
        )


MISTAKE_ACTION = "discard_mistake"  # 「破棄 (誤送信でした)」: a discard, as a mistake


def _decision(value: str) -> Decision | None:
    if value == MISTAKE_ACTION:
        return Decision.DISCARD
    try:
        return Decision(value)
    except ValueError:
        return None


def _reportable(hold: HoldRecord | None) -> bool:
    return hold is not None and hold.state not in (HoldState.DISCARDED, HoldState.EXPIRED)


class WebApp:
    def __init__(
        self,
        service: HoldService,
        config: WebConfig,
        *,
        smtp_users_file: str | os.PathLike[str] | None = None,
    ) -> None:
        check_admin_users_file(config.admin_users_file, smtp_users_file)
        self.service = service
        self.config = config
        self.smtp_users_file = smtp_users_file
        secret = service.secret
        self._key = (secret.encode() if isinstance(secret, str) else secret) + b"|web"
        base = service.base_url or config.base_url or ""
        self.secure_cookies = base.lower().startswith("https://")
        self.throttle = Throttle()
        # Derived from the web secret, like the links: a session opened on one worker or
        # node is valid on the others (the web secret must be the same everywhere; the
        # service checks that at start when the store is shared). Revocation is the store's.
        self._sessions = URLSafeTimedSerializer(
            hmac.new(self._key, b"admin-session-key", hashlib.sha256).digest(),
            salt="leakguard.admin-session.v3",
        )
        self._users_cache: tuple[tuple[str, int, int, int], dict[str, User]] | None = None

    # ------------------------------------------------------------------ plumbing

    def render(
        self, request: Request, name: str, lang: str, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        def tr(key: str, **fields: object) -> str:
            return t(key, lang, **fields)

        csrf_cookie = request.cookies.get(CSRF_COOKIE) or ""
        new_cookie = ""
        if not self._csrf_cookie_ok(csrf_cookie):
            new_cookie = csrf_cookie = self._new_csrf_cookie()
        body = _ENV.get_template(name).render(
            t=tr,
            lang=lang,
            csrf=self._csrf_for(csrf_cookie, _link_scope(request)),
            request_path=request.url.path,
            other_lang="en" if lang == "ja" else "ja",
            **ctx,
        )
        resp = HTMLResponse(body, status_code=status)
        if new_cookie:
            self._set_csrf_cookie(resp, new_cookie)
        return resp

    def _set_csrf_cookie(self, resp: Response, value: str) -> None:
        resp.set_cookie(
            CSRF_COOKIE,
            value,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
            path="/",
        )

    def _csrf_cookie_sig(self, nonce: str) -> str:
        return hmac.new(self._key, b"csrf-cookie|" + nonce.encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    def _new_csrf_cookie(self) -> str:
        """A random value signed by this server (``nonce.signature``)."""
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._csrf_cookie_sig(nonce)}"

    def _csrf_cookie_ok(self, value: str) -> bool:
        """Only a cookie this server issued: an attacker-chosen value fails the signature."""
        if len(value) > 128 or value.count(".") != 1:
            return False
        nonce, sig = value.split(".")
        if not 16 <= len(nonce) <= 64 or not nonce.replace("-", "").replace("_", "").isalnum():
            return False
        return hmac.compare_digest(self._csrf_cookie_sig(nonce), sig)

    def _csrf_for(self, cookie: str, scope: bytes = b"") -> str:
        """The form token: an HMAC of the browser's cookie and, on a review or report
        link's page (no session there), of that link: ``scope`` is its hash."""
        if scope:
            msg = b"csrf-link|" + scope + b"|" + cookie.encode()
        else:
            msg = b"csrf|" + cookie.encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, form_value: str) -> bool:
        """The form's token was issued for this browser's cookie and, on a link's page,
        for this link: a cookie planted by someone who opened another link (or a token
        copied from another link's page) does not verify."""
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        if not self._csrf_cookie_ok(cookie) or not form_value:
            return False
        return hmac.compare_digest(self._csrf_for(cookie, _link_scope(request)), form_value)

    def lang_of(self, request: Request, default: str) -> str:
        q = request.query_params.get("lang")
        if q in ("ja", "en"):
            return q
        return default

    def default_lang(self, request: Request) -> str:
        base = normalize_lang(self.service.config.language, "ja")
        accept = request.headers.get("accept-language", "")[:200].lower()
        if accept:
            first = accept.split(",")[0].strip()
            return normalize_lang(first, base)
        return base

    # ------------------------------------------------------------------ review pages

    async def _page_for(self, request: Request, signed: str) -> Response:
        view = await self.service.open_link(signed)
        if view is None:
            return await self._spent_or_invalid(request, signed)
        lang = self.lang_of(request, view.lang)
        hold = view.hold
        ex = self.service.explain(hold, lang)
        if not hold.state.is_open:
            return self.render(
                request,
                "result.html.j2",
                lang,
                ex=ex,
                ok=False,
                message=t("page.closed", lang, state=ex.state_text),
                detail=await self.service.handled_text(hold, lang),
                report_url=self.service.report_url(hold, view.actor) if _reportable(hold) else None,
            )
        raw = await self.service.store.get_message(hold.message_sha256)
        mv = await _message_view(raw)
        show_html = request.query_params.get("view") == "html" and bool(mv.html)
        return self.render(
            request,
            "review.html.j2",
            lang,
            ex=ex,
            mv=mv,
            show_html=show_html,
            actions=self._actions(hold, view.role, lang),
            wanted=request.query_params.get("a", ""),
            base=f"/h/{signed}",
            role=view.role,
            report_url=self.service.report_url(hold, view.actor),
        )

    async def _spent_or_invalid(self, request: Request, signed: str) -> Response:
        """A link that cannot be used: say what happened to its own mail (used or expired),
        or, for a forged or unknown link, only that it is not valid (404)."""
        spent = await self.service.spent_link(signed)
        if spent is None:
            lang = self.lang_of(request, self.default_lang(request))
            return self.render(request, "invalid.html.j2", lang, status=404)
        lang = self.lang_of(request, spent.lang)
        hold = spent.hold
        ex = self.service.explain(hold, lang)
        handled = await self.service.handled_text(hold, lang)
        still_open = ""
        if hold.state.is_open:
            still_open = t("page.still_open", lang, state=ex.state_text)
        return self.render(
            request,
            "used.html.j2",
            lang,
            status=410,
            spent=spent,
            ex=ex,
            handled=handled,
            still_open=still_open,
            report_url=(
                self.service.report_url(hold, spent.issued_to) if _reportable(hold) else None
            ),
        )

    def _actions(self, hold: HoldRecord, role: str, lang: str) -> list[tuple[str, str, str]]:
        """(decision, label, style) buttons for a person in ``role``."""
        if not hold.state.is_open:
            return []
        mistake = (MISTAKE_ACTION, t("btn.discard_mistake", lang), "danger")
        if role == "sender" and hold.approvers:
            return [("discard", t("btn.withdraw", lang), "danger"), mistake]
        if hold.action == "delay":
            return [
                ("discard", t("btn.cancel", lang), "danger"),
                ("release", t("btn.send_now", lang), "secondary"),
                mistake,
            ]
        out: list[tuple[str, str, str]] = []
        if hold.offer_bcc:
            out.append(("release_bcc", t("btn.release_bcc", lang), "primary"))
        out.append(
            ("release", t("btn.release", lang), "secondary" if hold.offer_bcc else "primary")
        )
        out.append(("discard", t("btn.discard", lang), "danger"))
        out.append(mistake)
        return out

    async def review_get(self, request: Request) -> Response:
        return await self._page_for(request, request.path_params["signed"])

    async def review_post(self, request: Request) -> Response:
        signed = request.path_params["signed"]
        form = await read_form(request)
        csrf = str(form.get("csrf", ""))
        action = str(form.get("action", ""))
        decision = _decision(action)
        confirmed = form.get("confirm") == "1"
        view = await self.service.open_link(signed)
        lang = self.lang_of(request, view.lang if view else self.default_lang(request))
        if not self.csrf_ok(request, csrf):
            return self.render(
                request, "invalid.html.j2", lang, status=403, message=t("page.csrf", lang)
            )
        if view is None:
            return await self._spent_or_invalid(request, signed)
        if decision is None:
            return await self._page_for(request, signed)
        ex = self.service.explain(view.hold, lang)
        if (
            decision in (Decision.RELEASE, Decision.RELEASE_BCC)
            and ex.needs_confirm
            and not confirmed
            and view.hold.action != "delay"
        ):
            return self.render(
                request,
                "confirm.html.j2",
                lang,
                ex=ex,
                decision=str(decision),
                base=f"/h/{signed}",
                label=t(
                    "btn.release_bcc"
                    if decision == Decision.RELEASE_BCC
                    else "btn.confirm_release",
                    lang,
                ),
            )
        outcome = await self.service.act_on_link(signed, decision, mistake=action == MISTAKE_ACTION)
        return self._result(request, outcome, lang, actor=view.actor)

    def _result(
        self, request: Request, outcome: Outcome, lang: str, *, actor: str = ""
    ) -> Response:
        ex = self.service.explain(outcome.hold, lang) if outcome.hold else None
        status = 200 if outcome.ok else 409
        report_url = None
        if actor and outcome.hold is not None and _reportable(outcome.hold):
            report_url = self.service.report_url(outcome.hold, actor)
        return self.render(
            request,
            "result.html.j2",
            lang,
            status=status,
            ex=ex,
            ok=outcome.ok,
            message=outcome.message(lang),
            report_url=report_url,
        )

    # ------------------------------------------------------------------ admin view

    def _session_data(self, request: Request) -> dict[str, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        out = {k: data.get(k) for k in ("u", "n", "p")}
        if not all(isinstance(v, str) and v for v in out.values()):
            return None
        return {k: str(v) for k, v in out.items()}

    async def admin_user(self, request: Request) -> str | None:
        """The logged-in administrator, checked on every request: signed, not expired, not
        logged out (on any node: the store), and the user still in the admin users file
        with the same password."""
        data = self._session_data(request)
        if data is None:
            return None
        user = self._admin_users().get(data["u"])
        if user is None or not hmac.compare_digest(self._fingerprint(user), data["p"]):
            return None
        if await self.service.store.session_revoked(data["n"]):
            return None
        return user.name

    def _fingerprint(self, user: User) -> str:
        """Binds a session to the user's current password hash (a change ends it)."""
        msg = b"session|" + user.name.encode() + b"|" + user.hash.encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def _admin_users(self) -> dict[str, User]:
        """The admin users file, re-read whenever it changes (stat), never the SMTP one."""
        path = self._users_path()
        if path is None:
            return {}
        try:
            st = path.stat()
        except OSError:
            return {}
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._users_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            users = read_users(path)
        except (OSError, UnicodeError):
            return {}
        self._users_cache = (key, users)
        return users

    def _users_path(self) -> Path | None:
        if not self.config.admin_users_file:
            return None
        if self.smtp_users_file and _same_file(self.config.admin_users_file, self.smtp_users_file):
            return None  # refused at creation; also if the configuration was changed since
        return Path(self.config.admin_users_file)

    async def login_get(self, request: Request) -> Response:
        lang = self.lang_of(request, self.default_lang(request))
        return self.render(
            request,
            "admin_login.html.j2",
            lang,
            error="",
            configured=self._users_path() is not None,
        )

    async def login_post(self, request: Request) -> Response:
        lang = self.lang_of(request, self.default_lang(request))
        form = await read_form(request)
        if not self.csrf_ok(request, str(form.get("csrf", ""))):
            return self.render(
                request, "invalid.html.j2", lang, status=403, message=t("page.csrf", lang)
            )
        path = self._users_path()
        user = str(form.get("user", ""))[:200]
        password = str(form.get("password", ""))[:1000]
        if path is None:
            return self.render(
                request,
                "admin_login.html.j2",
                lang,
                status=403,
                error=t("admin.no_users", lang),
                configured=False,
            )
        record = self._admin_users().get(user)
        # A hard limit only for this user from this client, reserved before any await so
        # concurrent attempts cannot overrun it; a noisy client is only slowed down (a
        # stranger must not lock an administrator out; see relay.auth). argon2 runs in a
        # worker thread, never on the event loop that serves SMTP.
        peer = f"p:{request.client.host if request.client else '?'}"
        pair = f"u:{user}|{peer}"
        ok = self.throttle.reserve(pair)
        if ok:
            wait = self.throttle.delay(peer, PEER_SOFT_AFTER, 0.5, SOFT_MAX_DELAY)
            if wait:
                await asyncio.sleep(wait)
            ok = await _verify(record, password)
        if not ok or record is None:
            self.throttle.failed(peer)
            return self.render(
                request,
                "admin_login.html.j2",
                lang,
                status=403,
                error=t("admin.bad_login", lang),
                configured=True,
            )
        self.throttle.succeeded(pair)
        resp = RedirectResponse(f"/admin?lang={lang}", status_code=303)
        self._set_csrf_cookie(resp, self._new_csrf_cookie())  # rotated: no fixation
        session = {"u": record.name, "n": secrets.token_urlsafe(16), "p": self._fingerprint(record)}
        resp.set_cookie(
            SESSION_COOKIE,
            str(self._sessions.dumps(session)),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/admin",
            max_age=SESSION_MAX_AGE,
        )
        return resp

    async def logout(self, request: Request) -> Response:
        form = await read_form(request)
        resp = RedirectResponse("/admin/login", status_code=303)
        if self.csrf_ok(request, str(form.get("csrf", ""))):
            data = self._session_data(request)
            if data is not None:
                await self._revoke(data["n"])
            resp.delete_cookie(SESSION_COOKIE, path="/admin")
            self._set_csrf_cookie(resp, self._new_csrf_cookie())
        return resp

    async def _revoke(self, nonce: str) -> None:
        """Record the logout in the store: every node refuses the session from now on,
        until it would have expired anyway (then the row is pruned)."""
        until = datetime.now(UTC) + timedelta(seconds=SESSION_MAX_AGE + 60)
        await self.service.store.revoke_session(nonce, until)

    async def admin_list(self, request: Request) -> Response:
        user = await self.admin_user(request)
        lang = self.lang_of(request, self.default_lang(request))
        if user is None:
            return RedirectResponse(f"/admin/login?lang={lang}", status_code=303)
        q = request.query_params
        state = q.get("state", "")
        states = [HoldState(state)] if state in {s.value for s in HoldState} else []
        sender = q.get("sender", "").strip()[:320] or None
        rule = q.get("rule", "").strip()[:200] or None
        age = q.get("age", "").strip()[:20]
        older_than = None
        if age:
            try:
                older_than = self.service.now() - timedelta(seconds=parse_duration(age))
            except ValueError:
                age = ""
        holds = await self.service.store.list_holds(
            states=states, sender=sender, rule=rule, older_than=older_than, limit=500
        )
        rows = [self.service.explain(h, lang) for h in holds]
        return self.render(
            request,
            "admin_list.html.j2",
            lang,
            user=user,
            rows=rows,
            states=[s.value for s in HoldState],
            f_state=state,
            f_sender=sender or "",
            f_rule=rule or "",
            f_age=age,
        )

    async def admin_hold(self, request: Request) -> Response:
        user = await self.admin_user(request)
        lang = self.lang_of(request, self.default_lang(request))
        if user is None:
            return RedirectResponse(f"/admin/login?lang={lang}", status_code=303)
        hold = await self.service.store.get_hold(request.path_params["hold_id"][:64])
        if hold is None:
            return self.render(
                request, "invalid.html.j2", lang, status=404, message=t("err.unknown_hold", lang)
            )
        if request.method == "POST":
            form = await read_form(request)
            if not self.csrf_ok(request, str(form.get("csrf", ""))):
                return self.render(
                    request, "invalid.html.j2", lang, status=403, message=t("page.csrf", lang)
                )
            action = str(form.get("action", ""))
            decision = _decision(action)
            if decision is not None:
                outcome = await self.service.resolve(
                    hold.id,
                    decision,
                    actor=f"admin:{user}",
                    via=Via.WEB,
                    admin=True,
                    mistake=action == MISTAKE_ACTION,
                )
                return self._result(request, outcome, lang)
        ex = self.service.explain(hold, lang)
        raw = await self.service.store.get_message(hold.message_sha256)
        mv = await _message_view(raw)
        timeline = await self.service.store.timeline(hold.id)
        tz = self.service.config.timezone
        from leakguard.holds.explain import local_time, zone

        tl = [
            (
                local_time(tr.at, zone(tz)),
                t(f"state.{tr.from_state}", lang) if tr.from_state else "",
                t(f"state.{tr.to_state}", lang) if tr.to_state else "",
                tr.actor,
                str(tr.via),
                tr.note,
            )
            for tr in timeline
        ]
        actions = self._actions(hold, "approver", lang)
        incidents = await self._incidents_of(hold.id, lang)
        return self.render(
            request,
            "admin_hold.html.j2",
            lang,
            user=user,
            ex=ex,
            mv=mv,
            show_html=request.query_params.get("view") == "html" and bool(mv.html),
            timeline=tl,
            actions=actions,
            base=f"/admin/h/{hold.id}",
            admin_only=ADMIN_ONLY in hold.approvers,
            incidents=incidents,
        )

    async def _incidents_of(self, hold_id: str, lang: str) -> list[tuple[str, str]]:
        """(id, kind in words) of the incidents filed for a held mail: its page links them."""
        journal = getattr(self.service.store, "journal", None)
        if journal is None:
            return []
        from leakguard.officer.texts import t as it

        row = await journal.by_hold(hold_id)
        out: list[tuple[str, str]] = []
        for kind in ("report", "near_miss"):
            found = [await journal.find_incident(hold_id=hold_id, kind=kind)]
            if row is not None:
                found.append(await journal.find_incident(decision_id=row.id, kind=kind))
            for inc in found:
                if inc is not None and inc.id not in {i for i, _ in out}:
                    out.append((inc.id, it(f"kind.{kind}", lang)))
        return out


async def _root(request: Request) -> Response:
    return RedirectResponse("/admin", status_code=303)


def _routed(app: Starlette, scope: Any) -> bool:
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def _slash_redirect(app: Starlette) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's own "add or strip the trailing slash" redirect names the host from the
    Host header (``http://evil.example/static/``): an open redirect. This 404 handler does
    the same with a relative Location (path and query only), and only towards a route that
    exists."""

    async def not_found(request: Request, exc: Exception) -> Response:
        path = request.url.path
        other = path[:-1] if path.endswith("/") else path + "/"
        if (
            request.method in ("GET", "HEAD")
            and other.startswith("/")
            and not other.startswith("//")
            and "\\" not in path
            and not _routed(app, request.scope)
            and _routed(app, {**request.scope, "path": other})
        ):
            query = request.url.query
            target = quote(other) + (f"?{query}" if query else "")
            return RedirectResponse(target, status_code=307)
        return PlainTextResponse("Not Found", status_code=404)

    return not_found


def create_app(
    service: HoldService,
    config: WebConfig,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    smtp_users_file: str | os.PathLike[str] | None = None,
    incidents: Any = None,
) -> Starlette:
    """The web app. ``smtp_users_file`` (the SMTP AUTH users file, when that mode is used)
    lets it refuse ``config.admin_users_file`` pointing at the same file (``WebConfigError``,
    in Japanese and English): every mail user would become an administrator."""
    web = WebApp(service, config, smtp_users_file=smtp_users_file)
    static_dir = Path(__file__).parent / "static"
    routes: list[BaseRoute] = [
        Route("/", _root),
        Route("/h/{signed}", web.review_get, methods=["GET", "HEAD"]),
        Route("/h/{signed}", web.review_post, methods=["POST"]),
        Route("/admin", web.admin_list, methods=["GET"]),
        Route("/admin/login", web.login_get, methods=["GET"]),
        Route("/admin/login", web.login_post, methods=["POST"]),
        Route("/admin/logout", web.logout, methods=["POST"]),
        Route("/admin/h/{hold_id}", web.admin_hold, methods=["GET", "POST"]),
        *stats_routes(web),
        Mount("/static", app=StaticFiles(directory=str(static_dir)), name="static"),
        *extra_routes,
    ]
    if incidents is not None:  # an ``officer.incidents.IncidentService`` (issue 9)
        from leakguard.web.incidents import IncidentPages

        routes += IncidentPages(web, incidents).routes()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_SecurityHeaders, hsts=web.secure_cookies),
            Middleware(_BodyLimit, max_bytes=MAX_BODY),  # inside: its 413 gets the headers
        ],
        exception_handlers={400: _limit_page},
    )
    app.router.redirect_slashes = False  # absolute redirects to the Host header's host
    app.add_exception_handler(404, _slash_redirect(app))
    app.state.web = web
    return app
