"""Relay memory (issue 11, "Memory"): peak RSS for one big mail, and RSS over many mails.

1. Peak: a fresh ``leakguard serve`` (upstream = smtp-sink) takes a few small mails, then
   its peak RSS is reset (``/proc/<pid>/clear_refs`` 5) and one mail of ``--size`` bytes
   (default 25 MB: a short text and a 25 MB base64 attachment) is sent over SMTP, once on
   the pass path (internal recipient) and once on the held path (a My Number to a partner),
   each on a fresh process, ``--repeat`` times (the peak varies with what runs beside the
   mail: the journal's background sealing, garbage collection). Reported: VmHWM of the relay
   process after the mail, its rise over the RSS before it, and that rise against the mail's
   size (goal: <= 3x). Every descendant (worker, extraction process) is reset and measured.
2. Flatness: a fresh relay takes ``--messages`` mails (smtp-source, 5 KB, 10 recipients,
   20 sessions) and VmRSS is sampled every ``--every`` mails. Reported: the samples and the
   least-squares slope over the samples after the first 20 % (warm-up), in kB per 10,000
   mails (goal: flat over 100,000 mails).

    nice .venv/bin/python bench/relay/memory.py [--size 25000000] [--skip-flat]
    nice .venv/bin/python bench/relay/memory.py --skip-peak --messages 100000 --every 5000
        [--kind pass|held|bcc] [--lg-args "--workers 2"] [--json]

Needs Postfix's smtp-sink and smtp-source (Debian package ``postfix``) and Linux /proc.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

MB = 1024 * 1024


def big_mail(kind: str, size: int) -> bytes:
    """The ``kind`` mail's headers and text, plus a base64 attachment so that the whole mail
    is about ``size`` bytes."""
    lines = h.mail_lines(kind, 2048)
    end = lines.index("")
    head = [x for x in lines[:end] if not x.lower().startswith(("content-", "mime-"))]
    text = "\r\n".join(lines[end + 1 :]).encode("iso2022_jp")
    raw = os.urandom(size * 3 // 4)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (
        "\r\n".join(head).encode()
        + b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b'--b\r\nContent-Type: text/plain; charset="iso-2022-jp"\r\n\r\n'
        + text
        + b'\r\n--b\r\nContent-Type: application/pdf; name="archive.pdf"\r\n'
        + b'Content-Disposition: attachment; filename="archive.pdf"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + b64
        + b"\r\n--b--\r\n"
    )


def peak(
    kind: str, size: int, lg_args: list[str], config: dict[str, Any], maildir: bool = False
) -> dict[str, Any]:
    sink = h.Sink()
    lg = h.Leakguard(0 if maildir else sink.port, lg_args, config=config)
    tmp = Path(tempfile.mkdtemp(prefix="lg-memory-"))
    try:
        small = h.write_mail(kind, 5 * 1024, tmp / "small.eml")
        h.smtp_source(lg.port, small, kind, 50, 5, 10)
        mail = big_mail(kind, size)
        warm = big_mail(kind, 200 * 1024)  # the attachment path warmed up, extraction started
        with smtplib.SMTP("127.0.0.1", lg.port, timeout=300) as c:
            c.sendmail(h.SENDER, h.envelope(kind, 1), warm)
        time.sleep(1.0)
        procs = h.tree(lg.pid)
        before = {p: h.status_kb(p, "VmRSS") for p in procs}
        for p in procs:
            h.reset_hwm(p)
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", lg.port, timeout=600) as c:
            refused = c.sendmail(h.SENDER, h.envelope(kind, 1), mail)
            assert not refused, refused
        took = time.perf_counter() - t0
        time.sleep(0.5)
        after = {p: h.status_kb(p, "VmHWM") for p in procs}
        rises = {p: (after[p] - before[p]) * 1024 for p in procs}
        main = lg.pid
        # the process that held the mail: the largest rise (the relay itself, or a worker)
        top = max(rises, key=lambda p: rises[p])
        action = last_action(lg.log)
        return {
            "kind": kind,
            "delivery": "maildir" if maildir else "upstream",
            "action_logged": action,
            "mail_mb": round(len(mail) / MB, 2),
            "relay_s": round(took, 2),
            "relay_rss_before_mb": round(before[main] / 1024, 1),
            "relay_peak_rss_mb": round(after[main] / 1024, 1),
            "relay_rise_mb": round(rises[main] / MB, 1),
            "relay_rise_x_mail": round(rises[main] / len(mail), 2),
            "relay_peak_x_mail": round(after[main] * 1024 / len(mail), 2),
            "largest_rise_process": "relay" if top == main else "child",
            "largest_rise_x_mail": round(rises[top] / len(mail), 2),
            "tree_sum_of_rises_x_mail": round(
                sum(max(0, r) for r in rises.values()) / len(mail), 2
            ),
            "processes": len(procs),
        }
    finally:
        lg.stop()
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def last_action(log: Path) -> str:
    """The action of the last message the relay logged (its JSON ``message`` event)."""
    action = "?"
    for line in log.read_text("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "message":
            action = str(event.get("action"))
    return action


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def sample(pid: int, mails: int, seconds: float) -> dict[str, Any]:
    return {
        "mails": mails,
        "rss_kb": h.status_kb(pid, "VmRSS"),
        "tree_rss_kb": h.tree_rss_kb(pid),
        "s": round(seconds, 1),
        "load1": h.loadavg(),
    }


def flat(
    kind: str,
    messages: int,
    every: int,
    sessions: int,
    lg_args: list[str],
    config: dict[str, Any],
) -> dict[str, Any]:
    sink = h.Sink()
    lg = h.Leakguard(sink.port, lg_args, config=config)
    tmp = Path(tempfile.mkdtemp(prefix="lg-memory-"))
    samples: list[dict[str, Any]] = []
    try:
        mail = h.write_mail(kind, 5 * 1024, tmp / "m.eml")
        sent = 0
        t0 = time.perf_counter()
        samples.append(sample(lg.pid, 0, 0.0))
        while sent < messages:
            n = min(every, messages - sent)
            h.smtp_source(lg.port, mail, kind, n, sessions, 10)
            sent += n
            samples.append(sample(lg.pid, sent, time.perf_counter() - t0))
            print(f"  {sent:>7d} mails  RSS {samples[-1]['rss_kb'] / 1024:7.1f} MB  "
                  f"tree {samples[-1]['tree_rss_kb'] / 1024:7.1f} MB  {samples[-1]['s']:7.1f} s  "
                  f"load {samples[-1]['load1']}", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        lg.stop()
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    steady = [s for s in samples if s["mails"] >= 0.2 * messages] or samples
    xs = [float(s["mails"]) for s in steady]
    per10k = slope(xs, [float(s["rss_kb"]) for s in steady]) * 10_000
    per10k_tree = slope(xs, [float(s["tree_rss_kb"]) for s in steady]) * 10_000
    return {
        "kind": kind,
        "messages": messages,
        "msg_per_s": round(messages / samples[-1]["s"], 1),
        "rss_first_mb": round(samples[0]["rss_kb"] / 1024, 1),
        "rss_at_20pct_mb": round(steady[0]["rss_kb"] / 1024, 1),
        "rss_last_mb": round(samples[-1]["rss_kb"] / 1024, 1),
        "slope_kb_per_10k_mails": round(per10k, 1),
        "tree_slope_kb_per_10k_mails": round(per10k_tree, 1),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size", type=int, default=25_000_000, help="big mail, bytes")
    ap.add_argument("--messages", type=int, default=20_000, help="mails for the flatness run")
    ap.add_argument("--every", type=int, default=0, help="sample RSS every N mails")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--kind", choices=["pass", "held", "bcc"], default="pass")
    ap.add_argument("--skip-peak", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=3, help="fresh relays per big-mail path (median, range)"
    )
    ap.add_argument("--skip-flat", action="store_true")
    ap.add_argument(
        "--maildir-too",
        action="store_true",
        help="also the pass path delivered to the local maildir (no upstream), as "
        "bench/extract_bench.py measures it",
    )
    ap.add_argument("--lg-args", default="", help="extra arguments for leakguard serve")
    ap.add_argument(
        "--lg-config",
        default="{}",
        help="JSON merged into the relay's configuration, e.g. "
        '\'{"retention": {"mode": "hashed"}}\'',
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    lg_args = shlex.split(args.lg_args)
    config = json.loads(args.lg_config)
    out: dict[str, Any] = {
        "benchmark": "bench/relay/memory.py",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "lg_args": args.lg_args,
        "lg_config": config,
        "load1_start": h.loadavg(),
    }
    if not args.skip_peak:
        variants = [("pass", False), ("held", False)] + (
            [("pass", True)] if args.maildir_too else []
        )
        out["peak"] = []
        out["peak_summary"] = []
        for kind, maildir in variants:
            runs = [peak(kind, args.size, lg_args, config, maildir) for _ in range(args.repeat)]
            out["peak"] += runs
            rises = [r["relay_rise_x_mail"] for r in runs]
            out["peak_summary"].append(
                {
                    "kind": kind,
                    "delivery": runs[0]["delivery"],
                    "runs": len(runs),
                    "relay_rise_x_mail_median": statistics.median(rises),
                    "relay_rise_x_mail_min": min(rises),
                    "relay_rise_x_mail_max": max(rises),
                }
            )
    if not args.skip_flat:
        every = args.every or max(1, args.messages // 20)
        out["flat"] = flat(args.kind, args.messages, every, args.sessions, lg_args, config)
    out["load1_end"] = h.loadavg()
    if args.json:
        print(json.dumps(out))
        return 0
    extra = f", leakguard serve {args.lg_args}" if args.lg_args else ""
    print(f"bench/relay/memory.py {out['started']} UTC, load {out['load1_start']} -> "
          f"{out['load1_end']}{extra}")  # fmt: skip
    for p in out.get("peak", []):
        print(f"  {p['mail_mb']:.1f} MB mail, {p['kind']} path to the {p['delivery']} "
              f"(logged: {p['action_logged']}): "
              f"relay RSS {p['relay_rss_before_mb']} MB -> peak {p['relay_peak_rss_mb']} MB, "
              f"rise {p['relay_rise_mb']} MB = {p['relay_rise_x_mail']}x the mail "
              f"(peak {p['relay_peak_x_mail']}x); largest rise in the {p['largest_rise_process']}"
              f" {p['largest_rise_x_mail']}x, sum over {p['processes']} processes "
              f"{p['tree_sum_of_rises_x_mail']}x; relayed in {p['relay_s']} s")  # fmt: skip
    for p in out.get("peak_summary", []):
        print(f"  {p['kind']} path to the {p['delivery']}: relay RSS rise "
              f"{p['relay_rise_x_mail_median']}x the mail (median of {p['runs']} fresh relays; "
              f"{p['relay_rise_x_mail_min']}x-{p['relay_rise_x_mail_max']}x)")  # fmt: skip
    if "flat" in out:
        f = out["flat"]
        print(f"  {f['messages']:,} {f['kind']} mails ({f['msg_per_s']} msg/s): RSS "
              f"{f['rss_first_mb']} MB at start, {f['rss_at_20pct_mb']} MB after 20 %, "
              f"{f['rss_last_mb']} MB at the end; slope after warm-up "
              f"{f['slope_kb_per_10k_mails']:+.1f} kB per 10,000 mails (process tree "
              f"{f['tree_slope_kb_per_10k_mails']:+.1f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
