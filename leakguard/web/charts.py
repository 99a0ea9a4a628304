"""Server-side SVG charts for the statistics page (no JavaScript, no chart library).

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``; the page also
shows the same numbers as a table. All text is escaped (rule ids and department names come
from policy and directory files), numbers are formatted here, and the output is ``Markup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from leakguard.officer.stats import DAILY_ACTIONS, DayStats, RowStats, clean

# colours per verdict action (colour-blind friendly, distinct in greyscale too)
COLORS = {
    "pass": "#8fbcdb",
    "bcc": "#4e79a7",
    "hold": "#e15759",
    "delay": "#f1a340",
    "reject": "#59386c",
}
HOLD_COLORS = {"released": "#f28e2b", "closed": "#9c9c9c", "open": "#e15759"}


@dataclass(frozen=True, slots=True)
class ChartText:
    title: str
    desc: str
    legend: dict[str, str]  # series -> label


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _ticks(top: int) -> list[int]:
    if top <= 0:
        return [0]
    step = 1
    for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        step = s
        if top / s <= 4:
            break
    else:
        step = max(1, top // 4)
    return list(range(0, top + 1, step))


def daily_chart(days: Sequence[DayStats], text: ChartText, *, uid: str = "daily") -> Markup:
    """Stacked bars per day (pass, bcc, hold, delay, reject)."""
    w, h, left, bottom, top_pad = 720, 240, 44, 28, 10
    plot_w, plot_h = w - left - 8, h - bottom - top_pad
    top = max((d.total for d in days), default=0)
    ticks = _ticks(top)
    scale_top = max(ticks[-1], top, 1)
    n = max(1, len(days))
    slot = plot_w / n
    bar = max(1.0, slot * 0.75)
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{escape(text.title)}</title>',
        f'<desc id="{uid}-d">{escape(text.desc)}</desc>',
    ]
    for tick in ticks:
        y = top_pad + plot_h - plot_h * tick / scale_top
        parts.append(
            f'<line x1="{left}" x2="{w - 8}" y1="{_num(y)}" y2="{_num(y)}" stroke="#e5e7ea"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{tick}</text>'
        )
    label_every = max(1, round(n / 8))
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top_pad + plot_h
        tip = f"{d.day.isoformat()}: " + ", ".join(
            f"{text.legend.get(a, a)} {d.counts.get(a, 0)}" for a in DAILY_ACTIONS
        )
        parts.append(f"<g><title>{escape(tip)}</title>")
        for a in DAILY_ACTIONS:
            v = d.counts.get(a, 0)
            if not v:
                continue
            bh = plot_h * v / scale_top
            y -= bh
            parts.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" height="{_num(bh)}" '
                f'fill="{COLORS[a]}"/>'
            )
        parts.append("</g>")
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text x="{_num(x + bar / 2)}" y="{h - 10}" text-anchor="middle" '
                f'font-size="11" fill="#57606a">{d.day.month}/{d.day.day}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text escaped above, numbers ours)


def rules_chart(
    rows: Sequence[RowStats], text: ChartText, *, noisy_label: str, uid: str = "rules"
) -> Markup:
    """One horizontal bar per rule: its holds split into released (incl. as Bcc), other
    answers (discarded, expired) and still open; a marker at the release rate of the
    answered part; noisy rules drawn in red with a mark."""
    rows = [r for r in rows if r.holds][:20]
    w, row_h, label_w, right_w = 720, 30, 220, 110
    h = max(1, len(rows)) * row_h + 12
    track = w - label_w - right_w
    top = max((r.holds for r in rows), default=1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{uid}-t">{escape(text.title)}</title>',
        f'<desc id="{uid}-d">{escape(text.desc)}</desc>',
    ]
    for i, r in enumerate(rows):
        y = 8 + i * row_h
        name = clean(r.key, 40)
        if len(name) > 28:
            name = name[:27] + "…"
        rate = r.release_rate
        tip = (
            f"{clean(r.key, 80)}: {text.legend['holds']} {r.holds}, "
            f"{text.legend['released']} {r.released + r.released_bcc}, "
            f"{text.legend['closed']} {r.discarded + r.expired}, {text.legend['open']} {r.open}"
            + (f", {text.legend['rate']} {rate * 100:.0f}%" if rate is not None else "")
            + (f" ({noisy_label})" if r.noisy else "")
        )
        parts.append(f"<g><title>{escape(tip)}</title>")
        color = "#cf222e" if r.noisy else "#1b1f24"
        mark = "⚠ " if r.noisy else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13" '
            f'fill="{color}">{escape(mark + name)}</text>'
        )
        x = float(label_w)
        unit = track / top
        for key, v in (
            ("released", r.released + r.released_bcc),
            ("closed", r.discarded + r.expired),
            ("open", r.open),
        ):
            if v:
                parts.append(
                    f'<rect x="{_num(x)}" y="{y + 4}" width="{_num(unit * v)}" height="18" '
                    f'fill="{HOLD_COLORS[key]}"/>'
                )
                x += unit * v
        if rate is not None:
            mx = label_w + unit * r.closed * rate
            parts.append(
                f'<path d="M{_num(mx)} {y} l5 -0 l-5 7 l-5 -7 z M{_num(mx)} {y + 26} '
                f'l5 0 l-5 -7 l-5 7 z" fill="#1b1f24"/>'
            )
        parts.append(
            f'<text x="{w - right_w + 8}" y="{y + 17}" font-size="13" fill="{color}">'
            f"{r.holds}" + (f" · {rate * 100:.0f}%" if rate is not None else "") + "</text>"
        )
        parts.append("</g>")
    if not rows:
        parts.append(
            f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="13" fill="#57606a">'
            f"{escape(text.legend.get('none', '-'))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text escaped above, numbers ours)
