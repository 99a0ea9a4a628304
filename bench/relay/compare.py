"""Relay throughput against the protocol ceiling and a real Postfix relay, in one run.

Issue 11's measurement: Postfix's own load generator ``smtp-source`` sends the same load to
- the ceiling: ``smtp-sink`` directly;
- a private Postfix relay (Debian package, own config and queue directories, loopback
  ports; started and stopped here; queue on disk, ``relayhost`` = the sink);
- ``leakguard serve`` (default policy, plain trusted listener, upstream = the sink; the
  mail is internal, so every detector runs and it passes).
Rounds alternate the order of the three; the load average is recorded per round. A 250 from
Postfix means queued on disk, from leakguard accepted by the sink (the pass path).

    .venv/bin/python bench/relay/compare.py [--messages 2000] [--sessions 20] [--size 5120]
        [--rcpts 10] [--rounds 3] [--lg-args "--workers 2"] [--json]

Needs root (a private Postfix) and the Debian package ``postfix`` (smtp-source, smtp-sink).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from deploy.postfix import Postfix, why_postfix_cannot_run  # noqa: E402

SENDER = "kazuya.sato@city.example.lg.jp"
RCPT = "staff@city.example.lg.jp"  # smtp-source -r N prefixes 1..N: all internal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                # the greeting, not just the connect: with --workers the parent binds the
                # port before the workers serve
                s.settimeout(5)
                if s.recv(3) == b"220":
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def run_source(port: int, args: argparse.Namespace) -> float:
    """Messages per second accepted by the server on ``port``."""
    cmd = [
        shutil.which("smtp-source") or "/usr/sbin/smtp-source",
        "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
        "-r", str(args.rcpts), "-f", SENDER, "-t", RCPT, f"127.0.0.1:{port}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr[-500:]}")
    return args.messages / took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5120, help="message size in bytes")
    ap.add_argument("--rcpts", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--lg-args",
        default="",
        help="more arguments for leakguard serve, e.g. '--workers 2' (issue 11: both cores)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    why = why_postfix_cannot_run()
    if why:
        print(f"SKIP: {why}")
        return 0
    sink_port, pf_port, lg_port, web_port = (free_port() for _ in range(4))
    sink = subprocess.Popen(
        [shutil.which("smtp-sink") or "/usr/sbin/smtp-sink", "-u", "postfix",
         f"127.0.0.1:{sink_port}", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    data = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    lg = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "leakguard"), "serve",
         "--listen", f"127.0.0.1:{lg_port}", "--web-listen", f"127.0.0.1:{web_port}",
         "--upstream", f"127.0.0.1:{sink_port}", "--data-dir", str(data),
         *shlex.split(args.lg_args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    postfix = Postfix(pf_port, relayhost=f"[127.0.0.1]:{sink_port}")
    results: dict[str, list[float]] = {"sink": [], "postfix": [], "leakguard": []}
    loads: list[float] = []
    try:
        wait_port(sink_port)
        wait_port(lg_port)
        postfix.start()
        wait_port(pf_port)
        ports = {"sink": sink_port, "postfix": pf_port, "leakguard": lg_port}
        order = ["sink", "postfix", "leakguard"]
        for r in range(args.rounds):
            seq = order if r % 2 == 0 else list(reversed(order))
            loads.append(os.getloadavg()[0])
            for name in seq:
                results[name].append(run_source(ports[name], args))
                time.sleep(1)
    finally:
        postfix.stop()
        for p in (lg, sink):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    out = {
        "load": {"messages": args.messages, "sessions": args.sessions, "size": args.size,
                 "rcpts": args.rcpts, "rounds": args.rounds, "lg_args": args.lg_args},
        "msg_per_s": {k: [round(x, 1) for x in v] for k, v in results.items()},
        "median": {k: round(v, 1) for k, v in med.items()},
        "leakguard_vs_postfix": round(med["leakguard"] / med["postfix"], 2),
        "leakguard_vs_ceiling": round(med["leakguard"] / med["sink"], 2),
        "postfix_vs_ceiling": round(med["postfix"] / med["sink"], 2),
        "loadavg_1m_per_round": [round(x, 2) for x in loads],
    }  # fmt: skip
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"load: {args.messages} mails x {args.size} B, {args.rcpts} rcpts, "
            f"{args.sessions} sessions, {args.rounds} rounds (order alternated)"
            + (f", leakguard serve {args.lg_args}" if args.lg_args else "")
        )
        for k in ("sink", "postfix", "leakguard"):
            print(f"  {k:10s} median {med[k]:8.1f} msg/s   rounds {out['msg_per_s'][k]}")
        print(f"  leakguard / postfix: {out['leakguard_vs_postfix']}x; "
              f"leakguard / ceiling: {out['leakguard_vs_ceiling']}x; "
              f"postfix / ceiling: {out['postfix_vs_ceiling']}x; "
              f"load average per round: {out['loadavg_1m_per_round']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
