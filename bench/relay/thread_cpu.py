"""CPU of the relay per thread, per mail (issue 11, stop 19): where a held (or any) mail's
CPU goes, by thread: the event loop, the store's thread, the decision, notice, summary and
Bcc pools.

``leakguard serve`` (one worker by default) relays to ``smtp-sink``; ``smtp-source`` sends
the case's mail (held and Bcc mail with ``-N``: every mail its own envelope). Every Python
thread gets its native name from its Python name (a ``sitecustomize`` written to a temporary
directory and put on ``PYTHONPATH`` calls ``prctl(PR_SET_NAME)``), and each thread's user
and system CPU is read from ``/proc/<pid>/task/<tid>/stat`` before and after the run (the
warm-up of 200 mails excluded). Threads of the same name are added up across processes.

    .venv/bin/python bench/relay/thread_cpu.py [--case held] [--messages 1000]
        [--sessions 20] [--workers 1] [--size-kb 5] [--leakguard PATH]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h

_SITECUSTOMIZE = """\
import ctypes, threading
_libc = ctypes.CDLL(None)
_run = threading.Thread.run
def run(self):
    try:
        _libc.prctl(15, self.name.replace("leakguard-", "")[:15].encode(), 0, 0, 0)
    except Exception:
        pass
    return _run(self)
threading.Thread.run = run
"""


def _snapshot(pid: int) -> collections.Counter[tuple[str, str]]:
    """(thread name, "user" or "sys") -> CPU seconds, over the process tree."""
    tick = os.sysconf("SC_CLK_TCK")
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for p in h.tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{p}/task/{tid}/stat").read_text()
                name = Path(f"/proc/{p}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            out[(name, "user")] += int(fields[11]) / tick
            out[(name, "sys")] += int(fields[12]) / tick
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=("pass", "held", "bcc"), default="held")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--size-kb", type=int, default=5)
    ap.add_argument("--leakguard", default=h.Leakguard.binary)
    args = ap.parse_args()
    site = Path(tempfile.mkdtemp(prefix="lg-threadnames-"))
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    unique = args.case != "pass"
    sink = h.Sink()
    lg = h.Leakguard(sink.port, extra_args=["--workers", str(args.workers)], binary=args.leakguard)
    try:
        mail = h.write_mail(args.case, args.size_kb * 1024, lg.data / f"{args.case}.eml")
        h.smtp_source(lg.port, mail, args.case, 200, 10, 10, unique=unique)  # warm-up
        h.settle(lg.pid)
        before = _snapshot(lg.pid)
        took = h.smtp_source(
            lg.port, mail, args.case, args.messages, args.sessions, 10, unique=unique
        )
        h.settle(lg.pid)
        after = _snapshot(lg.pid)
    finally:
        lg.stop()
        sink.stop()
    n = args.messages
    print(
        f"{args.case} {args.size_kb} KB, {args.sessions} sessions, {args.workers} worker(s): "
        f"{n / took:.1f} msg/s; CPU per mail by thread (counted until the relay is idle)"
    )
    per: collections.Counter[str] = collections.Counter()
    for key, seconds in after.items():
        per[f"{key[0]} ({key[1]})"] += seconds - before.get(key, 0.0)
    total = sum(per.values())
    for name, seconds in per.most_common():
        if seconds * 1000 / n >= 0.01:
            print(f"  {name:28s} {seconds * 1000 / n:6.2f} ms")
    print(f"  {'total':28s} {total * 1000 / n:6.2f} ms")


if __name__ == "__main__":
    main()
