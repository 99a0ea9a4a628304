"""Findings and actions in plain words, Japanese and English.

Used by ``leakguard check``, the hold notices and the review page, so a person reads the
same explanation everywhere. Returns plain text; callers escape it for HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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


_SECTION_JA = (
    (re.compile(r"^page (\d+)$"), r"\1 ページ"),
    (re.compile(r"^sheet (.+)$"), r"シート「\1」"),
    (re.compile(r"^slide (\d+)$"), r"スライド \1"),
    (re.compile(r"^text part (\d+)$"), r"テキスト本文 \1"),
    (re.compile(r"^HTML part (\d+)$"), r"HTML 本文 \1"),
    (re.compile(r"attached message (\d+)"), r"添付メール \1"),
)

# Personal-data kinds (leakguard.detectors.personal.KINDS) in plain words.
_KIND = {
    "my_number": ("個人番号(マイナンバー)", "My Number"),
    "corporate_number": ("法人番号", "corporate number"),
    "employment_insurance_number": ("雇用保険の被保険者番号", "employment insurance number"),
    "pension_number": ("基礎年金番号", "basic pension number"),
    "bank_account": ("口座番号", "bank account number"),
    "credit_card": ("クレジットカード番号", "credit card number"),
    "phone": ("電話番号", "phone number"),
    "address": ("住所", "address"),
    "birth_date": ("生年月日", "date of birth"),
    "passport": ("旅券番号", "passport number"),
    "driving_licence": ("運転免許証番号", "driving licence number"),
    "form_field": ("書式の記入欄", "form field"),
    "form": ("記入済みの書式", "filled-in form"),
    "data_subject": ("書式の本人", "the person the form is about"),
}


def kind_name(kind: str, lang: str) -> str:
    ja, en = _KIND.get(kind, (kind, kind.replace("_", " ")))
    return ja if lang.startswith("ja") else en


def location_text(ev: Mapping[str, str], lang: str) -> str:
    """``本文 12行目`` / ``body line 12``; ``申請書.pdf 2 ページ 5行目`` /
    ``申請書.pdf, page 2, line 5`` from the language-neutral evidence keys ``attachment``,
    ``section`` and ``line``."""
    ja = lang.startswith("ja")
    att = ev.get("attachment", "")
    sec = ev.get("section", "")
    line = ev.get("line", "")
    if sec == "subject":
        where = f"{att} " if att else ""
        return f"{where}件名" if ja else f"{where}subject"
    if ja:
        for rx, repl in _SECTION_JA:
            sec = rx.sub(repl, sec)
    if not att:
        extra = "" if sec in ("", "text part 1", "テキスト本文 1") else sec
        if ja:
            return f"本文{f'({extra})' if extra else ''} {line}行目"
        return f"body line {line}" + (f" ({extra})" if extra else "")
    if ja:
        return f"{att}{f' {sec}' if sec else ''} {line}行目"
    return f"{att}{f', {sec}' if sec else ''}, line {line}"


def _personal(f: Finding, ja: bool) -> str:
    ev = f.evidence
    lang = "ja" if ja else "en"
    kind = ev.get("kind", "")
    where = location_text(ev, lang)
    shown = ev.get("masked", "")
    if f.fact == "unmasked_forms":
        n = ev.get("fields", "")
        if ja:
            who = f"{shown} さんの" if shown else ""
            return f"マスキングされていない{who}記入済みの書式 (記入欄 {n} 件): {where}"
        who = f" about {shown}" if shown else ""
        return f"A filled-in form{who} that is not masked ({n} field(s)): {where}"
    if kind == "data_subject":
        who = ", ".join(f.addresses)
        if ja:
            return f"{where} の書式は {shown} さんについてのものですが、宛先 {who} は別の人です"
        return f"The form at {where} is about {shown}, but it goes to {who}, someone else"
    if ja:
        return f"{kind_name(kind, lang)} {shown} ({where})"
    return f"{kind_name(kind, lang)} {shown} ({where})"


def explain_finding(f: Finding, lang: str) -> str:
    """One line about one finding, in ``lang`` ("ja" or anything else for English)."""
    ja = lang.startswith("ja")
    ev = f.evidence
    who = _addrs(f)
    if f.detector == "personal":
        return _personal(f, ja)
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
    if f.fact == "bcc_rewrite_exposed":
        n = len(f.addresses)
        return (
            f"社外の宛先 {n} 件のアドレスが本文・引用ヘッダー・添付・招待状にも書かれているため、"
            f"Bcc に移しても隠せません: {who}"
            if ja
            else f"{n} external address(es) are also listed in the mail itself (body, quoted "
            f"headers, attachments or invitation), so moving them to Bcc would not hide them: "
            f"{who}"
        )
    if f.fact == "forwards_to_own_mailbox":
        people = ev.get("third_parties", "0")
        files = ev.get("attachments", "0")
        shown = ev.get("third_party_addresses", "")
        if ja:
            text = (
                f"送信者本人の社外アドレス {who} に、第三者のアドレス {people} 件と"
                f"添付ファイル {files} 件を含むメールを送ろうとしています"
            )
            return text + (f" (第三者: {shown})" if shown else "")
        text = (
            f"The mail goes to the sender's own outside mailbox {who} with {people} third-party "
            f"address(es) and {files} attachment(s)"
        )
        return text + (f" (third parties: {shown})" if shown else "")
    if f.detector == "attachments" and "attachment" in ev:
        return _explain_attachment(f, ja)
    if f.fact == "external_attachments":
        count = ev.get("count", "")
        return (
            f"社外の宛先 {who} に添付ファイル {count} 件を送ります"
            if ja
            else f"{count} attachment(s) go to external recipient(s) {who}"
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
        if ev.get("matched_on") == "surname":  # the same-surname incident (names detector)
            internal = ev.get("context") == "internal thread"
            if ja:
                if internal:
                    text = (
                        f"社内だけのやり取りの送り先 {who} は、社内の {target} <{target_addr}> と"
                        "姓だけが同じ社外のアドレスです"
                    )
                else:
                    text = (
                        f"初めて送る社外の宛先 {who} は、このやり取りに加わっている社内の "
                        f"{target} <{target_addr}> と姓だけが同じです"
                    )
                return text + "。宛先を取り違えていないか確認してください"
            what = (
                "receives an internal thread and" if internal else "was never written to before and"
            )
            return (
                f"Recipient {who} {what} shares only the surname of the colleague {target} "
                f"<{target_addr}>: check that you picked the right person"
            )
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


_ATTACHMENT_STATUS = {
    "encrypted": (
        "パスワード付きのため中身を確認できません",
        "is password-protected: its content cannot be checked",
    ),
    "unreadable": (
        "文字情報がないため (スキャン画像など) 中身を確認できません",
        "has no text layer (a scan or an image): its content cannot be checked",
    ),
    "uninspected": (
        "制限 (時間・大きさ・入れ子・破損) のため中身を確認できませんでした",
        "could not be checked within the limits (time, size, nesting, or a broken file)",
    ),
}


def _explain_attachment(f: Finding, ja: bool) -> str:
    name = f.evidence.get("attachment", "")
    status = f.evidence.get("status", "")
    ja_text, en_text = _ATTACHMENT_STATUS.get(status, ("を確認できません", "cannot be checked"))
    if ja:
        return f"添付ファイル「{name}」は{ja_text}"
    return f"Attachment {name!r} {en_text}"
