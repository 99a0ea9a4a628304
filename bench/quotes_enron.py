"""Sanity check of quote extraction over the Enron subset (evaluation data, not shipped).

For every message the corpus manifest says has addresses in quoted header blocks
(``n_quoted_hdr_addrs > 0``), count whether ``extract_quotes`` recovers them as participants
(From/To/Cc) of quoted header blocks, and compare counts. The manifest comes from a simple
scanner, so its numbers are heuristics, not ground truth: the misses printed are for reading.

Usage: .venv/bin/python bench/quotes_enron.py [CORPORA_DIR] [--misses N] [--verbose]
"""

from __future__ import annotations

import csv
import email
import email.policy
import os
import random
import sys
import time
from pathlib import Path

from leakguard.message.quotes import extract_quotes
from leakguard.types import QuoteKind, TextPart


def _corpora() -> Path:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if args and not args[0].isdigit():
        return Path(args[0])
    env = os.environ.get("LEAKGUARD_CORPORA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def _body_text(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            try:
                parts.append(str(part.get_content()))  # type: ignore[attr-defined]
            except (LookupError, UnicodeError):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    parts.append(payload.decode("latin-1"))
    return "\n".join(parts)


def main() -> int:
    root = _corpora() / "enron-subset"
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        print(f"no manifest at {manifest}", file=sys.stderr)
        return 2
    n_misses = 10
    if "--misses" in sys.argv:
        n_misses = int(sys.argv[sys.argv.index("--misses") + 1])
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    want = got_any = got_all = 0
    extra_msgs = 0
    total_cpu = 0.0
    total_bytes = 0
    misses: list[tuple[str, int, int]] = []
    short: list[tuple[str, int, int]] = []
    slowest: tuple[float, str] = (0.0, "")
    for row in rows:
        raw = (root / row["file"]).read_bytes()
        text = _body_text(raw)
        part = TextPart("text/plain", text, "utf-8", "1")
        t0 = time.process_time()
        blocks = extract_quotes([part], [])
        dt = time.process_time() - t0
        total_cpu += dt
        total_bytes += len(raw)
        slowest = max(slowest, (dt, row["file"]))
        hdr_addrs = {
            a.key for b in blocks if b.kind == QuoteKind.HEADER_BLOCK for a in b.participants
        }
        expected = int(row["n_quoted_hdr_addrs"] or 0)
        if expected > 0:
            want += 1
            if hdr_addrs:
                got_any += 1
                if len(hdr_addrs) >= expected:
                    got_all += 1
                else:
                    short.append((row["file"], expected, len(hdr_addrs)))
            else:
                misses.append((row["file"], expected, 0))
        elif hdr_addrs:
            extra_msgs += 1
    print(f"messages: {len(rows)}, {total_bytes / 1e6:.1f} MB")
    print(f"manifest says quoted headers hold addresses: {want}")
    print(
        f"  recovered at least one header-block address: {got_any} ({got_any / max(want, 1):.1%})"
    )
    print(
        f"  recovered at least as many as the manifest:  {got_all} ({got_all / max(want, 1):.1%})"
    )
    print(f"  none recovered (misses): {len(misses)}")
    print(f"messages where we find header-block addresses the manifest does not: {extra_msgs}")
    print(
        f"CPU: {total_cpu * 1000:.0f} ms total, {total_cpu / len(rows) * 1e6:.0f} us/message, "
        f"slowest {slowest[0] * 1000:.1f} ms ({slowest[1]})"
    )
    rnd = random.Random(7)
    for title, items in (("misses", misses), ("fewer than the manifest", short)):
        if items:
            print(f"\nsample of {title}:")
            for f, e, g in rnd.sample(items, min(n_misses, len(items))):
                print(f"  {f}: manifest {e}, found {g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
