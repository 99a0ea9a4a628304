"""Per-call overhead of a content step in a worker process (``leakguard.stepproc``) against
the same step in the relay's process, for a 5 KB mail (issue 12).

    .venv/bin/python bench/stepproc_overhead.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from leakguard import stepproc
from leakguard.holds.commands import read_reply

MAIL = (
    b"From: tanaka@city.example.lg.jp\r\nTo: a@client-one.example.com\r\n"
    b"Subject: Re: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "個人番号 1234 5678 9018 を送ります\r\n".encode()
    * 150
)


async def main(rounds: int) -> None:
    stepproc.start(["reply"])
    await stepproc.reply(MAIL)
    remote, local = [], []
    for _ in range(rounds):  # interleaved, so that machine load hits both alike
        t0 = time.perf_counter()
        await stepproc.reply(MAIL)
        remote.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        read_reply(MAIL)
        local.append(time.perf_counter() - t0)
    r, lo = statistics.median(remote), statistics.median(local)
    print(f"mail {len(MAIL)} bytes, {rounds} rounds")
    print(f"worker process: median {r * 1000:.3f} ms; in-process: median {lo * 1000:.3f} ms")
    print(f"overhead: median {(r - lo) * 1000:.3f} ms a call")
    stepproc.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
