"""Fuzz the extractors: mutated PDFs, Office files, ZIPs, TNEF and calendars through the
real worker pool, with a fixed seed and a bounded count.

Seeds are the attachments of ``examples/attachment-*.eml`` and ``calendar-invite-ja.eml``
plus a PPTX and an ODT built here. Each case is one seed with 1-8 mutations (bit flips,
random bytes, deleted or duplicated chunks, truncation, and, inside ZIP containers, a
mutated member re-zipped so the XML parsers see the damage rather than the CRC check).

Reported: how many cases ended in each status; **crashes** (a worker died: segfault, abort,
the kernel's OOM killer; must be 0, yet each was survived and counted as uninspected);
**hangs killed** (a worker over the budget, killed and replaced); **over budget** (a call
that returned later than its budget plus one second: must be 0); and **escaped** (an
exception out of the pool into the caller: must be 0).

    python bench/fuzz_extract.py [--cases 400] [--seed 7] [--budget 5] [--json]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import random
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.extract.formats import Limits, Output  # noqa: E402
from leakguard.extract.pool import ExtractPool, Failure, Job  # noqa: E402
from leakguard.message.parse import decode_transfer_encoding, parse_message  # noqa: E402


def seeds() -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for p in sorted((ROOT / "examples").glob("*.eml")):
        if not (p.name.startswith("attachment-") or p.name.startswith("calendar-")):
            continue
        msg = parse_message(p.read_bytes())
        for att in msg.attachments:
            body = decode_transfer_encoding(
                msg.raw[att.body_start : att.body_end], att.transfer_encoding
            )
            out.append((att.filename or "invite.ics", att.content_type, body))
    a = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    pptx = io.BytesIO()
    with zipfile.ZipFile(pptx, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("ppt/presentation.xml", "<p/>")
        for n in range(1, 4):
            zf.writestr(
                f"ppt/slides/slide{n}.xml",
                f"<sld {a}><a:p><a:r><a:t>スライド{n} 担当 山田 090-1234-5678</a:t></a:r>"
                "</a:p></sld>",
            )
    out.append(("deck.pptx", "application/octet-stream", pptx.getvalue()))
    odt = io.BytesIO()
    with zipfile.ZipFile(odt, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        zf.writestr(
            "content.xml",
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
            'office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
            "<office:body><office:text><text:p>氏名<text:tab/>山本 花子</text:p>"
            "</office:text></office:body></office:document-content>",
        )
    out.append(("form.odt", "application/octet-stream", odt.getvalue()))
    return out


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buf:
            break
        op = rng.randrange(5)
        i = rng.randrange(len(buf))
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            n = rng.randint(1, 64)
            buf[i : i + n] = rng.randbytes(n)
        elif op == 2:
            del buf[i : i + rng.randint(1, 4096)]
        elif op == 3:
            n = rng.randint(1, 4096)
            buf[i:i] = buf[i : i + n] * rng.randint(1, 20)
        else:
            del buf[i:]
    return bytes(buf)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Raw mutations, or (for ZIP containers, half the time) a mutated member re-zipped."""
    if data.startswith(b"PK\x03\x04") and rng.random() < 0.5:
        try:
            src = zipfile.ZipFile(io.BytesIO(data))
            members = [(i.filename, src.read(i)) for i in src.infolist()]
        except Exception:
            return mutate_bytes(rng, data)
        k = rng.randrange(len(members))
        name, body = members[k]
        members[k] = (name, mutate_bytes(rng, body))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, body in members:
                zf.writestr(name, body)
        return out.getvalue()
    return mutate_bytes(rng, data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per case")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    base = seeds()
    pool = ExtractPool(args.workers, limits=Limits(), memory_bytes=1024 * 1024 * 1024)
    statuses: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    crashes = hangs = over_budget = escaped = 0
    slowest = 0.0
    start_all = time.perf_counter()
    try:
        for _ in range(args.cases):
            name, ctype, data = rng.choice(base)
            case = mutate(rng, data)
            start = time.perf_counter()
            try:
                (res,) = pool.run([Job(name, ctype, "", "", case)], args.budget)
            except Exception:
                escaped += 1
                continue
            took = time.perf_counter() - start
            slowest = max(slowest, took)
            if took > args.budget + 1.0:
                over_budget += 1
            if isinstance(res, Failure):
                statuses["uninspected"] += 1
                if "died" in res.detail:
                    crashes += 1
                elif "time budget" in res.detail:
                    hangs += 1
                continue
            assert isinstance(res, Output)
            for c in res.contents[:1]:
                statuses[c.status] += 1
                kinds[c.kind] += 1
    finally:
        pool.close()
    report = {
        "cases": args.cases,
        "seed": args.seed,
        "seeds": len(base),
        "statuses": dict(statuses),
        "kinds": dict(kinds),
        "crashes": crashes,
        "hangs_killed": hangs,
        "over_budget": over_budget,
        "escaped": escaped,
        "slowest_s": round(slowest, 3),
        "total_s": round(time.perf_counter() - start_all, 1),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for k, v in report.items():
            print(f"{k}: {v}")
    return 0 if crashes == over_budget == escaped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
