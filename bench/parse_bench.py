"""Benchmark of ``parse_message``: CPU milliseconds per message for ~5 KB, ~50 KB and ~5 MB.

Each mail is realistic for a Japanese office: ISO-2022-JP / UTF-8 text, an Outlook-style
HTML alternative with a quoted thread, recipients with encoded Japanese display names, and
attachments. Three figures per size:

* ``parse``      the whole ``parse_message`` (quote extraction included),
* ``no-quotes``  the same with quote extraction stubbed out (the parser's own share),
* ``stdlib``     baseline: ``email.parser.BytesParser(policy=compat32)`` walking every part.

Machines here are noisy: compare the figures of one run with each other.

    .venv/bin/python bench/parse_bench.py [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.message import parse, parse_message, quotes  # noqa: E402

NAMES = ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健太", "伊藤 直子"]


def _b(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _jis(text: str) -> str:
    return "=?ISO-2022-JP?B?" + base64.b64encode(text.encode("iso2022_jp")).decode() + "?="


def _recipients(n: int, domain: str) -> str:
    return ",\r\n ".join(f"{_jis(NAMES[i % len(NAMES)])} <user{i}@{domain}>" for i in range(n))


def _plain_body(kb: int) -> bytes:
    para = (
        "山田様\r\n\r\nいつもお世話になっております。株式会社サンプルの佐藤です。\r\n"
        "先日ご依頼いただいた見積書を添付いたします。ご確認のほどよろしくお願いいたします。\r\n\r\n"
    )
    quoted = (
        "-----Original Message-----\r\nFrom: 山田 太郎 <taro@client.example.co.jp>\r\n"
        "Sent: Monday, April 1, 2024 10:00 AM\r\nTo: 佐藤 花子 <hanako@example.co.jp>\r\n"
        "Subject: 見積のお願い\r\n\r\n> お見積りをお願いできますでしょうか。\r\n"
        "> 数量は100個を予定しております。\r\n\r\n"
    )
    text = para
    while len(text.encode("iso2022_jp")) < kb * 1024:
        text += quoted
    return text.encode("iso2022_jp")


def _html_body(kb: int) -> bytes:
    para = (
        '<p class="MsoNormal"><span style="font-size:11.0pt;font-family:游ゴシック">'
        "いつもお世話になっております。見積書を添付いたします。</span></p>\r\n"
    )
    quote = (
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0mm 0mm 0mm">'
        '<p class="MsoNormal"><b>From:</b> 山田 太郎 &lt;taro@client.example.co.jp&gt;<br>'
        "<b>Sent:</b> Monday, April 1, 2024 10:00 AM<br><b>To:</b> 佐藤 花子 "
        "&lt;hanako@example.co.jp&gt;<br><b>Subject:</b> 見積のお願い</p></div>\r\n"
    )
    html = '<html><head><meta charset="utf-8"><style>p.MsoNormal{margin:0}</style></head><body>'
    while len(html.encode()) < kb * 1024:
        html += para * 4 + quote
    return (html + "</body></html>").encode()


def build(total_kb: int, rcpts: int) -> bytes:
    # Text stays the size people write; what grows with the mail is the attachment.
    plain_kb = min(max(2, total_kb // 10), 5)
    html_kb = min(total_kb // 4, 12) if total_kb >= 20 else 0
    headers = [
        "Received: from mua.example.co.jp (mua.example.co.jp [192.0.2.1])\r\n"
        "\tby mx.example.co.jp with ESMTPSA id abc123; Mon, 1 Apr 2024 10:00:00 +0900",
        "Message-ID: <20240401100000.abc@example.co.jp>",
        "Date: Mon, 1 Apr 2024 10:00:00 +0900",
        f"From: {_jis('佐藤 花子')} <hanako@example.co.jp>",
        f"To: {_recipients(rcpts, 'client.example.co.jp')}",
        f"Cc: {_recipients(2, 'example.co.jp')}",
        f"Subject: {_jis('Re: 見積のお願い（４月分）')}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_mixed"',
    ]
    parts = [
        b'--=_mixed\r\nContent-Type: multipart/alternative; boundary="=_alt"\r\n\r\n'
        b"--=_alt\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n" + _plain_body(plain_kb) + b"\r\n"
    ]
    if html_kb:
        parts.append(
            b"--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(_html_body(html_kb)).replace(b"\n", b"\r\n")
        )
    parts.append(b"--=_alt--\r\n")
    head = "\r\n".join(headers).encode() + b"\r\n\r\n"
    size_now = len(head) + sum(len(p) for p in parts)
    attach_bytes = max(0, (total_kb * 1024 - size_now) * 3 // 4 - 400)
    if attach_bytes > 0:
        payload = base64.encodebytes(os.urandom(attach_bytes)).replace(b"\n", b"\r\n")
        parts.append(
            b'--=_mixed\r\nContent-Type: application/pdf; name="=?UTF-8?B?'
            + base64.b64encode("見積書.pdf".encode())
            + b'?="\r\nContent-Disposition: attachment; filename="=?UTF-8?B?'
            + base64.b64encode("見積書.pdf".encode())
            + b'?="\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + payload
        )
    parts.append(b"--=_mixed--\r\n")
    return head + b"".join(parts)


def _stdlib(raw: bytes) -> None:
    msg = BytesParser(policy=email_policy.compat32).parsebytes(raw)
    for part in msg.walk():
        part.get_content_type()


def measure(fn: Callable[[bytes], object], raw: bytes, seconds: float) -> float:
    """Median-ish CPU ms per call: repeat for ``seconds``, take the best of 5 rounds."""
    fn(raw)
    rounds: list[float] = []
    for _ in range(5):
        n = 0
        start = time.process_time()
        while True:
            fn(raw)
            n += 1
            spent = time.process_time() - start
            if spent >= seconds / 5:
                break
        rounds.append(spent / n * 1000)
    return min(rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    def no_quotes(raw: bytes) -> object:
        saved = quotes.extract_quotes
        quotes.extract_quotes = lambda _t, _a: ()
        try:
            return parse_message(raw)
        finally:
            quotes.extract_quotes = saved

    results = []
    for label, kb, rcpts in (("5KB", 5, 3), ("50KB", 50, 10), ("5MB", 5 * 1024, 10)):
        raw = build(kb, rcpts)
        m = parse_message(raw)
        assert m.text_parts and len(m.to) == rcpts, (label, m.defects)
        row = {
            "mail": label,
            "bytes": len(raw),
            "parse_ms": round(measure(parse_message, raw, args.seconds), 3),
            "no_quotes_ms": round(measure(no_quotes, raw, args.seconds), 3),
            "stdlib_ms": round(measure(_stdlib, raw, args.seconds), 3),
        }
        results.append(row)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'mail':>6} {'bytes':>9} {'parse ms':>9} {'no-quotes':>10} {'stdlib ms':>10}")
    for r in results:
        print(
            f"{r['mail']:>6} {r['bytes']:>9} {r['parse_ms']:>9} {r['no_quotes_ms']:>10}"
            f" {r['stdlib_ms']:>10}"
        )
    print(f"limits: depth {parse.MAX_DEPTH}, parts {parse.MAX_PARTS}")


if __name__ == "__main__":
    main()
