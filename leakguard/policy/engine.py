"""Evaluate a policy: every rule is checked and recorded, then one action is chosen.

The most protective enforced action wins (reject > hold > delay > bcc > pass). Audit-mode
rules are reported in ``Verdict.audit_rules`` and never act. A hold that also matched a
bcc rule (or a hold rule with ``offer_bcc``) offers "release as Bcc".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leakguard.organization import Context, domain_matches, to_ascii_domain
from leakguard.policy.loader import Policy
from leakguard.policy.model import PERSONAL_DATA_FACT_PREFIX, Exceptions, Rule, Scope
from leakguard.types import Action, Finding, Localized, Message, RuleMatch, Verdict

# Facts derived from another fact's findings: a rule testing the key is explained by the
# findings of the values.
_EVIDENCE_OF: dict[str, tuple[str, ...]] = {
    "exposed_external_organizations": ("visible_external_organizations",),
    "visible_external_groups": ("visible_external_recipients",),
}


def _sender_matches(
    sender: str,
    senders: Sequence[str],
    domains: Sequence[str],
    groups: Sequence[str],
    ctx: Context,
) -> bool:
    s = sender.lower()
    domain = s.rpartition("@")[2]
    if any(s == x.lower() for x in senders):
        return True
    if any(_domain_pattern_match(domain, d) for d in domains):
        return True
    return any(ctx.org.in_group(s, g) for g in groups)


def _domain_pattern_match(domain: str, pattern: str) -> bool:
    p = pattern.lower()
    p = "*." + to_ascii_domain(p[2:]) if p.startswith("*.") else to_ascii_domain(p)
    return domain_matches(domain, p)


def _in_scope(rule: Rule, sender: str, rcpt_domains: Sequence[str], ctx: Context) -> bool:
    scope: Scope = rule.scope
    if scope.is_empty():
        return True
    if (scope.senders or scope.sender_domains or scope.sender_groups) and not _sender_matches(
        sender, scope.senders, scope.sender_domains, scope.sender_groups, ctx
    ):
        return False
    return not scope.recipient_domains or any(
        _domain_pattern_match(d, p) for d in rcpt_domains for p in scope.recipient_domains
    )


def _excepted(rule: Rule, sender: str, external_domains: Sequence[str], ctx: Context) -> bool:
    ex: Exceptions = rule.except_
    if (ex.senders or ex.sender_domains or ex.sender_groups) and _sender_matches(
        sender, ex.senders, ex.sender_domains, ex.sender_groups, ctx
    ):
        return True
    return (
        bool(ex.recipient_domains)
        and bool(external_domains)
        and all(
            any(_domain_pattern_match(d, p) for p in ex.recipient_domains) for d in external_domains
        )
    )


def _explains(f: Finding, used: set[str]) -> bool:
    """Whether finding ``f`` is evidence for a rule that tested the facts ``used`` (a
    personal-data item explains a rule scoped to its kind: ``personal_data.<kind>``)."""
    if f.fact in used:
        return True
    return (
        f.fact == "personal_data_items"
        and (PERSONAL_DATA_FACT_PREFIX + f.evidence.get("kind", "")) in used
    )


def recipients_of(msg: Message) -> list[str]:
    """Envelope recipients (the truth), else every header recipient."""
    rcpts = msg.envelope_rcpts or (*msg.to, *msg.cc, *msg.bcc)
    return [a.key for a in rcpts if a.domain]


def evaluate(
    policy: Policy,
    msg: Message,
    ctx: Context,
    facts: Mapping[str, int],
    findings: Sequence[Finding],
) -> Verdict:
    sender_addr = msg.sender
    sender = sender_addr.key if sender_addr is not None else ""
    rcpts = recipients_of(msg)
    rcpt_domains = sorted({r.rpartition("@")[2] for r in rcpts})
    external_domains = [d for d in rcpt_domains if not ctx.org.is_internal_domain(d)]
    fact_values = dict(facts)

    enforced: list[RuleMatch] = []
    audit: list[RuleMatch] = []
    offer_bcc = False
    for rule in policy.spec.rules:
        if not _in_scope(rule, sender, rcpt_domains, ctx):
            continue
        if _excepted(rule, sender, external_domains, ctx):
            continue
        if not rule.when.test(fact_values):
            continue
        used = rule.when.facts_used()
        used |= {base for fact in used for base in _EVIDENCE_OF.get(fact, ())}
        match = RuleMatch(
            rule_id=rule.id,
            action=Action(rule.action),
            reason=Localized(ja=rule.description.ja, en=rule.description.en),
            mode=rule.mode,
            approval=rule.approval,
            delay_seconds=rule.delay_seconds,
            findings=tuple(f for f in findings if _explains(f, used)),
        )
        if rule.mode == "audit":
            audit.append(match)
            continue
        enforced.append(match)
        if rule.action == "bcc" or rule.offer_bcc:
            offer_bcc = True

    # Most protective first; stable, so policy order breaks ties.
    enforced.sort(key=lambda m: -m.action.severity)
    action = enforced[0].action if enforced else Action(policy.spec.default_action)
    approval = next((m.approval for m in enforced if m.action == Action.HOLD and m.approval), None)
    delays = [m.delay_seconds for m in enforced if m.action == Action.DELAY and m.delay_seconds]
    return Verdict(
        action=action,
        rules=tuple(enforced),
        audit_rules=tuple(audit),
        facts=fact_values,
        findings=tuple(findings),
        offer_bcc=offer_bcc and action == Action.HOLD,
        approval=approval if action == Action.HOLD else None,
        delay_seconds=(max(delays) if delays else None) if action == Action.DELAY else None,
        policy_version=policy.version,
    )
