"""The threads detector: which quoted addresses are news to which external recipient."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leakguard.detectors.run import run_detectors
from leakguard.detectors.threads import FACT, detect, same_person
from leakguard.message.addresses import make_address
from leakguard.message.parse import parse_message
from leakguard.organization import Context, Organization
from leakguard.types import Finding

FIXTURES = Path(__file__).parent / "fixtures" / "threads"
ORG = Organization(
    internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"],
    mailing_lists=["partners-ml@lists.example.org"],
)
CTX = Context(org=ORG)


def mail(
    body: str,
    *,
    frm: str = "Alice <alice@city.example.lg.jp>",
    to: str = "",
    cc: str = "",
    html: str = "",
    rcpts: list[str] | None = None,
) -> bytes:
    head = f"From: {frm}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "")
    head += "Subject: test\r\nMIME-Version: 1.0\r\n"
    if html:
        b = "BOUNDARY"
        return (
            head + f'Content-Type: multipart/alternative; boundary="{b}"\r\n\r\n'
            f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{b}--\r\n"
        ).encode()
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def run(
    raw: bytes,
    rcpts: list[str] | None = None,
    sender: str | None = None,
    ctx: Context = CTX,
) -> list[Finding]:
    msg = parse_message(raw, envelope_from=sender, envelope_rcpts=rcpts)
    result = detect(msg, ctx)
    third = [f for f in result.findings if f.fact == FACT]
    assert result.facts[FACT] == len(third)
    for f in third:
        assert f.detector == "threads" and len(f.addresses) == 1
        assert {"location", "kind", "news_to"} <= set(f.evidence)
    return third


def addrs(findings: list[Finding]) -> set[str]:
    return {f.addresses[0].lower() for f in findings}


FORWARD_OF_CLIENT_THREAD = (
    "FYI, see below.\r\n\r\nAlice\r\nalice@city.example.lg.jp\r\n\r\n"
    "-----Original Message-----\r\n"
    "From: Carol <carol@client-b.example.com>\r\n"
    "Sent: Monday, January 01, 2024 10:00 AM\r\n"
    "To: Alice <alice@city.example.lg.jp>\r\n"
    "Cc: Dan <dan@client-b.example.com>\r\n"
    "Subject: confidential terms\r\n\r\n"
    "Our terms. Questions to legal@client-b.example.com\r\n"
)

# --------------------------------------------------------------------------- hold-worthy


def test_forward_of_another_companys_thread_to_an_external_recipient() -> None:
    found = run(mail(FORWARD_OF_CLIENT_THREAD, to="bob@partner-a.example.co.jp"))
    assert addrs(found) == {
        "carol@client-b.example.com",
        "dan@client-b.example.com",
        "legal@client-b.example.com",
    }
    carol = next(f for f in found if f.addresses[0] == "carol@client-b.example.com")
    assert carol.evidence["kind"] == "header-block"
    assert carol.evidence["location"] == "forwarded header block in text part 1, line 6"
    assert carol.evidence["news_to"] == "bob@partner-a.example.co.jp"
    assert carol.evidence["quoted_subject"] == "confidential terms"
    assert "テキスト本文 1 の 6 行目" in carol.evidence["location_ja"]
    legal = next(f for f in found if f.addresses[0] == "legal@client-b.example.com")
    assert legal.evidence["quoted_from"] == "Carol <carol@client-b.example.com>"


def test_nested_forward_inner_third_party_not_seen_by_outer_participant() -> None:
    # Bob took part in the outer forward only; the inner message (Carol -> Eve, Cc Dan)
    # is nested in a block Bob did NOT take part in: Carol and Dan are news to Bob.
    body = (
        "Bob, have a look.\r\n\r\n"
        "-----Original Message-----\r\n"
        "From: Frank <frank@city.example.lg.jp>\r\nSent: Tuesday\r\n"
        "To: Alice <alice@city.example.lg.jp>\r\nSubject: FW: terms\r\n\r\nfrom Carol:\r\n\r\n"
        "-----Original Message-----\r\n"
        "From: Carol <carol@third.example.net>\r\nSent: Monday\r\n"
        "To: Frank <frank@city.example.lg.jp>\r\nCc: Dan <dan@fourth.example.org>\r\n"
        "Subject: terms\r\n\r\nOur terms.\r\n"
    )
    found = run(mail(body, to="bob@partner.example.com"))
    assert addrs(found) == {"carol@third.example.net", "dan@fourth.example.org"}


def test_nested_forward_recipient_who_took_part_outside_has_seen_everything_inside() -> None:
    # Bob took part in the outer quoted message, which carried Carol's message inside it.
    raw = (FIXTURES / "nested_forward_seen_by_recipient.eml").read_bytes()
    assert run(raw) == []
    # ...but a second external recipient who took part in neither learns Carol and Dan
    found = run(raw, rcpts=["bob@partner.example.com", "zed@newcomer.example.com"])
    assert addrs(found) == {"carol@third.example.net", "dan@fourth.example.org"}
    assert all(f.evidence["news_to"] == "zed@newcomer.example.com" for f in found)


def test_news_only_to_the_recipients_who_were_not_in_the_quoted_message() -> None:
    body = (
        "-----Original Message-----\r\nFrom: Carol <carol@client-b.example.com>\r\n"
        "Sent: Monday\r\nTo: bob@partner-a.example.co.jp, alice@city.example.lg.jp\r\n"
        "Cc: dan@client-b.example.com\r\nSubject: s\r\n\r\nbody\r\n"
    )
    found = run(mail(body, to="bob@partner-a.example.co.jp, zoe@partner-z.example.com"))
    assert addrs(found) == {"carol@client-b.example.com", "dan@client-b.example.com"}
    assert {f.evidence["news_to"] for f in found} == {"zoe@partner-z.example.com"}


def test_japanese_outlook_forward_shift_jis_fixture() -> None:
    found = run((FIXTURES / "outlook_ja_forward_sjis.eml").read_bytes())
    assert addrs(found) == {"yamada@client-b.example.co.jp", "suzuki@rival-c.example.com"}


def test_thunderbird_japanese_forward_iso2022jp_fixture() -> None:
    found = run((FIXTURES / "thunderbird_ja_forward_iso2022jp.eml").read_bytes())
    assert addrs(found) == {"takahashi@other.example.jp"}


def test_html_only_forward_fixture() -> None:
    found = run((FIXTURES / "gmail_html_only_forward.eml").read_bytes())
    assert addrs(found) == {"carol@client.example.org"}
    assert found[0].evidence["location"].startswith("forwarded header block in HTML part 1")


def test_attached_rfc822_fixture() -> None:
    found = run((FIXTURES / "attached_rfc822_forward.eml").read_bytes())
    assert addrs(found) == {
        "carol@client.example.org",
        "dave@rival.example.com",
        "erin@client.example.org",
    }
    assert {f.evidence["kind"] for f in found} == {"attached-message"}


def test_text_and_html_alternatives_are_deduplicated_with_best_location() -> None:
    html = (
        "<p>FYI</p><div id='divRplyFwdMsg'><b>From:</b> Carol &lt;carol@client-b.example.com"
        "&gt;<br><b>Sent:</b> Monday<br><b>To:</b> alice@city.example.lg.jp<br>"
        "<b>Cc:</b> dan@client-b.example.com<br><b>Subject:</b> s</div><p>Our terms. "
        "Questions to legal@client-b.example.com</p>"
    )
    found = run(mail(FORWARD_OF_CLIENT_THREAD, to="bob@partner-a.example.co.jp", html=html))
    assert len(found) == 3
    assert all("text part 1" in f.evidence["location"] for f in found)


def test_quoted_signature_of_an_author_the_recipient_never_wrote_with() -> None:
    body = (
        "On Mon, Jan 1, 2024 at 10:00 AM Carol <carol@client-b.example.com> wrote:\r\n"
        "> terms attached\r\n> --\r\n> Carol, Client B, carol@client-b.example.com\r\n"
    )
    found = run(mail(body, to="bob@partner-a.example.co.jp"))
    assert addrs(found) == {"carol@client-b.example.com"}
    assert found[0].evidence["kind"] == "attribution"


# --------------------------------------------------------------------------- must pass


def test_internal_only_mail() -> None:
    assert run(mail(FORWARD_OF_CLIENT_THREAD, to="frank@city.example.lg.jp")) == []
    assert run(mail(FORWARD_OF_CLIENT_THREAD, to="x@dept.city.example.lg.jp")) == []


def test_one_to_one_reply_quoting_the_recipient_and_their_signature() -> None:
    body = (
        "Thanks Bob!\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM Bob <bob@partner-a.example.co.jp> "
        "wrote:\r\n> Here is the file. My assistant is amy@partner-a.example.co.jp.\r\n"
        "> --\r\n> Bob, Partner A, bob@partner-a.example.co.jp, Tel 03-0000-0000\r\n"
    )
    assert run(mail(body, to="Bob <bob@partner-a.example.co.jp>")) == []


def test_japanese_reply_quoting_the_recipient() -> None:
    body = (
        "承知しました。\r\n\r\n2024年1月1日(月) 10:00 山田太郎 <yamada@client.example.jp>:\r\n"
        "> 資料をお送りします。担当は kimura@client.example.jp です。\r\n"
    )
    assert run(mail(body, to="山田太郎 <yamada@client.example.jp>")) == []


def test_senders_own_signature_in_new_text_is_not_quoted_material() -> None:
    body = (
        "Hello Bob,\r\n\r\nplease find the file.\r\n\r\n--\r\nAlice\r\n"
        "alice@city.example.lg.jp / private: alice.home@gmail.com\r\n"
        "Our partner contact: carol@client-b.example.com\r\n"
    )
    assert run(mail(body, to="bob@partner-a.example.co.jp")) == []


def test_at_signs_in_urls_and_code_inside_quotes() -> None:
    body = (
        "On Mon, Bob <bob@partner-a.example.co.jp> wrote:\r\n"
        "> clone git@github.com:org/repo.git or https://deploy@git.example.com/x.git\r\n"
        "> @dataclass\r\n> class X: ...\r\n> ssh root@localhost; ping admin@buildhost\r\n"
        "> References: <CAKx=y$1@mail.gmail.com> <20240101.GA1234.56789012@mx.example.com>\r\n"
    )
    assert run(mail(body, to="bob@partner-a.example.co.jp")) == []


def test_thread_whose_quoted_addresses_are_all_current_recipients() -> None:
    body = (
        "-----Original Message-----\r\nFrom: Carol <carol@client-b.example.com>\r\n"
        "Sent: Monday\r\nTo: bob@partner-a.example.co.jp\r\nCc: alice@city.example.lg.jp\r\n"
        "Subject: s\r\n\r\nbody\r\n"
    )
    raw = mail(body, to="bob@partner-a.example.co.jp", cc="carol@client-b.example.com")
    assert run(raw) == []


def test_external_thread_forwarded_to_internal_colleagues() -> None:
    raw = mail(FORWARD_OF_CLIENT_THREAD, to="frank@city.example.lg.jp, eve@city.example.lg.jp")
    assert run(raw) == []


def test_mailing_list_recipient_is_not_an_external_recipient() -> None:
    assert run(mail(FORWARD_OF_CLIENT_THREAD, to="partners-ml@lists.example.org")) == []


def test_notes_names_in_quoted_headers_are_not_addresses() -> None:
    body = (
        "---------------------- Forwarded by Phillip K Allen/HOU/ECT on 10/16/2000 01:42 PM "
        "---------------------------\r\n\r\nMike Grigsby\r\n10/12/2000 02:10 PM\r\n"
        "To: Phillip K Allen/HOU/ECT@ECT\r\ncc: Jane Doe/Enron@EnronXGate\r\nSubject: Re: x\r\n"
    )
    assert run(mail(body, to="bob@partner-a.example.co.jp")) == []


def test_envelope_only_bcc_recipient_counts_as_external() -> None:
    raw = mail(FORWARD_OF_CLIENT_THREAD, to="frank@city.example.lg.jp")
    found = run(raw, rcpts=["frank@city.example.lg.jp", "spy@elsewhere.example.com"])
    assert "carol@client-b.example.com" in addrs(found)
    assert all(f.evidence["news_to"] == "spy@elsewhere.example.com" for f in found)


def test_no_quoted_blocks_gives_zero() -> None:
    msg = parse_message(mail("hello", to="bob@partner-a.example.co.jp"))
    assert detect(msg, CTX).facts == {FACT: 0, "forwards_to_own_mailbox": 0}


# --------------------------------------------------------------------------- the sender's own


def test_senders_own_outside_mailbox_is_not_an_external_recipient() -> None:
    raw = mail(FORWARD_OF_CLIENT_THREAD, to="alice.home@mail.example.net")
    assert addrs(run(raw)) >= {"carol@client-b.example.com"}  # without the alias: news
    own = Context(org=ORG, sender_aliases=frozenset({"alice.home@mail.example.net"}))
    assert run(raw, ctx=own) == []
    # another outsider in the same mail still learns Carol, Dan and legal@
    raw2 = mail(FORWARD_OF_CLIENT_THREAD, to="alice.home@mail.example.net, bob@partner.example")
    found = run(raw2, ctx=own)
    assert addrs(found) == {
        "carol@client-b.example.com",
        "dan@client-b.example.com",
        "legal@client-b.example.com",
    }
    assert {f.evidence["news_to"] for f in found} == {"bob@partner.example"}


def test_senders_own_outside_mailbox_quoted_is_not_a_third_party() -> None:
    body = (
        "-----Original Message-----\r\nFrom: Alice Home <alice.home@mail.example.net>\r\n"
        "Sent: Monday\r\nTo: Alice <alice@city.example.lg.jp>\r\nSubject: notes\r\n\r\n"
        "my notes; Carol is carol@client-b.example.com\r\n"
    )
    raw = mail(body, to="alice.home@mail.example.net, bob@partner.example")
    own = Context(org=ORG, sender_aliases=frozenset({"alice.home@mail.example.net"}))
    found = run(raw, ctx=own)
    assert addrs(found) == {"carol@client-b.example.com"}
    assert found[0].evidence["news_to"] == "bob@partner.example"
    assert "alice.home" not in found[0].evidence["news_to"]


def test_sender_alias_resolved_by_run_detectors_silences_a_forward_to_oneself() -> None:
    # the From display name matches the local part of the outside recipient
    raw = mail(
        FORWARD_OF_CLIENT_THREAD,
        frm="Alice Tanaka <alice@city.example.lg.jp>",
        to="Alice Tanaka <alice.tanaka@mail.example.net>",
    )
    msg = parse_message(raw)
    assert detect(msg, CTX).facts[FACT] == 3  # without aliases resolved
    facts, findings = run_detectors(msg, CTX)
    assert facts[FACT] == 0
    # not news to the sender, but the mail still leaves with the client's addresses
    threads = [f for f in findings if f.detector == "threads"]
    assert [f.fact for f in threads] == ["forwards_to_own_mailbox"]
    assert facts["forwards_to_own_mailbox"] == 1
    assert threads[0].evidence["third_parties"] == "3"


# --------------------------------------------------------------------------- automated mailboxes


def test_automated_and_list_addresses_in_a_forward_are_not_third_parties() -> None:
    body = (
        "see below\r\n\r\n-----Original Message-----\r\n"
        "From: Example Shop <no-reply@shop.example.com>\r\nSent: Monday\r\n"
        "To: Alice <alice@city.example.lg.jp>\r\n"
        "Cc: owner-tech-exchange@lists.example.net, tech-exchange-request@lists.example.net\r\n"
        "Subject: your order\r\n\r\n"
        "Bounces go to MAILER-DAEMON@mx.shop.example.com; unsubscribe at "
        "news-unsubscribe@lists.example.net or newsletter@shop.example.com.\r\n"
        "Questions: info@shop.example.com, support@shop.example.com, "
        "Kenji <k.sato@shop.example.com>\r\n"
    )
    found = run(mail(body, to="bob@partner-a.example.co.jp"))
    # automated mailboxes never count; the quoted message is bulk (no-reply author,
    # unsubscribe notice), so its desk addresses are its published contact points, but the
    # person named in it still counts
    assert addrs(found) == {"k.sato@shop.example.com"}
    # the same addresses quoted from a person's mail: company contacts count there
    personal = body.replace("Example Shop <no-reply@", "Taro Yamada <t.yamada@").replace(
        "unsubscribe at news-unsubscribe@lists.example.net or", "write to"
    )
    assert addrs(run(mail(personal, to="bob@partner-a.example.co.jp"))) == {
        "t.yamada@shop.example.com",
        "info@shop.example.com",
        "support@shop.example.com",
        "k.sato@shop.example.com",
    }


def test_forward_of_a_newsletter_from_a_noreply_sender_passes() -> None:
    body = (
        "-----Original Message-----\r\n"
        "From: Example News [mailto:newsletter@news.example.com]\r\nSent: Monday\r\n"
        "To: alice@city.example.lg.jp\r\nSubject: offers\r\n\r\n"
        "Reply to noreply@news.example.com? Please don't.\r\n"
    )
    assert run(mail(body, to="bob@partner-a.example.co.jp")) == []


# --------------------------------------------------------------------------- same person


def _resend(quoted: str, to: str) -> bytes:
    body = (
        "Resending, the first one bounced.\r\n\r\n-----Original Message-----\r\n"
        "From: Alice <alice@city.example.lg.jp>\r\nSent: Monday\r\n"
        f"To: {quoted}\r\nSubject: minutes\r\n\r\nthe minutes\r\n"
    )
    return mail(body, to=to)


@pytest.mark.parametrize(
    ("quoted", "recipient"),
    [
        ("ojones@attbi-example.net", "ojones01@attbi-example.net"),  # digits added
        ("sreyerson@nui-example.com", "sryerson@nui-example.com"),  # one typo, long
        ("eduardo_alvarez@bah-example.com", "alvarez_eduardo@bah-example.com"),  # swapped
        ("k.sato@acme-corp.co.jp", "sato.k@acme-corp.co.jp"),
        ("john.smith@tokyo.acme-corp.co.jp", "johnsmith@acme-corp.co.jp"),  # same org
        ("margaret.smith@acme.example", "Margret.Smith@acme.example"),
        ("Kenji Sato <kenji@acme.example>", "Sato Kenji <ks@acme.example>"),  # display name
    ],
)
def test_recipient_quoted_under_another_address_is_not_a_third_party(
    quoted: str, recipient: str
) -> None:
    assert run(_resend(quoted, recipient)) == []


@pytest.mark.parametrize(
    ("quoted", "recipient"),
    [
        ("sato.k@acme-corp.co.jp", "sato.y@acme-corp.co.jp"),  # different initials
        ("jsmith@acme.example", "ksmith@acme.example"),
        ("jsmith@acme.example", "jsmyth@acme.example"),  # borderline: too short to trust
        ("john.a.smith@acme.example", "john.b.smith@acme.example"),  # middle initials
        ("yuki.sato@acme.example", "yuka.sato@acme.example"),
        ("maria.lopez@acme.example", "mario.lopez@acme.example"),
        ("jsmith1@freemail.example", "jsmith2@freemail.example"),  # different digits
        ("eduardo_alvarez@bah-example.com", "alvarez_eduardo@other-example.com"),  # domain
        ("Kenji <kenji@acme.example>", "Kenji <kenji.t@acme.example>"),  # one-word name
        ("al@acme.example", "la@acme.example"),  # too short to compare tokens
    ],
)
def test_different_people_at_the_recipients_company_stay_third_parties(
    quoted: str, recipient: str
) -> None:
    found = run(_resend(quoted, recipient))
    assert len(found) == 1
    assert found[0].addresses[0].lower() == make_address(quoted.split("<")[-1].strip(">")).key
    q = parse_message(_resend(quoted, recipient)).quoted_blocks[0].participants[-1]
    assert not same_person(q, parse_message(_resend(quoted, recipient)).to[0])


def test_participant_under_another_address_has_seen_the_quoted_thread() -> None:
    # Bob took part in the quoted message under his old address: Carol is not news to him,
    # but is to Zoe.
    body = (
        "-----Original Message-----\r\nFrom: Carol <carol@client-b.example.com>\r\n"
        "Sent: Monday\r\nTo: Bob <robert.brown@partner.example.com>\r\nSubject: s\r\n\r\nx\r\n"
    )
    assert run(mail(body, to="Bob <brown.robert@partner.example.com>")) == []
    found = run(mail(body, to="brown.robert@partner.example.com, zoe@partner-z.example"))
    assert addrs(found) == {"carol@client-b.example.com"}
    assert found[0].evidence["news_to"] == "zoe@partner-z.example"


def test_sender_quoted_under_another_address_is_not_a_third_party() -> None:
    body = (
        "-----Original Message-----\r\nFrom: Alice Tanaka <alice.tanaka@mail.example.net>\r\n"
        "Sent: Monday\r\nTo: Carol <carol@client-b.example.com>\r\nSubject: s\r\n\r\nx\r\n"
    )
    raw = mail(body, frm="Alice Tanaka <tanaka.alice@mail.example.net>", to="bob@partner.example")
    assert addrs(run(raw)) == {"carol@client-b.example.com"}
    other = mail(body, frm="Ann Tanaka <tanaka.ann@mail.example.net>", to="bob@partner.example")
    assert addrs(run(other)) == {"carol@client-b.example.com", "alice.tanaka@mail.example.net"}


def test_same_person_checks_are_bounded() -> None:
    # 300 recipients and, quoted, the same 300 people under other addresses: the work is
    # bounded, and past the bound addresses count as third parties (more findings, not fewer)
    rcpts = [f"person{i:03d}.alpha@acme.example" for i in range(300)]
    quoted = ", ".join(f"alpha.person{i:03d}@acme.example" for i in range(300))
    body = (
        "-----Original Message-----\r\nFrom: Carol <carol@client-b.example.com>\r\n"
        f"Sent: Monday\r\nTo: {quoted}\r\nSubject: s\r\n\r\nx\r\n"
    )
    raw = mail(body, to="x@partner.example")
    start = time.perf_counter()
    found = run(raw, rcpts=[*rcpts, "x@partner.example"])
    assert time.perf_counter() - start < 1.0
    assert "carol@client-b.example.com" in addrs(found)
    assert 50 < len(found) - 1 < 300  # the first ones were recognised, the rest were not
    assert "alpha.person000@acme.example" not in addrs(found)
    assert "alpha.person299@acme.example" in addrs(found)


# --------------------------------------------------------------------------- bulk mail

_NEWSLETTER_EN = (
    "FYI, thought you'd like this.\r\n\r\n-----Original Message-----\r\n"
    "From: customercare@shop.example.com [mailto:customercare@shop.example.com]\r\n"
    "Sent: Monday, May 07, 2001 9:00 AM\r\nTo: alice@city.example.lg.jp\r\n"
    "Subject: Spring offers\r\n\r\n"
    "Great deals this week.{extra}\r\n"
    "If you no longer wish to receive these e-mails, send a message to "
    "website@shop.example.com or click unsubscribe.\r\n"
)


def test_forwarded_newsletter_senders_and_footer_desks_are_not_third_parties() -> None:
    found = run(mail(_NEWSLETTER_EN.format(extra=""), to="bob@partner-a.example.co.jp"))
    assert found == []


def test_forwarded_japanese_mail_magazine_is_not_third_party_data() -> None:
    body = (
        "ご参考まで。\r\n\r\n-----Original Message-----\r\n"
        "差出人: ショップ通信 <info@shop.example.jp>\r\n送信日時: 2024年5月7日 9:00\r\n"
        "宛先: alice@city.example.lg.jp\r\n件名: 今週のおすすめ\r\n\r\n"
        "今週のおすすめ商品です。お問い合わせ: support@shop.example.jp\r\n"
        "このメールマガジンの配信停止はこちら: https://shop.example.jp/stop\r\n"
    )
    assert run(mail(body, to="bob@partner-a.example.co.jp")) == []


def test_forwarded_newsletter_quoting_a_person_still_counts_that_person() -> None:
    extra = " Contact our rep john.smith@shop.example.com or sales@shop.example.com."
    found = run(mail(_NEWSLETTER_EN.format(extra=extra), to="bob@partner-a.example.co.jp"))
    assert addrs(found) == {"john.smith@shop.example.com"}


def test_forward_from_a_person_counts_desk_addresses_as_before() -> None:
    body = (
        "-----Original Message-----\r\n"
        "From: Taro Yamada <t.yamada@shop.example.com>\r\nSent: Monday\r\n"
        "To: alice@city.example.lg.jp\r\nSubject: quote\r\n\r\n"
        "Orders go to customercare@shop.example.com, copies to website@shop.example.com.\r\n"
    )
    found = run(mail(body, to="bob@partner-a.example.co.jp"))
    assert addrs(found) == {
        "t.yamada@shop.example.com",
        "customercare@shop.example.com",
        "website@shop.example.com",
    }


def test_attached_bulk_message_by_list_headers() -> None:
    inner = (
        "From: Deals <deals@shop.example.com>\r\nReply-To: Help Desk <help@shop.example.com>\r\n"
        "To: alice@city.example.lg.jp\r\nSubject: deals\r\n"
        "List-Unsubscribe: <mailto:leave@shop.example.com>\r\n\r\n"
        "Write to team@shop.example.com or our rep mary.jones@shop.example.com.\r\n"
    )
    outer = (
        "From: Alice <alice@city.example.lg.jp>\r\nTo: bob@partner-a.example.co.jp\r\n"
        'Subject: fw\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "\r\n--B--\r\n"
    )
    assert addrs(run(outer.encode())) == {"mary.jones@shop.example.com"}
    # without the list header, the same attached mail is a person's correspondence
    plain_att = outer.replace("List-Unsubscribe: <mailto:leave@shop.example.com>\r\n", "")
    assert addrs(run(plain_att.encode())) == {
        "deals@shop.example.com",
        "help@shop.example.com",
        "team@shop.example.com",
        "mary.jones@shop.example.com",
    }
