"""Pure parts: tokens and signed links, verdict codec, defanging, reply command parsing."""

from __future__ import annotations

import time
import unicodedata

import pytest
from test_holds_support import LOOKALIKE, THIRD_PARTY, verdict

from leakguard.holds import codec
from leakguard.holds.commands import read_reply
from leakguard.holds.explain import defang
from leakguard.holds.service import Decision, parse_command
from leakguard.holds.tokens import LinkSigner, hash_token, looks_like_token, new_hold_id, new_token
from leakguard.types import Action


def test_tokens_are_random_lowercase_and_hashed() -> None:
    toks = {new_token() for _ in range(200)}
    assert len(toks) == 200 and all(looks_like_token(t) for t in toks)
    t = next(iter(toks))
    assert (
        hash_token(t) == hash_token(t.upper())
        and len(hash_token(t)) == 64
        and t not in hash_token(t)
    )
    assert new_hold_id().startswith("H-") and len(new_hold_id()) == 12


def test_signed_links_refuse_forgery_and_age(monkeypatch: pytest.MonkeyPatch) -> None:
    s = LinkSigner("k1", max_age_seconds=60)
    tok = new_token()
    signed = s.sign(tok)
    assert s.unsign(signed) == tok
    assert LinkSigner("k2", max_age_seconds=60).unsign(signed) is None  # other secret
    assert s.unsign(signed[:-2] + ("xy" if not signed.endswith("xy") else "zz")) is None
    assert s.unsign("A" * 600) is None
    # not a token inside a valid signature: refused too
    assert s.unsign(s._s.dumps("../../etc")) is None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    assert s.unsign(signed) is None


def test_codec_round_trip_and_damaged_records() -> None:
    v = verdict(findings=[THIRD_PARTY, LOOKALIKE], offer_bcc=True, approval="supervisor")
    summary = codec.HoldSummary(
        subject="件名", recipients=(codec.RecipientInfo("a@x.jp", "A <a@x.jp>", "to", False),)
    )
    v2, s2 = codec.decode(codec.encode(v, summary))
    assert v2 == v and s2.subject == "件名" and s2.recipients == summary.recipients
    for junk in (
        "",
        "null",
        "[]",
        '{"verdict": 3}',
        '{"verdict": {"rules": [1, {"action": "nope"}]}}',
        "{",
    ):
        v3, s3 = codec.decode(junk)
        assert v3.action in (Action.HOLD,) and s3.subject == ""


def test_defang() -> None:
    assert defang("see http://a.example/x and HTTPS://b") == "see hxxp://a.example/x and HxxPS://b"
    assert defang("www.example.com") == "www[.]example.com"
    assert defang("javascript:alert(1)") == "javascript[:]alert(1)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mailto:boss@evil.example", "mailto[:]boss@evil.example"),
        ("MailTo:x@y", "MailTo[:]x@y"),
        ("mailto&#58;x@y", "mailto[:]x@y"),
        ("連絡は mailto:x@y まで", "連絡は mailto[:]x@y まで"),
        ("ｈｔｔｐ：／／evil.example/", "ｈxxｐ：／／evil.example/"),
        ("ＨＴＴＰＳ：／／evil.example", "ＨxxＰＳ：／／evil.example"),
        ("http：//mixed.example", "hxxp：//mixed.example"),
        ("http﹕//small-colon.example", "hxxp﹕//small-colon.example"),
        ("ｍａｉｌｔｏ：x@y", "ｍａｉｌｔｏ[:]x@y"),
        ("ｊａｖａｓｃｒｉｐｔ：alert(1)", "ｊａｖａｓｃｒｉｐｔ[:]alert(1)"),
        ("ｗｗｗ．evil．example", "ｗｗｗ[.]evil．example"),
        ("xhttp://glued.example", "xhxxp://glued.example"),
        # ordinary text is left alone
        ("TEL：03-1234-5678 / FAX:03-1234-5679", "TEL：03-1234-5678 / FAX:03-1234-5679"),
        ("お世話になっております。", "お世話になっております。"),
        ("hxxp://already.example", "hxxp://already.example"),
    ],
)
def test_defang_mailto_and_full_width(text: str, expected: str) -> None:
    out = defang(text)
    assert out == expected
    assert "http://" not in unicodedata.normalize("NFKC", out).lower()
    assert "mailto:" not in unicodedata.normalize("NFKC", out).lower()


def test_defang_is_fast_on_long_hostile_text() -> None:
    text = "ｈｔｔｐ：／／" * 20_000 + "日本語" * 20_000
    t0 = time.perf_counter()
    out = defang(text)
    assert time.perf_counter() - t0 < 2.0
    assert "ｔｔ" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("release", Decision.RELEASE),
        ("  Release.\n", Decision.RELEASE),
        ("ＲＥＬＥＡＳＥ", Decision.RELEASE),
        ("送信", Decision.RELEASE),
        ("送信。", Decision.RELEASE),
        ("bcc", Decision.RELEASE_BCC),
        ("ＢＣＣ", Decision.RELEASE_BCC),
        ("破棄", Decision.DISCARD),
        ("Discard\n> release", Decision.DISCARD),
        ("> release\n\n破棄", Decision.DISCARD),
        ("please release it", Decision.RELEASE),
        ("please release it, but not yet", None),
        ("", None),
        ("> release", None),
    ],
)
def test_parse_command(text: str, expected: Decision | None) -> None:
    assert parse_command(text) == expected


def test_reply_text_survives_hostile_input() -> None:
    for raw in (
        b"",
        b"\x00\xff" * 1000,
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" * 300,
        b"Content-Type: text/plain; charset=nonexistent\r\n\r\nrelease\r\n",
        b"Content-Type: text/html\r\n\r\n<p>discard</p><blockquote>release</blockquote>",
    ):
        reading, _ = read_reply(raw)
        assert reading.decision in (None, *Decision)
    reading, _ = read_reply(b"Content-Type: text/plain; charset=nonexistent\r\n\r\nrelease\r\n")
    assert reading.decision == Decision.RELEASE
    reading, _ = read_reply(
        b"Content-Type: text/html\r\n\r\n<p>discard</p><blockquote type=cite>release</blockquote>"
    )
    assert reading.decision == Decision.DISCARD
    # a bare <blockquote> is the writer's own indentation: read, so two commands ask back
    reading, _ = read_reply(
        b"Content-Type: text/html\r\n\r\n<p>discard</p><blockquote>release</blockquote>"
    )
    assert reading.decision is None and reading.asks_back
