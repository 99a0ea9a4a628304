"""Benchmark of the engine alone (parse + detectors + policy), no SMTP.

Reports CPU time per message and messages per second for mails of 5 KB, 50 KB and 5 MB and
for 1, 10, 100 and 1,000 recipients, each also as a ratio against a baseline measured in the
same run on the same bytes: the stdlib ``email`` parser (compat32) reading the message.
Machines here are noisy, so compare ratios, not absolute times.

    python bench/engine_bench.py [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.engine import Engine  # noqa: E402
from leakguard.policy import load_policy  # noqa: E402

CITY = "city.example.lg.jp"

QUOTE = (
    "\r\n差出人: 木村 健二 <kenji.kimura@kensetsu.example>\r\n"
    "送信日時: 2026年11月20日 14:03\r\n"
    "宛先: 佐藤 一也 <kazuya.sato@city.example.lg.jp>\r\n"
    "CC: 小林 <kobayashi@kensetsu.example>\r\n"
    "件名: 校舎改修工事の工程について\r\n\r\n"
)


def _body(size: int) -> str:
    para = (
        "いつもお世話になっております。工程表の件、ご確認をお願いいたします。"
        "The schedule for the renovation is attached; please check the dates.\r\n"
    )
    text = "山田先生\r\n\r\n下記の件、ご確認ください。\r\n\r\n佐藤\r\n" + QUOTE
    while len(text.encode("utf-8")) < size:
        text += para
    return text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_mail(size: int, n_rcpts: int, attachment: int = 0) -> bytes:
    rcpts = [f"user{i}@company{i % 7}.example" for i in range(n_rcpts)]
    head = (
        f"From: =?UTF-8?B?{_b64('佐藤 一也')}?= <kazuya.sato@{CITY}>\r\n"
        f"To: {', '.join(rcpts)}\r\n"
        "Subject: =?UTF-8?B?" + base64.b64encode("FW: 工程について".encode()).decode() + "?=\r\n"
        "Date: Tue, 24 Nov 2026 10:15:00 +0900\r\n"
        f"Message-ID: <bench-{size}-{n_rcpts}@{CITY}>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    # text and HTML alternatives together make up about ``size`` bytes
    text = _body(int(size / 2.3) if not attachment else 2000)
    html = "<html><body><div>" + text.replace("\r\n", "<br>\r\n") + "</div></body></html>"
    boundary = "b1_bench"
    alt = "b2_bench"
    parts = [
        f'--{boundary}\r\nContent-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
        f"--{alt}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n--{alt}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{alt}--\r\n"
    ]
    if attachment:
        blob = base64.encodebytes(os.urandom(attachment * 3 // 4)).decode().replace("\n", "\r\n")
        parts.append(
            f'--{boundary}\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
            'Content-Disposition: attachment; filename="report.pdf"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{blob}\r\n"
        )
    body = "".join(parts) + f"--{boundary}--\r\n"
    mail = head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n' + body
    return mail.encode("utf-8")


def cpu_per_call(fn: Callable[[], object], seconds: float) -> float:
    """Median CPU seconds per call over 5 rounds of about ``seconds``/5 each."""
    fn()  # warm caches (organisation indexes, regexes)
    rounds: list[float] = []
    for _ in range(5):
        n = 0
        start = time.process_time()
        while True:
            fn()
            n += 1
            used = time.process_time() - start
            if used >= seconds / 5 and n >= 3:
                break
        rounds.append(used / n)
    return statistics.median(rounds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    engine = Engine(load_policy(ROOT / "policies" / "default.yaml"))
    parser = BytesParser(policy=email_policy.compat32)
    cases = [
        ("5 KB, 1 rcpt", make_mail(5_000, 1)),
        ("50 KB, 1 rcpt", make_mail(50_000, 1)),
        ("5 MB (5 MB PDF), 1 rcpt", make_mail(0, 1, attachment=5_000_000)),
        ("5 MB text, 1 rcpt", make_mail(5_000_000, 1)),
        ("5 KB, 10 rcpts", make_mail(5_000, 10)),
        ("5 KB, 100 rcpts", make_mail(5_000, 100)),
        ("5 KB, 1000 rcpts", make_mail(5_000, 1000)),
    ]
    rows = []
    sender = f"kazuya.sato@{CITY}"
    for name, raw in cases:
        decided = engine.decide(raw, envelope_from=sender)
        eng = cpu_per_call(lambda raw=raw: engine.decide(raw, envelope_from=sender), args.seconds)
        base = cpu_per_call(lambda raw=raw: parser.parsebytes(raw), args.seconds)
        rows.append(
            {
                "case": name,
                "bytes": len(raw),
                "action": decided.verdict.action.value,
                "engine_ms": eng * 1000,
                "msgs_per_s": 1 / eng if eng else float("inf"),
                "stdlib_parse_ms": base * 1000,
                "ratio_vs_stdlib_parse": eng / base if base else float("inf"),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'case':28} {'bytes':>9} {'action':>6} {'engine ms':>10} {'msg/s':>9} "
        f"{'stdlib ms':>10} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['case']:28} {r['bytes']:>9} {r['action']:>6} {r['engine_ms']:>10.3f} "
            f"{r['msgs_per_s']:>9.0f} {r['stdlib_parse_ms']:>10.3f} "
            f"{r['ratio_vs_stdlib_parse']:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
