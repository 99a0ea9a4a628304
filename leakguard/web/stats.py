"""``/admin/stats``: what each rule does, per rule and per department (issue 9).

Behind the admin login (a visitor without a session is sent to the login page). A GET
only reads. The period is 7, 30 or 90 days back from now; charts are server-side SVG
(``leakguard.web.charts``) with the same numbers as tables beside them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from leakguard.holds.explain import local_time, zone
from leakguard.officer.stats import (
    DAILY_ACTIONS,
    RowStats,
    compute_stats,
    duration_text,
    key_text,
    label,
    rate_text,
)
from leakguard.store import SqlStore
from leakguard.store.stats import StatsQueries
from leakguard.web.charts import COLORS, HOLD_COLORS, ChartText, daily_chart, rules_chart

if TYPE_CHECKING:
    from leakguard.web.app import WebApp

PERIODS = (7, 30, 90)

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("統計", "Statistics"),
    "intro": (
        "各ルールが実際のメールに対して何をしたかを示します。保留の結果は保留の記録から、"
        "それ以外は判定記録 (ジャーナル) から集計しています。",
        "What each rule did to real mail. Hold outcomes come from the holds, everything "
        "else from the decision journal.",
    ),
    "period": ("期間", "Period"),
    "days": ("{n}日間", "{n} days"),
    "from_to": ("{since} から {until} まで", "{since} to {until}"),
    "daily": ("日ごとの判定", "Decisions per day"),
    "daily_desc": (
        "{n}日間の日ごとのメール数を、判定 (通過・Bcc・保留・遅延・拒否) ごとに"
        "積み上げた棒グラフ。合計 {total} 通。",
        "Stacked bars of mails per day over {n} days, by verdict (pass, Bcc, hold, delay, "
        "reject). {total} mails in all.",
    ),
    "rules_chart": ("ルールごとの保留と送信率", "Holds per rule and release rate"),
    "rules_desc": (
        "ルールごとの保留件数の横棒グラフ。送信された分・破棄または期限切れ・未処理に分け、"
        "三角の印は回答済みの保留のうち送信された割合 (送信率) の位置。",
        "Horizontal bars of holds per rule, split into released, discarded or expired, and "
        "still open; the triangles mark the release rate of the answered holds.",
    ),
    "by_rule": ("ルール別", "By rule"),
    "by_dept": ("部署別", "By department"),
    "daily_table": ("日ごとの数値 (表)", "Per-day numbers (table)"),
    "day": ("日付", "Day"),
    "total": ("合計", "Total"),
    "none": ("この期間の記録はありません。", "Nothing was recorded in this period."),
    "noisy_head": ("要見直しのルール", "Rules that look like noise"),
    "noisy_explain": (
        "回答済みの保留が {min} 件以上あり、その {rate}% 以上がそのまま (または Bcc で) 送信された"
        "ルールです。止めたメールの多くが問題なかった可能性があり、条件や例外の見直しを検討してください。"
        "送信率は誤検知の目安で、確定ではありません。",
        "At least {min} of these rules' holds were answered and {rate}% or more of those "
        "were sent anyway (or as Bcc): most of what they stop may be harmless. Consider "
        "narrowing their conditions or adding exceptions. The release rate is a proxy for "
        "false positives, not proof.",
    ),
    "noisy": ("要見直し", "noisy"),
    "rule_holds": ("このルールで保留したメールの一覧", "The mails this rule held"),
    "legend.pass": ("通過", "pass"),
    "legend.bcc": ("Bcc", "Bcc"),
    "legend.hold": ("保留", "hold"),
    "legend.delay": ("遅延", "delay"),
    "legend.reject": ("拒否", "reject"),
    "legend.released": ("送信 (Bcc含む)", "released (incl. Bcc)"),
    "legend.closed": ("破棄・期限切れ", "discarded or expired"),
    "legend.open": ("未処理", "open"),
    "legend.rate": ("送信率", "release rate"),
    "col.holds": ("保留", "Holds"),
    "col.released": ("送信", "Released"),
    "col.released_bcc": ("Bcc送信", "As Bcc"),
    "col.discarded": ("破棄", "Discarded"),
    "col.expired": ("期限切れ", "Expired"),
    "col.open": ("未処理", "Open"),
    "col.rate": ("送信率", "Release rate"),
    "col.median": ("送信までの中央値", "Median to release"),
    "col.bcc_rewrites": ("Bcc変換", "Bcc rewrites"),
    "col.audit_hits": ("監査のみ", "Audit hits"),
    "col.delays": ("遅延", "Delays"),
    "col.rejects": ("拒否", "Rejects"),
    "col.rule": ("ルール", "Rule"),
    "col.department": ("部署", "Department"),
    "help": (
        "送信率 = (送信 + Bcc送信) ÷ 回答済みの保留 (送信・Bcc送信・破棄・期限切れ)。"
        "監査のみ = mode: audit のルールが該当した件数 (実際には何もしていません)。"
        "CLI: leakguard stats / leakguard stats audit ルールID",
        "Release rate = (released + as Bcc) ÷ answered holds (released, as Bcc, discarded, "
        "expired). Audit hits = mails a mode: audit rule matched (it did nothing). "
        "CLI: leakguard stats / leakguard stats audit RULE",
    ),
}

COLUMNS = (
    "holds",
    "released",
    "released_bcc",
    "discarded",
    "expired",
    "open",
    "rate",
    "median",
    "bcc_rewrites",
    "audit_hits",
    "delays",
    "rejects",
)


def tx(key: str, lang: str, **fields: object) -> str:
    ja, en = TEXTS[key]
    text = ja if lang == "ja" else en
    return text.format(**fields) if fields else text


def _period(request: Request) -> int:
    try:
        days = int(request.query_params.get("days", "30")[:4])
    except ValueError:
        return 30
    return days if days in PERIODS else 30


class StatsPage:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    async def get(self, request: Request) -> Response:
        web = self.web
        user = await web.admin_user(request)
        lang = web.lang_of(request, web.default_lang(request))
        if user is None:
            return RedirectResponse(f"/admin/login?lang={lang}", status_code=303)
        store = web.service.store
        if not isinstance(store, SqlStore):  # pragma: no cover - every service uses one
            return Response("no store", status_code=503)
        days = _period(request)
        now = web.service.now()
        since = now - timedelta(days=days)
        tz = zone(web.service.config.timezone)
        q = StatsQueries(store)
        by_rule, by_dept = await asyncio.gather(
            compute_stats(q, since, now, by="rule", tz=tz),
            compute_stats(q, since, now, by="department", tz=tz, daily=False),
        )

        def rows(report_rows: Sequence[RowStats], by: str) -> list[dict[str, object]]:
            out = []
            for r in report_rows:
                cells = {c: str(getattr(r, c, "")) for c in COLUMNS}
                cells["rate"] = rate_text(r.release_rate)
                cells["median"] = duration_text(r.median_release_seconds, lang)
                name = key_text(r.key, by, lang)
                out.append({"name": name, "key": r.key[:200], "noisy": r.noisy, **cells})
            return out

        legend = {a: tx(f"legend.{a}", lang) for a in DAILY_ACTIONS}
        total = sum(d.total for d in by_rule.days)
        daily = daily_chart(
            by_rule.days,
            ChartText(tx("daily", lang), tx("daily_desc", lang, n=days, total=total), legend),
        )
        rlegend = {k: tx(f"legend.{k}", lang) for k in ("released", "closed", "open", "rate")} | {
            "holds": tx("col.holds", lang),
            "none": tx("none", lang),
        }
        rchart = rules_chart(
            by_rule.rows,
            ChartText(tx("rules_chart", lang), tx("rules_desc", lang), rlegend),
            noisy_label=tx("noisy", lang),
        )
        return web.render(
            request,
            "admin_stats.html.j2",
            lang,
            user=user,
            s=lambda key, **kw: tx(key, lang, **kw),
            days=days,
            periods=PERIODS,
            since=local_time(since, tz),
            until=local_time(now, tz),
            rule_rows=rows(by_rule.rows, "rule"),
            dept_rows=rows(by_dept.rows, "department"),
            columns=COLUMNS,
            noisy=[key_text(r.key, "rule", lang) for r in by_rule.noisy],
            noisy_min=by_rule.noisy_min,
            noisy_rate=round(by_rule.noisy_rate * 100),
            daily_chart=daily,
            rules_chart=rchart,
            day_rows=[
                (d.day.isoformat(), [d.counts.get(a, 0) for a in DAILY_ACTIONS], d.total)
                for d in by_rule.days
            ],
            actions=DAILY_ACTIONS,
            legend=legend,
            colors=COLORS,
            hold_colors=HOLD_COLORS,
            mails_total=label(
                "mails_total",
                lang,
                total=total,
                parts=("、" if lang == "ja" else ", ").join(
                    f"{label('act.' + a, lang)} {sum(d.counts.get(a, 0) for d in by_rule.days)}"
                    for a in DAILY_ACTIONS
                ),
            ),
        )


def stats_routes(web: WebApp) -> list[BaseRoute]:
    page = StatsPage(web)
    return [Route("/admin/stats", page.get, methods=["GET"])]
