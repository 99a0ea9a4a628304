"""A sender with a long history (issue 11, stop 18): the pass path before and after the
sender has written to many new recipients.

Bcc-rewritten mail sent with ``smtp-source -N`` gives the benchmark sender ten new
recipients per mail. The relay's sender history then holds tens of thousands of rows; this
measures the pass case (5 KB, 10 recipients) at 20 sessions before and after, and the added
latency of pass mail paced at ``--rate`` (MAIL FROM to the 250 after DATA, over the sink at
the same rate). Before stop 18 the pass case fell from about 1,000 to 183 mails a second
here: every mail read the whole history again.

    .venv/bin/python bench/relay/history_load.py [--grow 2500] [--rate 390] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h


def _pass_rate(lg: h.Leakguard, mail: Path, label: str) -> None:
    cpu0 = h.tree_cpu(lg.pid)
    took = h.smtp_source(lg.port, mail, "pass", 1000, 20, 10)
    h.settle(lg.pid)
    cpu_ms = (h.tree_cpu(lg.pid) - cpu0) / 1000 * 1000
    print(f"  {label:14s} pass {1000 / took:7.1f} msg/s, {cpu_ms:5.2f} ms CPU a mail, "
          f"load {h.loadavg()}", flush=True)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grow", type=int, default=2500, help="Bcc mails with new recipients")
    ap.add_argument("--rate", type=float, default=390.0, help="paced pass mails a second")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lg-args", default="--workers 2")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lg-history-"))
    mails = {k: h.write_mail(k, 5 * 1024, tmp / f"{k}.eml") for k in ("pass", "bcc")}
    sink = h.Sink()
    try:
        for r in range(args.rounds):
            print(f"round {r}", flush=True)
            lg = h.Leakguard(sink.port, extra_args=args.lg_args.split())
            try:
                h.smtp_source(lg.port, mails["pass"], "pass", 200, 20, 10)  # warm-up
                h.settle(lg.pid)
                _pass_rate(lg, mails["pass"], "short history")
                h.smtp_source(lg.port, mails["bcc"], "bcc", args.grow, 20, 10, unique=True)
                h.settle(lg.pid)
                _pass_rate(lg, mails["pass"], "long history")
                got = h.paced(lg.port, "pass", 5 * 1024, 10, args.rate, 2000)
                h.settle(lg.pid)
                direct = h.paced(sink.port, "pass", 5 * 1024, 10, args.rate, 1500)
                print(f"  paced at {args.rate:.0f} msg/s ({got['rate_done']} done): "
                      f"added p50 {got['p50_ms'] - direct['p50_ms']:+.1f} ms, "
                      f"p99 {got['p99_ms'] - direct['p99_ms']:+.1f} ms", flush=True)  # fmt: skip
            finally:
                lg.stop()
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
