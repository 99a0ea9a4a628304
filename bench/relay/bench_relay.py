"""Relay throughput and added latency, against the same load sent straight to the sink.

One run: an aiosmtpd sink (own thread); ``leakguard serve`` as a subprocess relaying to it
with the test policy (every message passes: 10 internal recipients, so the full engine
runs but nothing is held); 20 concurrent clients (aiosmtplib) each sending 5 KB mails with
10 recipients, first straight to the sink, then through the relay.

    .venv/bin/python bench/relay/bench_relay.py [--messages 1000] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.harness import Relay  # noqa: E402
from e2e.sink import Sink  # noqa: E402

SENDER = "kazuya.sato@city.example.lg.jp"
RCPTS = [f"staff{i:02d}@city.example.lg.jp" for i in range(1, 11)]


def make_message(seq: int) -> bytes:
    head = (
        f"From: Kazuya Sato <{SENDER}>\r\nTo: {', '.join(RCPTS[:5])}\r\n"
        f"Cc: {', '.join(RCPTS[5:])}\r\nSubject: bench {seq}\r\n"
        f"Message-ID: <bench{seq}@city.example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n"
    body = line * ((5 * 1024 - len(head)) // len(line) + 1)
    return (head + body).encode()[: 5 * 1024 - 2] + b"\r\n"


async def run_load(port: int, n: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
        await smtp.connect()
        try:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                raw = make_message(i)
                t0 = time.perf_counter()
                errors, _ = await smtp.sendmail(SENDER, RCPTS, raw)
                latencies.append(time.perf_counter() - t0)
                assert not errors
        finally:
            await smtp.quit()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies


def summary(name: str, n: int, elapsed: float, lat: list[float]) -> dict[str, float]:
    lat_ms = sorted(x * 1000 for x in lat)
    p = lambda q: lat_ms[min(len(lat_ms) - 1, int(q * len(lat_ms)))]  # noqa: E731
    out = {
        "msgs_per_s": n / elapsed,
        "p50_ms": statistics.median(lat_ms),
        "p95_ms": p(0.95),
        "p99_ms": p(0.99),
        "mean_ms": statistics.fmean(lat_ms),
    }
    print(
        f"{name:8s} {n} msgs in {elapsed:6.2f}s  {out['msgs_per_s']:8.1f} msg/s  "
        f"p50 {out['p50_ms']:7.2f} ms  p95 {out['p95_ms']:7.2f} ms  p99 {out['p99_ms']:7.2f} ms"
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=20)
    args = ap.parse_args()
    print(f"{args.clients} clients, {args.messages} messages of 5 KB, 10 recipients each")
    with tempfile.TemporaryDirectory() as tmp, Sink() as sink:
        relay = Relay(
            Path(tmp),
            sink.port,
            extra={
                "log": {"json": True, "level": "warning"},
                "upstream": {"pool_size": args.clients},
            },
        ).start()
        try:
            asyncio.run(run_load(relay.port, 40, 4))  # warm-up (engine indexes, pool)
            n0 = len(sink.messages)
            el, lat = asyncio.run(run_load(sink.port, args.messages, args.clients))
            direct = summary("direct", args.messages, el, lat)
            el, lat = asyncio.run(run_load(relay.port, args.messages, args.clients))
            via = summary("relay", args.messages, el, lat)
            assert len(sink.messages) == n0 + 2 * args.messages
        finally:
            relay.stop()
    print(f"throughput ratio relay/direct: {via['msgs_per_s'] / direct['msgs_per_s']:.3f}")
    print(
        f"added latency: p50 +{via['p50_ms'] - direct['p50_ms']:.2f} ms, "
        f"p95 +{via['p95_ms'] - direct['p95_ms']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
