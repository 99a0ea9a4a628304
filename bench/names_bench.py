"""Benchmark: name-similar recipient check, microseconds per recipient.

Builds directories of 50 and 5,000 synthetic people (common Japanese surnames and given
names from ``tests/fixtures/names``, with kana) and times ``names.detect`` on messages whose
external recipients mix look-alike local parts, kanji / kana / romaji display names and
unrelated addresses. Run: ``.venv/bin/python bench/names_bench.py``.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

from leakguard.detectors import lookalike, names
from leakguard.detectors.japanese import kana_to_romaji
from leakguard.message.addresses import make_address
from leakguard.organization import Context, Organization, Person
from leakguard.types import Address, Message

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "names"


def _read(name: str) -> list[tuple[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8") as fh:
        return [(r["kanji"], r["kana"]) for r in csv.DictReader(fh)]


def directory(n: int, rng: random.Random) -> list[Person]:
    surnames, given = _read("surnames.csv"), _read("given_names.csv")
    people = []
    for i in range(n):
        (sk, sr), (gk, gr) = rng.choice(surnames), rng.choice(given)
        local = f"{kana_to_romaji(gr)}.{kana_to_romaji(sr)}{i}"
        people.append(Person(f"{local}@city.example.lg.jp", f"{sk} {gk}", f"{sr} {gr}"))
    return people


def recipients(people: list[Person], count: int, rng: random.Random) -> list[Address]:
    out = []
    for i in range(count):
        p = rng.choice(people)
        fam, giv = (kana_to_romaji(x) for x in p.kana.split())
        kind = i % 6
        if kind == 0:
            out.append(make_address(f"{giv}.{fam}@partner{i}.co.jp"))
        elif kind == 1:
            out.append(make_address(f"{giv[0]}{fam}@example.com"))
        elif kind == 2:
            out.append(make_address(f"x{i}@example.net", p.name + " 様"))
        elif kind == 3:
            out.append(make_address(f"y{i}@example.org", f"{fam.upper()} {giv.title()}"))
        elif kind == 4:
            out.append(make_address(f"info{i}@shop{i}.example"))
        else:
            out.append(make_address(f"zz{i}qx@example.jp", "Unrelated Person"))
    return out


def message(rcpts: list[Address], sender: Address | None = None) -> Message:
    sender = sender or make_address("boss@city.example.lg.jp")
    return Message(
        raw=b"",
        subject="",
        message_id="",
        from_=(sender,),
        sender_header=None,
        reply_to=(),
        to=tuple(rcpts),
        cc=(),
        bcc=(),
        envelope_from=sender,
        envelope_rcpts=tuple(rcpts),
        text_parts=(),
        attachments=(),
        attached_messages=(),
        quoted_blocks=(),
        headers=(),
    )


def run(n: int, rng: random.Random, rounds: int = 50, per_message: int = 20) -> None:
    people = directory(n, rng)
    org = Organization(
        internal_domains=["city.example.lg.jp"], directory=people, partner_domains=["partner.co.jp"]
    )
    ctx = Context(org=org)
    t0 = time.perf_counter()
    names.directory_index(org)
    build = time.perf_counter() - t0
    msgs = [message(recipients(people, per_message, rng)) for _ in range(rounds)]
    hits = 0
    t0 = time.perf_counter()
    for m in msgs:
        hits += names.detect(m, ctx).facts[names.FACT]
    elapsed = time.perf_counter() - t0
    per = elapsed / (rounds * per_message) * 1e6
    t0 = time.perf_counter()
    for m in msgs:
        lookalike.detect(m, ctx)
    la = (time.perf_counter() - t0) / (rounds * per_message) * 1e6
    print(
        f"directory {n:>5}: index build {build * 1000:7.1f} ms; names {per:6.1f} µs/recipient "
        f"({hits}/{rounds * per_message} fired); lookalike {la:5.1f} µs/recipient (cached)"
    )
    # sender_aliases: each message from a directory person (sender names cached per sender
    # after the first message), half of them also to that person's own outside address.
    # More aliases than planted are found: the random recipients sometimes carry the
    # sender's own name (a small directory has few distinct names).
    senders = [rng.choice(people) for _ in range(10)]
    amsgs = []
    for i, m in enumerate(msgs):
        p = senders[i % len(senders)]
        fam, giv = (kana_to_romaji(x) for x in p.kana.split())
        own = [make_address(f"{giv[0]}{fam}{i}@home-isp.example")] if i % 2 else []
        amsgs.append(message([*own, *m.to], make_address(p.email, p.name)))
    t0 = time.perf_counter()
    found = sum(len(names.sender_aliases(m, ctx)) for m in amsgs)
    cold = (time.perf_counter() - t0) / len(amsgs) * 1e6
    t0 = time.perf_counter()
    for m in amsgs:
        names.sender_aliases(m, ctx)
    warm = (time.perf_counter() - t0) / len(amsgs) * 1e6
    print(
        f"{'':16}sender_aliases {warm:6.1f} µs/message of {per_message}-{per_message + 1} "
        f"recipients ({cold:7.1f} µs on the first pass, which reads each sender's name); "
        f"{found} aliases found, {rounds // 2} planted"
    )


def contacts(n: int, rng: random.Random) -> None:
    """A sender's contact index: built once, rebuilt when the contact list grows."""
    people = directory(n, rng)
    book = {p.email.replace("city.example.lg.jp", "client.example"): (p.name,) for p in people}
    t0 = time.perf_counter()
    names.build_contacts_index(book)
    first = time.perf_counter() - t0
    book["new.person@client.example"] = ("新規 太郎",)
    t0 = time.perf_counter()
    names.build_contacts_index(book)
    again = time.perf_counter() - t0
    print(
        f"contacts  {n:>5}: first build {first * 1000:7.1f} ms; rebuild after one new "
        f"contact {again * 1000:6.1f} ms"
    )


def main() -> None:
    rng = random.Random(7)
    for n in (50, 5000):
        run(n, rng)
    contacts(2000, rng)


if __name__ == "__main__":
    main()
