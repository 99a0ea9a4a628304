"""Other projects' forward / reply fixtures (evaluation data under ../shared/corpora).

* crisp-oss/email-forward-parser: every fixture forwards (or, for ``variant_4``, replies
  to) the same message. Expected From/To/Cc per fixture follow the upstream tests
  (``test/index.js``, and the Go port that uses the same ``variant_N`` names), including
  their skips: Outlook 2019 embeds neither To nor Cc, IONOS no Cc, ``variant_1`` has no Cc,
  ``variant_6`` skips Cc, ``variant_12`` has names only, ``variant_4`` is a reply.
* closeio/quotequail and mailgun/talon HTML: forwards yield a header block with their
  addresses; nothing crashes.
* discourse/email_reply_trimmer: every address in the part upstream marks as embedded
  (quoted) is found in a quoted block, and nothing crashes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leakguard.message.quotes import extract_quotes
from leakguard.message.textaddr import find_addresses
from leakguard.types import QuotedBlock, QuoteKind, TextPart

pytestmark = pytest.mark.corpus

CRISP = "peer-fixtures/crisp-email-forward-parser/test/fixtures"
SUBJECT = "Integer consequat non purus"
FROM = "john.doe@acme.com"
TO1, TO2 = "bessie.berry@acme.com", "suzanne@globex.corp"
CC1, CC2 = "walter.sheltan@acme.com", "nicholas@globex.corp"


def _expected(name: str) -> set[str] | None:
    """From/To/Cc the upstream tests check for one fixture; None for names-only."""
    stem = name.removesuffix(".txt")
    variant = stem.split("_variant_", 1)[1] if "_variant_" in stem else ""
    outlook_2019 = stem.startswith("outlook_2019_")
    if variant == "12":
        return None
    if variant == "4":
        return {FROM}  # a reply: the quoted author (when the fixture names one)
    if variant == "1":
        return {FROM, TO1, TO2}
    if variant == "2":
        want = {FROM} if outlook_2019 else {FROM, TO1, TO2}
        if not (outlook_2019 or stem.startswith("ionos_")):
            want |= {CC1, CC2}
        return want
    if variant in ("3", "7", "11"):
        return {FROM, TO1, TO2, CC1, CC2}
    if variant == "6":
        return {FROM, TO1}
    if variant:  # 5, 8, 9, 10, 13, 14, 14_1, 15: the common To/Cc
        return {FROM, TO1, CC1, CC2}
    want = {FROM}
    if not outlook_2019:
        want.add(TO1)
        if not stem.startswith("ionos_"):
            want |= {CC1, CC2}
    return want


def _blocks(text: str) -> tuple[QuotedBlock, ...]:
    return extract_quotes([TextPart("text/plain", text, "utf-8", "1")], [])


def _crisp_files(corpora: Path) -> list[Path]:
    d = corpora / CRISP
    if not d.is_dir():
        pytest.skip("crisp fixtures absent")
    return sorted(d.glob("*_body*.txt"))


def test_crisp_forwards_yield_their_from_to_cc(corpora_dir: Path) -> None:
    files = _crisp_files(corpora_dir)
    assert len(files) >= 150
    failures: list[str] = []
    for f in files:
        text = f.read_text("utf-8")
        blocks = _blocks(text)
        want = _expected(f.name)
        if want is None or (FROM not in text and "_variant_4" in f.name):
            # names only ("From: John Doe", "To: Bessie Berry") or a reply to someone else:
            # no address of the common message may be invented
            got = {a.key for b in blocks for a in b.addresses}
            if got & {FROM, TO1, TO2, CC1, CC2}:
                failures.append(f"{f.name}: invented {sorted(got)}")
            continue
        # the quoted message that John wrote: the block whose participants include him
        johns = [b for b in blocks if FROM in {p.key for p in b.participants}]
        if not johns:
            failures.append(f"{f.name}: no block with {FROM} as participant")
            continue
        got = {p.key for b in johns for p in b.participants}
        if not want <= got:
            failures.append(f"{f.name}: missing {sorted(want - got)}")
        if "_variant_4" in f.name:
            continue
        outer = johns[0]
        # (yahoo_pt writes "Assunto Integer ..." without a colon: no subject label there)
        if (
            outer.kind == QuoteKind.HEADER_BLOCK
            and SUBJECT not in outer.subject
            and f.name != "yahoo_pt_body.txt"
        ):
            failures.append(f"{f.name}: subject {outer.subject!r}")
    assert not failures, "\n".join(failures)


def test_crisp_outlook_2019_attribution_forwards(corpora_dir: Path) -> None:
    # Outlook 2019 forwards as "On <date>, "John Doe" <john.doe@acme.com> wrote:" with an
    # indented body: an attribution block, author known, participants otherwise unknown.
    for f in _crisp_files(corpora_dir):
        if f.name.startswith("outlook_2019_") and "_variant_" not in f.name:
            (b,) = _blocks(f.read_text("utf-8"))
            assert b.kind == QuoteKind.ATTRIBUTION and not b.participants_known, f.name
            assert [p.key for p in b.participants] == [FROM], f.name


def _html_files(corpora: Path) -> list[Path]:
    out: list[Path] = []
    for sub in (
        "peer-fixtures/closeio-quotequail/tests/files",
        "peer-fixtures/mailgun-talon/tests/fixtures/html_replies",
    ):
        d = corpora / sub
        if d.is_dir():
            out += sorted(d.glob("*.html"))
    if not out:
        pytest.skip("HTML fixtures absent")
    return out


def test_html_fixtures_forwards_and_replies(corpora_dir: Path) -> None:
    for f in _html_files(corpora_dir):
        html = f.read_text("utf-8", "replace")
        blocks = extract_quotes([TextPart("text/html", "", "utf-8", "1", html=html)], [])
        if "forward" in f.name and "unwrapped" not in f.name:
            # every address of the forwarded header block is a participant of it
            (b,) = blocks
            assert b.kind == QuoteKind.HEADER_BLOCK, f.name
            assert b.participants and set(b.participants) <= set(b.addresses), f.name
        for b in blocks:
            assert b.location.startswith("HTML part 1"), f.name


def test_quotequail_forward_participants(corpora_dir: Path) -> None:
    # From/To of the forwards as upstream's tests/test_unwrap.py parses them
    d = corpora_dir / "peer-fixtures/closeio-quotequail/tests/files"
    if not d.is_dir():
        pytest.skip("quotequail fixtures absent")
    expected = {
        "apple_forward.html": {"foo@bar.example", "john@doe.example"},
        "gmail_forward.html": {"foo@bar.example", "john@doe.example"},
        "thunderbird_forward.html": {"johndoe@example.com", "foobar@example.com"},
    }
    for name, want in expected.items():
        html = (d / name).read_text("utf-8", "replace")
        (b,) = extract_quotes([TextPart("text/html", "", "utf-8", "1", html=html)], [])
        assert {p.key for p in b.participants} == want, name


def test_discourse_embedded_addresses_are_found(corpora_dir: Path) -> None:
    d = corpora_dir / "peer-fixtures/discourse-email-reply-trimmer/test"
    if not d.is_dir():
        pytest.skip("discourse fixtures absent")
    emails = sorted((d / "emails").glob("*.txt"))
    assert len(emails) >= 60
    checked = 0
    for f in emails:
        text = f.read_text("utf-8", "replace")
        blocks = _blocks(text)  # no crash on any of them
        embedded = d / "embedded" / f.name
        if not embedded.exists():
            continue
        want = {a.key for a in find_addresses(embedded.read_text("utf-8", "replace"))}
        got = {a.key for b in blocks for a in b.addresses}
        assert want <= got, f"{f.name}: {sorted(want - got)}"
        checked += bool(want)
    assert checked >= 5


def test_discourse_signature_of_new_text_is_not_quoted(corpora_dir: Path) -> None:
    f = (
        corpora_dir
        / "peer-fixtures/discourse-email-reply-trimmer/test/emails/embedded_email_16.txt"
    )
    if not f.exists():
        pytest.skip("discourse fixtures absent")
    got = {a.key for b in _blocks(f.read_text("utf-8")) for a in b.addresses}
    assert got == {"alwagner@tcac.net"}  # not the replier's drbrain@..., not ...@localhost
