"""Relay cost curves (issue 11, "Cost that grows linearly"): by mail size and by recipients.

One ``leakguard serve`` (upstream = smtp-sink, default policy, pass path: internal
recipients) takes, per point, a batch of the same mail from ``smtp-source -F``:
- by size: 1 KB ... 5 MB, 10 recipients;
- by recipients: 1 ... 1,000 recipients, 5 KB.
Reported per point: msg/s, and CPU milliseconds per mail of the relay's process tree
(/proc/<pid>/stat utime+stime before the batch and once it is idle again after it;
workers included). Per curve: the
least-squares line cpu_ms = a + b*x with its R^2, and the marginal cost of each step
(delta CPU / delta x), and the growth exponent k of the cost above the first point (log-log
slope; 1 linear, 2 quadratic): called linear when R^2 >= 0.98 and 0.8 <= k <= 1.25.

    nice .venv/bin/python bench/relay/curves.py [--sizes 1k,5k,50k,500k,1m,5m]
        [--rcpts 1,10,100,300,1000] [--rounds 1] [--lg-args "--workers 2"] [--json]

Needs Postfix's smtp-sink and smtp-source (Debian package ``postfix``) and Linux /proc.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

UNITS = {"k": 1024, "m": 1024 * 1024}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def batch(size: int, rcpts: int) -> tuple[int, int]:
    """Mails and sessions for one point: about 25 MB of mail or 20,000 recipients in all,
    between 20 and 1,000 mails; fewer parallel sessions for mails of 1 MB and more."""
    n = max(20, min(1000, 25 * 1024 * 1024 // size, 20_000 // rcpts))
    return n, (4 if size >= 1024 * 1024 else 20)


def point(lg: h.Leakguard, mail: Path, size: int, rcpts: int, rounds: int) -> dict[str, Any]:
    n, sessions = batch(size, rcpts)
    rates, cpus, loads = [], [], []
    for _ in range(rounds):
        loads.append(h.loadavg())
        c0 = h.tree_cpu(lg.pid)
        took = h.smtp_source(lg.port, mail, "pass", n, sessions, rcpts)
        h.settle(lg.pid)  # what the batch left behind (journal) is counted to it
        cpus.append((h.tree_cpu(lg.pid) - c0) / n * 1000)
        rates.append(n / took)
    return {
        "size": size,
        "rcpts": rcpts,
        "mails": n,
        "sessions": sessions,
        "msg_per_s": round(statistics.median(rates), 1),
        "cpu_ms_per_mail": round(statistics.median(cpus), 2),
        "load1": loads,
    }


def linearity(xs: list[float], ys: list[float]) -> dict[str, Any]:
    """The least-squares line through the points, the marginal cost of each step, and the
    growth exponent k of the cost above the first point (log-log slope of y - y0 against
    x - x0 over the points from the third on; 1 is linear, 2 quadratic). Linear: R^2 >=
    0.98 and 0.8 <= k <= 1.25 (single steps are too noisy on a shared machine to judge
    one by one)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1 - ss_res / ss_tot if ss_tot else 1.0
    marginal = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(n - 1)]
    pts = [
        (math.log(x - xs[0]), math.log(y - ys[0]))
        for x, y in zip(xs[2:], ys[2:], strict=True)
        if x > xs[0] and y > ys[0]
    ]
    k = None
    if len(pts) >= 2:
        lx, ly = [p[0] for p in pts], [p[1] for p in pts]
        mlx, mly = sum(lx) / len(lx), sum(ly) / len(ly)
        den = sum((v - mlx) ** 2 for v in lx)
        k = sum((u - mlx) * (v - mly) for u, v in zip(lx, ly, strict=True)) / den if den else None
    return {
        "a_ms": round(a, 3),
        "b_ms_per_unit": b,
        "r2": round(r2, 4),
        "marginal_ms_per_unit": marginal,
        "growth_exponent": None if k is None else round(k, 2),
        "linear": bool(r2 >= 0.98 and k is not None and 0.8 <= k <= 1.25),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="1k,5k,50k,500k,1m,5m", help="mail sizes (k, m)")
    ap.add_argument("--rcpts", default="1,10,100,300,1000", help="recipient counts")
    ap.add_argument("--rounds", type=int, default=1, help="batches per point (median)")
    ap.add_argument("--lg-args", default="", help="extra arguments for leakguard serve")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    rcpt_counts = [int(r) for r in args.rcpts.split(",") if r.strip()]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = Path(tempfile.mkdtemp(prefix="lg-curves-"))
    sink = h.Sink()
    lg = h.Leakguard(sink.port, shlex.split(args.lg_args), max_recipients=max(rcpt_counts))
    by_size, by_rcpts = [], []
    try:
        mails = {s: h.write_mail("pass", s, tmp / f"{s}.eml") for s in {*sizes, 5 * 1024}}
        for s, m in mails.items():
            if h.check_action(m, "pass", 10) != "pass":
                raise SystemExit(f"the {s}-byte mail is not passed by the default policy")
        h.smtp_source(lg.port, mails[5 * 1024], "pass", 200, 20, 10)  # warm-up
        h.settle(lg.pid)
        for s in sizes:
            by_size.append(point(lg, mails[s], s, 10, args.rounds))
            print(f"  size {s:>9,d} B: {by_size[-1]}", file=sys.stderr, flush=True)
        for r in rcpt_counts:
            by_rcpts.append(point(lg, mails[5 * 1024], 5 * 1024, r, args.rounds))
            print(f"  rcpts {r:>5d}: {by_rcpts[-1]}", file=sys.stderr, flush=True)
    finally:
        lg.stop()
        sink.stop()
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    out = {
        "benchmark": "bench/relay/curves.py",
        "started": started,
        "lg_args": args.lg_args,
        "by_size": by_size,
        "by_size_fit": linearity(
            [p["size"] / 1024 for p in by_size], [p["cpu_ms_per_mail"] for p in by_size]
        ),
        "by_rcpts": by_rcpts,
        "by_rcpts_fit": linearity(
            [float(p["rcpts"]) for p in by_rcpts], [p["cpu_ms_per_mail"] for p in by_rcpts]
        ),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print_curves(out)
    return 0


def print_curves(out: dict[str, Any]) -> None:
    extra = f", leakguard serve {out['lg_args']}" if out["lg_args"] else ""
    print(f"bench/relay/curves.py {out['started']} UTC, pass path, relay process tree CPU{extra}")

    def by_size(p: dict[str, Any]) -> str:
        return f"{p['size'] / 1024:>9,.0f} KB"

    def by_rcpts(p: dict[str, Any]) -> str:
        return f"{p['rcpts']:>6d} rcpts"

    for title, key, unit, fmt in (
        ("by size (10 recipients)", "by_size", "KB", by_size),
        ("by recipients (5 KB)", "by_rcpts", "recipient", by_rcpts),
    ):
        fit = out[f"{key}_fit"]
        print(f"{title}:")
        print(f"  {'point':>12s} {'mails':>6s} {'sess':>4s} {'msg/s':>8s} {'CPU ms/mail':>12s} "
              f"{'marginal ms/' + unit:>20s}  load1")  # fmt: skip
        for i, p in enumerate(out[key]):
            m = "" if i == 0 else f"{fit['marginal_ms_per_unit'][i - 1]:.4f}"
            print(f"  {fmt(p):>12s} {p['mails']:>6d} {p['sessions']:>4d} {p['msg_per_s']:>8.1f} "
                  f"{p['cpu_ms_per_mail']:>12.2f} {m:>20s}  {p['load1']}")  # fmt: skip
        verdict = "linear" if fit["linear"] else "NOT linear"
        print(f"  fit: cpu_ms = {fit['a_ms']} + {fit['b_ms_per_unit']:.4f} x {unit}, "
              f"R^2 {fit['r2']}; growth exponent above the first point "
              f"{fit['growth_exponent']} -> {verdict}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
