"""The policy file format (DESIGN §3), validated by pydantic. Unknown keys are errors.

```yaml
version: 1
organization: organization.yaml          # or inline (see OrganizationSpec)
rules:
  - id: bulk-external
    description: {ja: 社外の宛先が多数見えています, en: Many external recipients can see each other}
    when: {visible_external_recipients: {gte: 10}}
    action: bcc
default_action: pass
```
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    field_validator,
    model_validator,
)

from leakguard.durations import parse_duration

# The facts of DESIGN §2 plus a few plain counts. Conditions may only name these.
FACT_DESCRIPTIONS: dict[str, str] = {
    "visible_external_recipients": "external addresses visible in To/Cc (de-duplicated)",
    "visible_external_organizations": "distinct external organisations visible in To/Cc",
    "exposed_external_organizations": (
        "visible_external_organizations, but 0 when all visible external recipients already "
        "took part together in a quoted message (reply-all in an existing thread)"
    ),
    "visible_external_groups": (
        "visible_external_recipients, with all addresses at one distribution partner "
        "(partners: distribution: true) counted as one group"
    ),
    "bcc_rewrite_exposed": (
        "visible external recipients whose address the mail itself still shows (text, quoted "
        "or forwarded headers, attachments, invitation): moving them to Bcc would not hide them"
    ),
    "forwards_to_own_mailbox": (
        "1 when a recipient is the sender's own outside mailbox and the mail carries other "
        "people's data (quoted third-party addresses, attachments)"
    ),
    "quoted_third_party_addresses": (
        "third-party addresses in quoted/forwarded material that are news to an external recipient"
    ),
    "name_similar_recipients": "external recipients whose name resembles a colleague or contact",
    "lookalike_domains": "recipient domains that resemble an internal or partner domain",
    "first_time_external_recipients": "external recipients the sender never wrote to before",
    "own_external_addresses": (
        "recipients that look like the sender's own outside mailbox (same name); they are not "
        "counted as external by the other facts"
    ),
    "external_recipients": "external envelope recipients (To, Cc and Bcc)",
    "external_organizations": "distinct external organisations among all envelope recipients",
    "recipients": "envelope recipients",
    "attachments": "attachments in the mail",
    "uninspected_parts": (
        "parts the checks could not read (over the size, count or nesting limits)"
    ),
    "message_size": "size of the mail in bytes",
    "personal_data_items": (
        "personal data items (My Number, accounts, card numbers, filled-in form fields, ...) in "
        "the new text and the attachments; masked items do not count"
    ),
    "personal_data_kinds": "distinct kinds among personal_data_items",
    "unmasked_forms": "filled-in personal data forms (氏名/住所/生年月日 ...) that are not masked",
    "addressee_mismatches": (
        "organisations or people the mail is written for (greeting, address block, application "
        "destination) that are not among its recipients"
    ),
    "encrypted_attachments": "password-protected attachments (ZIP, PDF, Office)",
    "unreadable_attachments": "attachments without a text layer (scans, images)",
    "external_attachments": "attachments in a mail with at least one external recipient",
}
FACTS: tuple[str, ...] = tuple(FACT_DESCRIPTIONS)

ActionName = Literal["pass", "bcc", "delay", "hold", "reject"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def domain_pattern_problem(value: str) -> str | None:
    """Why ``value`` is not a domain pattern (``example.jp`` or ``*.example.jp``), or None.

    Labels of letters, digits and hyphens (internationalised names are checked in their
    IDNA form), at least two labels, a top-level label that is not a number.
    """
    expected = "expected a domain such as example.jp or *.example.jp"
    if not isinstance(value, str):
        return expected
    body = value[2:] if value.startswith("*.") else value
    body = body.rstrip(".").lower()
    if not body or len(body) > 253:
        return f"not a domain: {value!r} ({expected})"
    try:
        ascii_body = body.encode("idna").decode("ascii")
    except UnicodeError:
        return f"not a domain: {value!r} ({expected})"
    labels = ascii_body.split(".")
    if len(labels) < 2 or not all(_LABEL.match(x) for x in labels) or labels[-1].isdigit():
        return f"not a domain: {value!r} ({expected})"
    return None


def _check_domains(values: list[str]) -> list[str]:
    for d in values:
        problem = domain_pattern_problem(d)
        if problem:
            raise ValueError(problem)
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Comparison(_Strict):
    """Compare a fact with numbers. Several operators in one mapping must all hold."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None
    eq: int | None = None
    ne: int | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> Comparison:
        if all(getattr(self, k) is None for k in ("gt", "gte", "lt", "lte", "eq", "ne")):
            raise ValueError("expected at least one of gt, gte, lt, lte, eq, ne")
        return self

    def test(self, value: int) -> bool:
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
            and (self.eq is None or value == self.eq)
            and (self.ne is None or value != self.ne)
        )


# Kinds of personal data (``leakguard.detectors.personal.KINDS``): the stable ids rules
# scope by. Per-kind counts are the facts ``personal_data.<kind>``.
PersonalDataKind = Literal[
    "my_number",
    "corporate_number",
    "employment_insurance_number",
    "pension_number",
    "bank_account",
    "credit_card",
    "phone",
    "address",
    "birth_date",
    "passport",
    "driving_licence",
    "form_field",
]
PERSONAL_DATA_KINDS: tuple[str, ...] = typing.get_args(PersonalDataKind)
# Public identifiers: counted per kind, never in personal_data_items (nor in the default
# kinds of a personal_data condition).
PUBLIC_PERSONAL_DATA_KINDS: tuple[str, ...] = ("corporate_number",)
PERSONAL_DATA_FACT_PREFIX = "personal_data."


class PersonalDataTest(Comparison):
    """Personal data scoped by kind: ``{kinds: [my_number, bank_account], gte: 1}``.

    ``count: items`` (the default) compares the number of items of those kinds;
    ``count: kinds`` the number of those kinds that were found. Without ``kinds`` every
    kind but the public corporate number is meant.
    """

    kinds: list[PersonalDataKind] = Field(
        default_factory=list, description="kinds to count; empty means every personal kind"
    )
    count: Literal["items", "kinds"] = Field(
        "items", description="items: items of those kinds; kinds: how many of them were found"
    )

    def selected(self) -> tuple[str, ...]:
        if self.kinds:
            return tuple(dict.fromkeys(self.kinds))
        return tuple(k for k in PERSONAL_DATA_KINDS if k not in PUBLIC_PERSONAL_DATA_KINDS)

    def facts_used(self) -> set[str]:
        return {PERSONAL_DATA_FACT_PREFIX + k for k in self.selected()}

    def value(self, facts: dict[str, int]) -> int:
        counts = [facts.get(PERSONAL_DATA_FACT_PREFIX + k, 0) for k in self.selected()]
        if self.count == "kinds":
            return sum(1 for c in counts if c > 0)
        return sum(counts)


FactTest = Annotated[
    int | Comparison,
    Field(description="a number (means gte) or a comparison such as {gte: 10}"),
]


class FactCondition(_Strict):
    """Facts compared with numbers; every fact named must match."""

    visible_external_recipients: FactTest | None = None
    visible_external_organizations: FactTest | None = None
    exposed_external_organizations: FactTest | None = None
    visible_external_groups: FactTest | None = None
    bcc_rewrite_exposed: FactTest | None = None
    forwards_to_own_mailbox: FactTest | None = None
    quoted_third_party_addresses: FactTest | None = None
    name_similar_recipients: FactTest | None = None
    lookalike_domains: FactTest | None = None
    first_time_external_recipients: FactTest | None = None
    own_external_addresses: FactTest | None = None
    external_recipients: FactTest | None = None
    external_organizations: FactTest | None = None
    recipients: FactTest | None = None
    attachments: FactTest | None = None
    uninspected_parts: FactTest | None = None
    message_size: FactTest | None = None
    personal_data_items: FactTest | None = None
    personal_data_kinds: FactTest | None = None
    unmasked_forms: FactTest | None = None
    addressee_mismatches: FactTest | None = None
    encrypted_attachments: FactTest | None = None
    unreadable_attachments: FactTest | None = None
    external_attachments: FactTest | None = None
    personal_data: PersonalDataTest | None = Field(
        None,
        description=(
            "personal data scoped by kind, e.g. {kinds: [my_number, bank_account], gte: 1}"
        ),
    )

    @model_validator(mode="after")
    def _not_empty(self) -> FactCondition:
        if not self.tests() and self.personal_data is None:
            raise ValueError(f"expected a fact ({', '.join(FACTS)}) or all/any/not")
        return self

    def tests(self) -> dict[str, Comparison]:
        out: dict[str, Comparison] = {}
        for name in FACTS:
            v = getattr(self, name)
            if v is None:
                continue
            out[name] = Comparison(gte=v) if isinstance(v, int) else v
        return out


class AllCondition(_Strict):
    all: list[Condition] = Field(min_length=1)


class AnyCondition(_Strict):
    any: list[Condition] = Field(min_length=1)


class NotCondition(_Strict):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _condition_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("all", "any", "not"):
            if key in data:
                return key
        return "facts"
    if isinstance(data, AllCondition):
        return "all"
    if isinstance(data, AnyCondition):
        return "any"
    if isinstance(data, NotCondition):
        return "not"
    if isinstance(data, FactCondition):
        return "facts"
    return None


class Condition(
    RootModel[
        Annotated[
            Annotated[AllCondition, Tag("all")]
            | Annotated[AnyCondition, Tag("any")]
            | Annotated[NotCondition, Tag("not")]
            | Annotated[FactCondition, Tag("facts")],
            Discriminator(
                _condition_kind,
                custom_error_type="condition",
                custom_error_message=(
                    "expected a mapping such as {visible_external_recipients: {gte: 10}}"
                ),
            ),
        ]
    ]
):
    """``{fact: {gte: N}}``, ``{all: [...]}``, ``{any: [...]}`` or ``{not: {...}}``."""

    def facts_used(self) -> set[str]:
        node = self.root
        if isinstance(node, FactCondition):
            used = set(node.tests())
            if node.personal_data is not None:
                used |= node.personal_data.facts_used()
            return used
        if isinstance(node, AllCondition | AnyCondition):
            items = node.all if isinstance(node, AllCondition) else node.any
            out: set[str] = set()
            for c in items:
                out |= c.facts_used()
            return out
        return node.not_.facts_used()

    def test(self, facts: dict[str, int]) -> bool:
        node = self.root
        if isinstance(node, FactCondition):
            pd = node.personal_data
            return all(cmp.test(facts.get(name, 0)) for name, cmp in node.tests().items()) and (
                pd is None or pd.test(pd.value(facts))
            )
        if isinstance(node, AllCondition):
            return all(c.test(facts) for c in node.all)
        if isinstance(node, AnyCondition):
            return any(c.test(facts) for c in node.any)
        return not node.not_.test(facts)


class Reason(_Strict):
    """The reason shown to people, in both languages."""

    ja: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Scope(_Strict):
    """Who a rule is about. Empty lists mean "anyone".

    ``senders``/``sender_domains``/``sender_groups`` match the sender (envelope sender or
    From). ``recipient_domains`` match when at least one recipient is in those domains
    (``*.example.jp`` matches subdomains).
    """

    senders: list[str] = Field(default_factory=list)
    sender_domains: list[str] = Field(default_factory=list)
    sender_groups: list[str] = Field(default_factory=list)
    recipient_domains: list[str] = Field(default_factory=list)

    _domains = field_validator("sender_domains", "recipient_domains")(_check_domains)

    def is_empty(self) -> bool:
        return not (
            self.senders or self.sender_domains or self.sender_groups or self.recipient_domains
        )


class Exceptions(_Strict):
    """When a rule does not apply. ``recipient_domains`` excepts the mail when every
    external recipient is in those domains."""

    senders: list[str] = Field(default_factory=list)
    sender_domains: list[str] = Field(default_factory=list)
    sender_groups: list[str] = Field(default_factory=list)
    recipient_domains: list[str] = Field(default_factory=list)

    _domains = field_validator("sender_domains", "recipient_domains")(_check_domains)


class Rule(_Strict):
    id: str = Field(description="unique rule id, shown in logs and reports")
    description: Reason = Field(description="why the mail is stopped, in Japanese and English")
    when: Condition
    action: ActionName
    mode: Literal["enforce", "audit"] = Field(
        "enforce", description="audit: log what the rule would do, do nothing"
    )
    approval: str | None = Field(
        None,
        description="hold only: who may release: supervisor, an address, or group:<name>",
    )
    delay: str | None = Field(None, description="delay only: how long, e.g. 5m")
    offer_bcc: bool = Field(False, description="hold only: offer 'release as Bcc'")
    scope: Scope = Field(default_factory=Scope)
    except_: Exceptions = Field(default_factory=Exceptions, alias="except")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _id_syntax(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("expected letters, digits, '-', '_' or '.' (at most 64)")
        return v

    @field_validator("approval")
    @classmethod
    def _approval_syntax(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v == "supervisor" or v.startswith("group:") or ("@" in v and " " not in v):
            return v
        raise ValueError("expected supervisor, an email address, or group:<name>")

    @field_validator("delay")
    @classmethod
    def _delay_syntax(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @model_validator(mode="after")
    def _action_options(self) -> Rule:
        if self.approval is not None and self.action != "hold":
            raise ValueError("approval is only valid with action: hold")
        if self.delay is not None and self.action != "delay":
            raise ValueError("delay is only valid with action: delay")
        if self.offer_bcc and self.action != "hold":
            raise ValueError("offer_bcc is only valid with action: hold")
        return self

    @property
    def delay_seconds(self) -> int | None:
        return parse_duration(self.delay) if self.delay is not None else None


class PartnerSpec(_Strict):
    """A partner organisation: its domain and the names it goes by."""

    domain: str = Field(description="the partner's domain; *.example.jp for its subdomains")
    names: list[str] = Field(
        default_factory=list,
        description="names the organisation goes by (株式会社みらい建設, みらい建設)",
    )
    distribution: bool = Field(
        False,
        description=(
            "one organisation's internal distribution (e.g. a school network): many visible "
            "recipients at this domain are not moved to Bcc"
        ),
    )

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        problem = domain_pattern_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class OrganizationSpec(_Strict):
    """The organisation: inline in the policy, or in its own file."""

    internal_domains: list[str] = Field(
        default_factory=list, description="internal domains; *.example.jp for subdomains"
    )
    directory: str | None = Field(
        None, description="CSV of people: email,name,kana,department,supervisor[,language]"
    )
    partner_domains: list[str] = Field(default_factory=list)
    partners: list[PartnerSpec] = Field(
        default_factory=list,
        description="partner organisations with their names (addressee checks) and flags",
    )
    mailing_lists: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="named groups of addresses (scopes, approvals)"
    )
    freemail_domains: list[str] = Field(
        default_factory=list,
        description=(
            "more free-mail / mobile-carrier / consumer-ISP domains (each address there is a "
            "person of its own); added to the shipped list"
        ),
    )
    freemail_defaults: bool = Field(
        True,
        description="false: use only freemail_domains, not the shipped free-mail list",
    )

    @field_validator("internal_domains", "partner_domains", "freemail_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        return _check_domains(v)


class PolicyTestCase(_Strict):
    """A sample mail and the action the policy must take (``leakguard policy test``)."""

    mail: str = Field(description="path of an .eml file, relative to the policy file")
    expect: ActionName
    sender: str | None = None
    rcpt: list[str] | None = None
    rules: list[str] | None = Field(None, description="rule ids that must match (all of them)")


class PolicySpec(_Strict):
    version: Literal[1] = 1
    organization: str | OrganizationSpec = Field(
        default_factory=lambda: OrganizationSpec(),
        description="inline organisation or the path of an organisation file",
    )
    rules: list[Rule] = Field(default_factory=list)
    default_action: Literal["pass", "bcc", "hold", "reject"] = "pass"
    tests: list[PolicyTestCase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicySpec:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id!r} is used twice")
            seen.add(r.id)
        return self


AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()
