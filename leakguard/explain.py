"""Findings and actions in plain words, Japanese and English.

Used by ``leakguard check``, the hold notices and the review page, so a person reads the
same explanation everywhere. Returns plain text; callers escape it for HTML.
"""

from __future__ import annotations

from leakguard.types import Action, Finding

_ACTION = {
    Action.PASS: ("送信します", "pass: sent upstream unchanged"),
    Action.BCC: (
        "BCC変換: 社外の宛先を Bcc に移して送信します",
        "bcc: external recipients are moved to Bcc, then sent",
    ),
    Action.DELAY: (
        "送信待ち: 一定時間後に送信します (取り消し可)",
        "delay: sent after a waiting time unless cancelled",
    ),
    Action.HOLD: (
        "保留: 確認されるまで送信しません",
        "hold: not sent until someone releases it",
    ),
    Action.REJECT: ("拒否: 送信しません", "reject: refused, not sent"),
}


def describe_action(action: Action, lang: str) -> str:
    ja, en = _ACTION[action]
    return ja if lang.startswith("ja") else en


def _addrs(f: Finding, limit: int = 8) -> str:
    shown = list(f.addresses[:limit])
    more = len(f.addresses) - len(shown)
    text = ", ".join(shown)
    if more > 0:
        text += f" (+{more})"
    return text


def explain_finding(f: Finding, lang: str) -> str:
    """One line about one finding, in ``lang`` ("ja" or anything else for English)."""
    ja = lang.startswith("ja")
    ev = f.evidence
    who = _addrs(f)
    if f.fact == "visible_external_recipients":
        n = len(f.addresses)
        return (
            f"社外の宛先 {n} 件が To/Cc で互いに見えます: {who}"
            if ja
            else f"{n} external address(es) visible to each other in To/Cc: {who}"
        )
    if f.fact == "visible_external_organizations":
        orgs = ev.get("organizations", "")
        return (
            f"複数の社外組織が互いのアドレスを見られます: {orgs}"
            if ja
            else f"Several external organisations can see each other's addresses: {orgs}"
        )
    if f.fact == "own_external_addresses":
        return (
            f"送信者本人の社外アドレスと思われる宛先: {who}"
            if ja
            else f"Recipient(s) that look like the sender's own outside mailbox: {who}"
        )
    if f.fact == "uninspected_parts":
        return (
            "大きすぎる・多すぎる・入れ子が深すぎるため、確認できなかった部分があります"
            if ja
            else "Some parts were too large, too many or too deeply nested to be checked"
        )
    if f.fact == "first_time_external_recipients":
        return (
            f"初めて送信する社外の宛先: {who}"
            if ja
            else f"First mail to external address(es): {who}"
        )
    if f.fact == "quoted_third_party_addresses":
        loc = (ev.get("location_ja") if ja else "") or ev.get("location", "")
        news = ev.get("news_to", "")
        if ja:
            text = f"引用・転送部分に第三者のアドレス {who} が含まれています"
            if loc:
                text += f" (場所: {loc})"
            if news:
                text += f"。{news} には初めて知らされるアドレスです"
            return text
        text = f"Quoted/forwarded text carries a third party's address {who}"
        if loc:
            text += f" (found in: {loc})"
        if news:
            text += f"; it is news to {news}"
        return text
    if f.fact == "name_similar_recipients":
        target = ev.get("similar_name") or ""
        target_addr = ev.get("similar_to", "")
        source = ev.get("source", "directory")
        if ja:
            kind = "社内の" if source == "directory" else "いつもの連絡先の"
            return (
                f"宛先 {who} は{kind} {target} <{target_addr}> に名前が似ていますが、"
                "別のアドレスです"
            )
        kind = "colleague" if source == "directory" else "usual contact"
        return (
            f"Recipient {who} has a name like the {kind} {target} <{target_addr}>, "
            "but a different address"
        )
    if f.fact == "lookalike_domains":
        dom = ev.get("domain", "")
        res = ev.get("resembles", "")
        tech = ev.get("technique", "")
        if ja:
            return f"宛先ドメイン {dom} は {res} に似ていますが別のドメインです ({tech}): {who}"
        return f"Recipient domain {dom} resembles {res} but is a different domain ({tech}): {who}"
    if f.fact == "addressee_mismatches" and f.detector == "addressee":
        written = ev.get("addressee", "")
        compared = ev.get("compared_with", "")
        loc = (ev.get("location_ja") if ja else ev.get("location")) or ""
        person = ev.get("kind") == "person"
        if ja:
            what = "人" if person else "組織"
            text = f"宛名「{written}」({loc}) が示す{what}は、宛先 {who} と一致しません"
            if compared:
                text += f" (宛先の名前: {compared})"
            return text
        what = "person" if person else "organisation"
        text = f'The mail is addressed to the {what} "{written}" ({loc}), not to {who}'
        if compared:
            text += f" (known as: {compared})"
        return text
    return f.detail
