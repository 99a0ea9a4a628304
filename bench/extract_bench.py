"""Benchmark of attachment extraction (issue 7), reported with same-run baselines.

1. Extraction speed: milliseconds per PDF page (a 30-page Japanese PDF with a real text
   layer) and microseconds per spreadsheet cell (an XLSX of 2,000 rows x 10 columns),
   in-process, as the workers run it.
2. A 10 MB mail with a 30-page PDF decided by ``Engine.decide`` (parse, extraction in the
   worker pool, detectors, policy): wall time, median of 5 (target: <= 300 ms).
3. A 50 KB mail without attachments: CPU per decision and its ratio against the stdlib
   parser reading the same bytes (target: <= 2 ms; extraction must add nothing).
4. Peak RSS of a real ``leakguard serve`` process while it relays a mail with a 25 MB
   attachment over SMTP: the rise of VmHWM over its idle value (target: < 3x the mail).

Needs the dev extras (reportlab, openpyxl) and a Japanese TrueType font (fonts-ipafont-gothic).

    python bench/extract_bench.py [--json] [--skip-rss]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import cpu_per_call, make_mail  # noqa: E402

from leakguard.engine import Engine  # noqa: E402
from leakguard.extract import ExtractConfig  # noqa: E402
from leakguard.extract.formats import Limits, extract  # noqa: E402
from leakguard.policy import load_policy  # noqa: E402

FONT = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
CITY = "city.example.lg.jp"


def pdf_30_pages(pad_to: int = 0) -> bytes:
    """30 pages of Japanese text (a real text layer), optionally padded to ``pad_to`` bytes
    with a photo-like incompressible image on the cover, as brochures and reports carry."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("IPAGothic", FONT))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    if pad_to:
        from PIL import Image

        side = int((pad_to / 3) ** 0.5)
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        png = io.BytesIO()
        img.save(png, format="PNG", compress_level=1)
        png.seek(0)
        c.drawImage(ImageReader(png), 50, 300, width=495, height=495)
    for page in range(1, 31):
        c.setFont("IPAGothic", 10)
        c.drawString(60, 800, f"令和8年度 事業報告書　第{page}章")
        for line in range(45):
            y = 770 - line * 15
            if pad_to and page == 1 and 290 < y < 800:
                continue
            c.drawString(
                60,
                y,
                f"{page}-{line + 1}　本年度の事業は計画どおり進捗し、担当課において確認を行った。"
                "Schedule and budget were reviewed.",
            )
        c.showPage()
    c.save()
    return buf.getvalue()


def xlsx_cells(rows: int = 2000, cols: int = 10) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "名簿"
    for r in range(rows):
        ws.append([f"R{r}C{c} 山田太郎" if c % 2 else r * 10 + c for c in range(cols)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mail_with(name: str, ctype: str, data: bytes, rcpt: str = f"kobayashi@{CITY}") -> bytes:
    blob = base64.encodebytes(data).replace(b"\n", b"\r\n")
    head = (
        f"From: kazuya.sato@{CITY}\r\nTo: {rcpt}\r\nSubject: report\r\n"
        f"Message-ID: <extract-bench@{CITY}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n報告書を送ります。\r\n"
        f'--b\r\nContent-Type: {ctype}; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + blob + b"\r\n--b--\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def relay_peak_rss(size: int, extract: bool = True) -> dict[str, float]:
    """Start ``leakguard serve`` (maildir delivery), relay one mail with a ``size``-byte
    attachment, and report how far its peak RSS rose above the idle value."""
    tmp = Path(tempfile.mkdtemp(prefix="extract-bench-"))
    port, web = _free_port(), _free_port()
    cfg = tmp / "leakguard.yaml"
    cfg.write_text(
        f"data_dir: {tmp / 'data'}\npolicy: {ROOT / 'policies' / 'default.yaml'}\n"
        f"listeners: [{{kind: plain, listen: '127.0.0.1:{port}'}}]\n"
        f"web: {{listen: '127.0.0.1:{web}'}}\nlimits: {{max_message_size: 104857600}}\n"
        "log: {json: true, level: warning}\n"
        f"extract: {{enabled: {'true' if extract else 'false'}}}\n",
        "utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "leakguard", "serve", "-c", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
    )
    try:
        for _ in range(400):
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    break
            except OSError:
                time.sleep(0.05)
        warm = mail_with("small.pdf", "application/pdf", pdf_30_pages()[:50_000])
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as c:
            c.sendmail(f"kazuya.sato@{CITY}", [f"kobayashi@{CITY}"], warm)
        time.sleep(0.5)
        idle = _hwm_kb(proc.pid)
        with open(f"/proc/{proc.pid}/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak to the current RSS
        reset = _hwm_kb(proc.pid)
        big = mail_with("archive.pdf", "application/pdf", os.urandom(size * 3 // 4))
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as c:
            c.sendmail(f"kazuya.sato@{CITY}", [f"kobayashi@{CITY}"], big)
        took = time.perf_counter() - start
        time.sleep(0.5)
        peak = _hwm_kb(proc.pid)
        return {
            "mail_mb": round(len(big) / 1e6, 1),
            "idle_rss_mb": round(idle / 1024, 1),
            "peak_rss_mb": round(peak / 1024, 1),
            "rise_mb": round((peak - reset) / 1024, 1),
            "rise_ratio": round((peak - reset) * 1024 / len(big), 2),
            "relay_s": round(took, 2),
        }
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-rss", action="store_true", help="skip the relay's peak RSS run")
    args = ap.parse_args()
    results: dict[str, object] = {}

    pdf = pdf_30_pages()
    t_pdf = per_call(lambda: extract("r.pdf", "application/pdf", pdf, Limits()), 5)
    results["pdf_ms_per_page"] = round(t_pdf / 30 * 1000, 3)
    sheet = xlsx_cells()
    t_xlsx = per_call(lambda: extract("r.xlsx", "application/octet-stream", sheet, Limits()), 5)
    results["xlsx_us_per_cell"] = round(t_xlsx / 20_000 * 1e6, 3)

    engine = Engine(
        load_policy(ROOT / "policies" / "default.yaml"), extract=ExtractConfig(workers=1)
    )
    engine.start_extraction()
    big_pdf = pdf_30_pages(pad_to=5_700_000)
    mail10 = mail_with(
        "事業報告書.pdf", "application/pdf", big_pdf, "n-kobayashi@minato-print.co.jp"
    )
    d = engine.decide(mail10)
    (content,) = d.message.contents
    assert content.status == "read" and len(content.sections) == 30, content.detail
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        engine.decide(mail10)
        walls.append(time.perf_counter() - start)
    results["mail_10mb_30_page_pdf"] = {
        "mail_mb": round(len(mail10) / 1e6, 2),
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
    }

    plain = make_mail(50_000, 1)
    parser = BytesParser(policy=email_policy.compat32)
    t_engine = cpu_per_call(lambda: engine.decide(plain), 1.0)
    t_std = cpu_per_call(lambda: parser.parsebytes(plain), 1.0)
    results["mail_50kb_no_attachment"] = {
        "cpu_ms": round(t_engine * 1000, 3),
        "stdlib_parse_ms": round(t_std * 1000, 3),
        "ratio": round(t_engine / t_std, 2),
        "pool_untouched": engine.extractor.pool.replaced == 0,
    }
    engine.close()

    if not args.skip_rss:
        # the same run with extraction off shows what the extractors add to the relay
        results["relay_25mb_attachment"] = relay_peak_rss(25_000_000)
        results["relay_25mb_attachment_extraction_off"] = relay_peak_rss(25_000_000, False)

    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for k, v in results.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
