"""Relay throughput and latency against the protocol ceiling and a real Postfix relay, in one run.

Issue 11's measurement. Postfix's own load generator ``smtp-source`` sends the same mail file
(``-F``: the same bytes everywhere) to
- the ceiling: ``smtp-sink`` directly;
- a private Postfix relay (Debian package, own config and queue directories, loopback
  ports; started and stopped here; queue on disk, ``relayhost`` = the sink);
- ``leakguard serve`` (default policy, plain trusted listener, upstream = the sink).
A 250 from Postfix means queued on disk; from leakguard, accepted by the sink (pass, bcc) or
committed to disk (held).

Cases (``--cases``; ``--full`` runs them all at 20 and 1 sessions, plus the latency phase):
  5k    pass, 5 KB, 10 recipients           50k   pass, 50 KB, 10 recipients
  500k  pass, 500 KB, 10 recipients         100r  pass, 5 KB, 100 recipients
  held  held, 5 KB, 10 recipients (leakguard only; a My Number to a partner)
  bcc   Bcc rewrite, 5 KB, 10 recipients, 12 companies in To (leakguard only)
Every mail is checked with ``leakguard check`` first, so each case measures the path it names.
Rounds alternate the order of the targets; the 1-minute load average is recorded per run.
After each Postfix run the benchmark waits until Postfix's queue is empty, so its deliveries
do not eat into the next target's CPU.

Latency (``--latency``): a paced asyncio client (20 connections, raw sockets) sends at half
of each target's measured maximum (5k case, 20 sessions) and times MAIL FROM -> the 250 after
DATA; the same rate is sent straight to the sink, and the difference is the added latency.

    nice .venv/bin/python bench/relay/compare.py --full [--rounds 3] [--json]
    nice .venv/bin/python bench/relay/compare.py --cases 5k,held --sessions 20,1
        [--lg-args "--workers 2"] [--scale 0.5]

Needs root (a private Postfix) and the Debian package ``postfix`` (smtp-source, smtp-sink).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    kind: str
    size: int
    rcpts: int
    messages: int  # per run and target, at --scale 1

    @property
    def unique(self) -> bool:
        """Every mail with its own envelope (``smtp-source -N``): held and Bcc-rewritten
        mail must not meet the relay's retry recognition (``harness.smtp_source``)."""
        return self.kind != "pass"

    @property
    def targets(self) -> tuple[str, ...]:
        return ("sink", "postfix", "leakguard") if self.kind == "pass" else ("leakguard",)


CASES = {
    c.name: c
    for c in (
        Case("5k", "pass 5 KB, 10 rcpts", "pass", 5 * 1024, 10, 1000),
        Case("50k", "pass 50 KB, 10 rcpts", "pass", 50 * 1024, 10, 500),
        Case("500k", "pass 500 KB, 10 rcpts", "pass", 500 * 1024, 10, 100),
        Case("100r", "pass 5 KB, 100 rcpts", "pass", 5 * 1024, 100, 300),
        Case("held", "held 5 KB, 10 rcpts", "held", 5 * 1024, 10, 300),
        Case("bcc", "bcc 5 KB, 10 rcpts", "bcc", 5 * 1024, 10, 1000),
    )
}
EXPECT = {"pass": "pass", "held": "hold", "bcc": "bcc"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Cases: " + "; ".join(f"{c.name} = {c.label}" for c in CASES.values()),
    )
    ap.add_argument(
        "--full", action="store_true", help="every case at 20 and 1 sessions, and the latency phase"
    )
    ap.add_argument("--cases", default="5k", help="comma-separated case names (default 5k)")
    ap.add_argument("--sessions", default="20", help="comma-separated session counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--messages",
        type=int,
        default=0,
        help="mails per run and target (default: per case, times --scale)",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the per-case mail counts")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="smtp-source -d: several mails per connection (default: one each)",
    )
    ap.add_argument("--latency", action="store_true", help="run the paced latency phase")
    ap.add_argument("--latency-messages", type=int, default=1000)
    ap.add_argument(
        "--lg-args", default="", help='extra arguments for leakguard serve, e.g. "--workers 2"'
    )
    ap.add_argument(
        "--leakguard",
        default=str(h.ROOT / ".venv" / "bin" / "leakguard"),
        help="the leakguard executable (another checkout's, to compare branches)",
    )
    ap.add_argument(
        "--no-postfix",
        action="store_true",
        help="run without the Postfix relay (no root or no package)",
    )
    ap.add_argument(
        "--lg-config",
        default="",
        help="top-level configuration keys for leakguard, as JSON "
        '(e.g. \'{"event_loop": "asyncio"}\')',
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = ap.parse_args(argv)  # fmt: skip
    if args.full:
        args.cases = ",".join(CASES)
        args.sessions = "20,1"
        args.latency = True
    args.case_list = [CASES[c.strip()] for c in args.cases.split(",") if c.strip()]
    args.session_list = [int(s) for s in args.sessions.split(",") if s.strip()]
    if args.latency and 20 not in args.session_list:
        args.session_list.append(20)
    if args.latency and CASES["5k"] not in args.case_list:
        args.case_list.insert(0, CASES["5k"])
    return args


def count(case: Case, args: argparse.Namespace) -> int:
    return args.messages or max(20, int(case.messages * args.scale))


def wait_postfix_empty(pf: h.Postfix, timeout: float = 600) -> float:
    t0 = time.monotonic()
    while pf.queue_ids() and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
    return round(time.monotonic() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_postfix = not args.no_postfix
    if use_postfix and (why := h.why_postfix_cannot_run()):
        print(f"SKIP: {why} (--no-postfix runs without it)")
        return 0
    started = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = Path(tempfile.mkdtemp(prefix="lg-compare-"))
    mails: dict[str, Path] = {}
    for case in args.case_list:
        mails[case.name] = h.write_mail(case.kind, case.size, tmp / f"{case.name}.eml")
        got = h.check_action(mails[case.name], case.kind, case.rcpts)
        if got != EXPECT[case.kind]:
            raise SystemExit(
                f"case {case.name}: the default policy says {got}, not {EXPECT[case.kind]}; "
                "the benchmark would measure the wrong path"
            )

    sink = h.Sink()
    lg = h.Leakguard(
        sink.port,
        shlex.split(args.lg_args),
        binary=args.leakguard,
        config=json.loads(args.lg_config) if args.lg_config else {},
    )
    pf = h.Postfix(h.free_port(), relayhost=f"[127.0.0.1]:{sink.port}") if use_postfix else None
    runs: list[dict[str, Any]] = []
    latency: dict[str, Any] = {}
    try:
        ports = {"sink": sink.port, "leakguard": lg.port}
        if pf is not None:
            pf.start()
            h.wait_port(pf.port)
            ports["postfix"] = pf.port

        def targets(case: Case) -> list[str]:
            return [t for t in case.targets if t in ports]

        # warm-up: the engine's indexes, the upstream pool, Postfix's daemons
        for case in args.case_list:
            for t in targets(case):
                h.smtp_source(ports[t], mails[case.name], case.kind,
                              min(100, count(case, args)), 20, case.rcpts, args.reuse,
                              case.unique)  # fmt: skip
        if pf is not None:
            wait_postfix_empty(pf)
        h.settle(lg.pid)

        for r in range(args.rounds):
            for case in args.case_list:
                for sessions in args.session_list:
                    seq = targets(case)
                    if r % 2:
                        seq.reverse()
                    for t in seq:
                        n = count(case, args)
                        load = h.loadavg()
                        cpu0 = h.tree_cpu(lg.pid)
                        took = h.smtp_source(ports[t], mails[case.name], case.kind, n, sessions,
                                             case.rcpts, args.reuse, case.unique)  # fmt: skip
                        run: dict[str, Any] = {
                            "round": r, "case": case.name, "sessions": sessions, "target": t,
                            "messages": n, "seconds": round(took, 2),
                            "msg_per_s": round(n / took, 1), "load1": load,
                        }  # fmt: skip
                        if t == "leakguard":
                            # what the run left behind (notices, journal) is its cost too
                            run["lg_settle_s"] = h.settle(lg.pid)
                            cpu = h.tree_cpu(lg.pid) - cpu0
                            run["lg_cpu_ms_per_msg"] = round(cpu / n * 1000, 2)
                            run["lg_cores"] = round(cpu / (took + run["lg_settle_s"]), 2)
                        if t == "postfix" and pf is not None:
                            run["postfix_drain_s"] = wait_postfix_empty(pf)
                        runs.append(run)
                        print(f"  round {r} {case.name:5s} s={sessions:<3d} {t:9s} "
                              f"{run['msg_per_s']:8.1f} msg/s  load {load}",
                              file=sys.stderr, flush=True)  # fmt: skip
                        time.sleep(1)

        results = summarise(runs, args)
        if args.latency:
            latency = latency_phase(results, ports, lg.pid, args)
    finally:
        if pf is not None:
            pf.stop()
        lg.stop()
        sink.stop()
        for p in mails.values():
            p.unlink(missing_ok=True)
        tmp.rmdir()

    out = {
        "benchmark": "bench/relay/compare.py",
        "started": started,
        "cpus": os.cpu_count(),
        "argv": sys.argv[1:] if argv is None else argv,
        "lg_args": args.lg_args,
        "lg_config": args.lg_config,
        "leakguard": args.leakguard,
        "connection_per_mail": not args.reuse,
        "results": results,
        "latency": latency,
        "loadavg_1m_per_run": [r["load1"] for r in runs],
        "runs": runs,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print_table(out)
    return 0


def _median(runs: list[dict[str, Any]], key: str = "msg_per_s") -> float | None:
    vals = [r[key] for r in runs if key in r]
    return round(statistics.median(vals), 2) if vals else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for case in args.case_list:
        for s in args.session_list:
            mine = [r for r in runs if r["case"] == case.name and r["sessions"] == s]
            med = {t: _median([r for r in mine if r["target"] == t]) for t in case.targets}
            lg_runs = [r for r in mine if r["target"] == "leakguard"]
            row: dict[str, Any] = {
                "case": case.name, "label": case.label, "sessions": s,
                "median_msg_per_s": med,
                "rounds_msg_per_s": {t: [r["msg_per_s"] for r in mine if r["target"] == t]
                                     for t in case.targets},
                "lg_cpu_ms_per_msg": _median(lg_runs, "lg_cpu_ms_per_msg"),
                "lg_cores": _median(lg_runs, "lg_cores"),
                "lg_settle_s": _median(lg_runs, "lg_settle_s"),
                "load1": [r["load1"] for r in mine],
            }  # fmt: skip
            if case.kind == "pass":
                row["leakguard_vs_postfix"] = _ratio(med["leakguard"], med.get("postfix"))
                row["leakguard_vs_ceiling"] = _ratio(med["leakguard"], med["sink"])
                row["postfix_vs_ceiling"] = _ratio(med.get("postfix"), med["sink"])
            out.append(row)
    # held and Bcc-rewritten mail against the pass rate of the same mail size and envelope
    for row in out:
        if row["case"] in ("held", "bcc"):
            base = next((x for x in out if x["case"] == "5k" and x["sessions"] == row["sessions"]),
                        None)  # fmt: skip
            if base is not None:
                lg = row["median_msg_per_s"]["leakguard"]
                row["vs_leakguard_pass"] = _ratio(lg, base["median_msg_per_s"]["leakguard"])
                row["vs_postfix_pass"] = _ratio(lg, base["median_msg_per_s"].get("postfix"))
    return out


def latency_phase(
    results: list[dict[str, Any]], ports: dict[str, int], lg_pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Paced at half of each target's measured maximum; the sink at the same rate is the
    'direct' baseline."""

    def max_of(case: str, target: str) -> float | None:
        row = next((x for x in results if x["case"] == case and x["sessions"] == 20), None)
        return row["median_msg_per_s"].get(target) if row else None

    plan = [("sink", "pass", max_of("5k", "sink")),
            ("postfix", "pass", max_of("5k", "postfix")),
            ("leakguard", "pass", max_of("5k", "leakguard")),
            ("leakguard", "held", max_of("held", "leakguard"))]  # fmt: skip
    out: dict[str, Any] = {}
    for i, (target, kind, top) in enumerate(plan):
        if not top or target not in ports:
            continue
        rate = top / 2
        n = args.latency_messages
        name = target if kind == "pass" else f"{target}_{kind}"
        load = h.loadavg()
        if target == "sink":  # the client's own limit shows here (rate_done < rate_asked)
            out[name] = {**h.paced(ports["sink"], kind, 5 * 1024, 10, rate, n), "load1": load}
            continue
        pair = ["sink", target] if i % 2 else [target, "sink"]
        got = {}
        for t in pair:
            h.settle(lg_pid)
            got[t] = h.paced(ports[t], kind, 5 * 1024, 10, rate, n)
        out[name] = {
            **got[target], "load1": load, "direct": got["sink"],
            "added_p50_ms": round(got[target]["p50_ms"] - got["sink"]["p50_ms"], 2),
            "added_p99_ms": round(got[target]["p99_ms"] - got["sink"]["p99_ms"], 2),
        }  # fmt: skip
    return out


def _fmt(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def print_table(out: dict[str, Any]) -> None:
    rounds = max((r["round"] for r in out["runs"]), default=0) + 1
    conn = "one connection per mail" if out["connection_per_mail"] else "connections reused"
    print(f"bench/relay/compare.py {out['started']} UTC, {out['cpus']} CPUs, {rounds} rounds "
          f"(order alternated), {conn}"
          f"{', leakguard serve ' + out['lg_args'] if out['lg_args'] else ''}")  # fmt: skip
    print(
        "msg/s, median of the rounds; ratios of the medians; leakguard CPU of its process "
        "tree per mail, counted until it is idle again ('settle' s after the last 250)"
    )
    head = (f"{'case':24s} {'sess':>4s} {'ceiling':>9s} {'postfix':>8s} {'leakguard':>9s} "
            f"{'lg/pf':>6s} {'lg/ceil':>7s} {'pf/ceil':>7s} {'lg cpu ms':>9s} {'cores':>5s} "
            f"{'vs pass':>7s} {'vs pf':>6s} {'settle':>6s}  load1")  # fmt: skip
    print(head)
    for row in out["results"]:
        med = row["median_msg_per_s"]
        print(f"{row['label']:24s} {row['sessions']:>4d} {_fmt(med.get('sink')):>9s} "
              f"{_fmt(med.get('postfix')):>8s} {_fmt(med.get('leakguard')):>9s} "
              f"{_fmt(row.get('leakguard_vs_postfix'), 2):>6s} "
              f"{_fmt(row.get('leakguard_vs_ceiling'), 2):>7s} "
              f"{_fmt(row.get('postfix_vs_ceiling'), 2):>7s} "
              f"{_fmt(row['lg_cpu_ms_per_msg'], 2):>9s} {_fmt(row['lg_cores'], 2):>5s} "
              f"{_fmt(row.get('vs_leakguard_pass'), 2):>7s} "
              f"{_fmt(row.get('vs_postfix_pass'), 2):>6s} "
              f"{_fmt(row.get('lg_settle_s'), 1):>6s}  "
              f"{min(row['load1']):.2f}-{max(row['load1']):.2f}")  # fmt: skip
    if out["latency"]:
        print(
            "latency, MAIL FROM -> 250 after DATA, 20 connections, paced at half the measured "
            "maximum (5 KB, 10 rcpts); 'added' is over the sink at the same rate"
        )
        for name, v in out["latency"].items():
            line = (f"  {name:15s} {v['rate_asked']:7.1f} msg/s asked, {v['rate_done']:7.1f} "
                    f"done: p50 {v['p50_ms']:7.2f} ms  p99 {v['p99_ms']:7.2f} ms")  # fmt: skip
            if "direct" in v:
                line += (f"  (direct p50 {v['direct']['p50_ms']:.2f}, p99 "
                         f"{v['direct']['p99_ms']:.2f}): added p50 {v['added_p50_ms']:+.2f} "
                         f"ms, p99 {v['added_p99_ms']:+.2f} ms")  # fmt: skip
            print(line + f"  load {v['load1']}")


if __name__ == "__main__":
    raise SystemExit(main())
