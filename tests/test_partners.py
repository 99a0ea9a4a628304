"""Partner organisations with names and flags (organisation file ``partners:``)."""

from __future__ import annotations

import pytest

from leakguard.policy.loader import PolicyError, build_organization, parse_organization_text


def _org(text: str):  # type: ignore[no-untyped-def]
    spec = parse_organization_text(text, "org.yaml")
    return build_organization(spec, None, "org.yaml")[0]


def test_partner_names_and_distribution() -> None:
    org = _org(
        "internal_domains: [city.example.lg.jp]\n"
        "partner_domains: [sample-shoji.co.jp]\n"
        "partners:\n"
        "  - domain: mirai-kensetsu.co.jp\n"
        "    names: [株式会社みらい建設, みらい建設]\n"
        "  - domain: '*.school.example.jp'\n"
        "    distribution: true\n"
    )
    assert org.partner_domains == (
        "sample-shoji.co.jp",
        "mirai-kensetsu.co.jp",
        "*.school.example.jp",
    )
    p = org.partner_of("hr.mirai-kensetsu.co.jp")
    assert p is not None and p.names == ("株式会社みらい建設", "みらい建設")
    assert not p.distribution
    q = org.partner_of("minami.school.example.jp")
    assert q is not None and q.distribution
    assert org.partner_of("sample-shoji.co.jp") is None  # a plain partner domain has no entry
    assert org.is_partner_domain("mirai-kensetsu.co.jp")


def test_partner_domain_is_validated() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_organization_text("partners:\n  - domain: 'bad domain'\n", "org.yaml")
    assert "org.yaml:2" in str(exc.value)
