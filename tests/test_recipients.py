"""Recipients detector: visible external addresses and organisations, first-time recipients."""

from __future__ import annotations

from leakguard.detectors.recipients import detect
from leakguard.engine import with_default_envelope
from leakguard.message import parse_message
from leakguard.organization import Context, Organization, SenderHistory

ORG = Organization(
    internal_domains=["city.example.lg.jp", "*.city.example.lg.jp"],
    mailing_lists=["all-staff@city.example.lg.jp", "Partners-List@ext-list.example"],
)


def facts_of(headers: str, rcpts: list[str] | None = None, history: SenderHistory | None = None):  # type: ignore[no-untyped-def]
    raw = (
        "From: Sato <kazuya.sato@city.example.lg.jp>\r\n" + headers + "Subject: t\r\n\r\nbody\r\n"
    ).encode()
    msg = with_default_envelope(parse_message(raw, envelope_rcpts=rcpts))
    return detect(msg, Context(org=ORG, history=history or SenderHistory()))


def test_organisations_are_registrable_domains_public_suffix_aware() -> None:
    r = facts_of(
        "To: a@tokyo.vendor.example.co.jp, b@osaka.vendor.example.co.jp, c@vendor.example.co.jp\r\n"
        "Cc: d@other.co.jp\r\n"
    )
    assert r.facts["visible_external_recipients"] == 4
    # vendor.example.co.jp's three addresses are one organisation (example.co.jp), plus other.co.jp
    assert r.facts["visible_external_organizations"] == 2
    orgs = next(f for f in r.findings if f.fact == "visible_external_organizations")
    assert orgs.evidence["organizations"] == "example.co.jp, other.co.jp"


def test_internal_subdomains_lists_and_duplicates_do_not_count() -> None:
    r = facts_of(
        "To: x@kyoiku.city.example.lg.jp, all-staff@city.example.lg.jp, "
        "partners-list@EXT-LIST.example\r\n"
        'Cc: A@Ext.example, a@ext.EXAMPLE, "a" <a@ext.example>\r\n'
    )
    assert r.facts["visible_external_recipients"] == 1
    assert r.facts["visible_external_organizations"] == 1


def test_undisclosed_recipients_and_bcc_only() -> None:
    rcpts = [f"info@c{i}.example" for i in range(12)]
    r = facts_of("To: undisclosed-recipients:;\r\n", rcpts=rcpts)
    assert r.facts["visible_external_recipients"] == 0
    assert r.facts["external_recipients"] == 12
    assert r.facts["external_organizations"] == 12


def test_idn_domains_unicode_and_punycode_are_one() -> None:
    r = facts_of("To: a@例え.jp, b@xn--r8jz45g.jp\r\n")
    assert r.facts["visible_external_organizations"] == 1


def test_first_time_only_with_history() -> None:
    hdr = "To: old@partner.example, new@partner.example\r\n"
    assert facts_of(hdr).facts["first_time_external_recipients"] == 0  # no history: no claim
    hist = SenderHistory(recipients=frozenset({"old@partner.example"}), known=True)
    r = facts_of(hdr, history=hist)
    assert r.facts["first_time_external_recipients"] == 1
    f = next(f for f in r.findings if f.fact == "first_time_external_recipients")
    assert f.addresses == ("new@partner.example",)


def test_reply_all_among_people_who_already_met_exposes_nobody() -> None:
    quoted = (
        "Thanks.\r\n\r\n-----Original Message-----\r\n"
        "From: Mary <m@travel.example>\r\n"
        "Sent: Monday, November 23, 2026 6:02 PM\r\n"
        "To: Sato <kazuya.sato@city.example.lg.jp>; Ken <k@hotel.example>\r\n"
        "Subject: minutes\r\n\r\nfine\r\n"
    )

    def run(to: str):  # type: ignore[no-untyped-def]
        raw = (
            "From: Sato <kazuya.sato@city.example.lg.jp>\r\nTo: " + to + "\r\nSubject: RE: minutes"
            "\r\n\r\n" + quoted
        ).encode()
        msg = with_default_envelope(parse_message(raw))
        return detect(msg, Context(org=ORG)).facts

    met = run("m@travel.example, k@hotel.example")
    assert met["visible_external_organizations"] == 2
    assert met["exposed_external_organizations"] == 0
    # a newcomer from a third organisation sees both: everyone is exposed
    new = run("m@travel.example, k@hotel.example, n@agency.example")
    assert new["exposed_external_organizations"] == 3


def test_senders_own_outside_mailbox_is_the_sender_not_an_outsider() -> None:
    from leakguard.detectors.run import run_detectors
    from leakguard.organization import Person

    org = Organization(
        internal_domains=["city.example.lg.jp"],
        directory=[Person("kazuya.sato@city.example.lg.jp", "佐藤 一也", "さとう かずや")],
    )
    raw = (
        b"From: =?UTF-8?B?5L2Q6JekIOS4gOS5nw==?= <kazuya.sato@city.example.lg.jp>\r\n"
        b"To: k.sato@home-isp.example, info@vendor.example\r\nSubject: memo\r\n\r\nbody\r\n"
    )
    msg = with_default_envelope(parse_message(raw))
    facts, findings = run_detectors(msg, Context(org=org))
    assert facts["own_external_addresses"] == 1
    assert facts["visible_external_recipients"] == 1  # only the vendor
    assert facts["visible_external_organizations"] == 1
    assert facts["name_similar_recipients"] == 0  # the sender is not "a colleague"
    own = next(f for f in findings if f.fact == "own_external_addresses")
    assert own.addresses == ("k.sato@home-isp.example",)


def test_mail_that_cannot_be_fully_checked_is_held_for_outsiders_only() -> None:
    from pathlib import Path

    from leakguard.engine import Engine
    from leakguard.policy import load_policy

    engine = Engine(load_policy(Path(__file__).parents[1] / "policies" / "default.yaml"))
    big = b"x" * (5 * 1024 * 1024)
    raw = (
        b"From: kazuya.sato@city.example.lg.jp\r\nTo: someone@outside.example\r\n"
        b"Subject: big\r\nContent-Type: text/plain\r\n\r\n" + big + b"\r\n"
    )
    d = engine.decide(raw)
    assert d.message.uninspected_parts == 1
    assert d.verdict.facts["uninspected_parts"] == 1
    assert d.verdict.action.value == "hold"
    assert d.verdict.rule_ids == ("uninspected-content",)
    inside = raw.replace(b"someone@outside.example", b"tanaka@city.example.lg.jp")
    assert engine.decide(inside).verdict.action.value == "pass"
    small = raw.replace(big, b"hello")
    assert engine.decide(small).verdict.facts["uninspected_parts"] == 0


def test_own_mailbox_that_also_looks_like_another_colleague_is_the_sender() -> None:
    from leakguard.detectors.run import run_detectors
    from leakguard.organization import Person

    org = Organization(
        internal_domains=["city.example.lg.jp"],
        directory=[
            Person("kazuya.sato@city.example.lg.jp", "佐藤 一也", "さとう かずや"),
            Person("kenji.sato@city.example.lg.jp", "佐藤 健二", "さとう けんじ"),
        ],
    )
    raw = (
        b"From: Kazuya Sato <kazuya.sato@city.example.lg.jp>\r\n"
        b"To: k.sato@home-isp.example\r\nSubject: memo\r\n\r\nbody\r\n"
    )
    msg = with_default_envelope(parse_message(raw))
    facts, _ = run_detectors(msg, Context(org=org))
    assert facts["own_external_addresses"] == 1
    assert facts["name_similar_recipients"] == 0
