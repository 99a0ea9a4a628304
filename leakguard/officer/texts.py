# ruff: noqa: E501  (a catalogue of sentences: one sentence per line reads best)
"""Every sentence of incident reporting in Japanese and English: alert mails, the report
page, the incident record (web, Markdown, PDF) and the ``incidents`` command.

Like ``leakguard.holds.texts``: fields are formatted in with ``str.format`` before a template
escapes the result, so values taken from mail are always escaped, never interpreted.
"""

from __future__ import annotations

from leakguard.types import Localized

L = Localized

TEXTS: dict[str, Localized] = {
    # ---- alert mails to the route (officers, deputy, supervisor)
    "subj.report": L(
        "【誤送信の報告】{id} {sender}: {subject}", "[Mistake reported] {id} {sender}: {subject}"
    ),
    "subj.near_miss": L(
        "【ヒヤリハット】{id} {sender}: {subject}", "[Near miss] {id} {sender}: {subject}"
    ),
    "subj.confirm": L("【誤送信の報告を受け付けました】{id}", "[Report received] {id}"),
    "subj.not_found": L(
        "【誤送信の報告】対象のメールが見つかりません", "[Report] The mail could not be found"
    ),
    "mail.head.report": L(
        "{actor} さんが誤送信を報告しました ({via})。", "{actor} reported a mistaken mail ({via})."
    ),
    "mail.head.near_miss": L(
        "保留されたメールが、次の検出があったにもかかわらず送信されました ({actor}, {via}): {triggers}",
        "A held mail was released although it matched: {triggers} ({actor}, {via}).",
    ),
    "mail.head.mistake": L(
        "{actor} さんが保留メールを「誤りだった」として破棄しました ({via})。送ろうとした相手を確認してください。",
        '{actor} discarded a held mail as "this was a mistake" ({via}). Check whom it was meant for.',
    ),
    "mail.why_you": L(
        "このメールは誤送信の報告先 ({role}) として送られています。",
        "You receive this as part of the reporting route ({role}).",
    ),
    "mail.record": L("インシデント記録: {url}", "Incident record: {url}"),
    "mail.cli": L(
        "コマンド: leakguard incidents show {id}", "Command: leakguard incidents show {id}"
    ),
    "mail.todo": L(
        "まず送信者に連絡して状況を確認し、必要なら相手先へのお詫びと削除依頼を行ってください。対応は記録のページでチェックできます。",
        "Contact the sender first; if needed, apologise to the recipients and ask them to delete the mail. Tick each step off on the record page.",
    ),
    "mail.confirm": L(
        "誤送信の報告を受け付けました。受付番号: {id}\n情報セキュリティ担当者に連絡しました。相手先にはまだ何も連絡しないでください。担当者から連絡があります。",
        "Your report has been received. Reference: {id}\nThe security officer has been told. Do not contact the recipients yet: the officer will get in touch with you.",
    ),
    "mail.not_found": L(
        "報告されたメールが見つかりませんでした (転送されたメールの Message-ID・件名で探しました)。通知メールや保留の画面にある「誤送信を報告する」のリンクから報告してください。急ぐ場合は情報セキュリティ担当者に直接連絡してください。",
        'The mail you reported could not be found (by the forwarded mail\'s Message-ID and subject). Please use the "Report a mistake" link in the notice or on the review page, or contact the security officer directly if it is urgent.',
    ),
    "mail.not_entitled": L(
        "このメールを報告できるのは、その送信者か管理者だけです。",
        "Only the sender of that mail or an administrator can report it.",
    ),
    "mail.auto": L(
        "このメールは leakguard が自動で送信しました。",
        "This mail was sent automatically by leakguard.",
    ),
    "role.officer": L("情報セキュリティ担当者", "security officer"),
    "role.deputy": L("代理", "deputy"),
    "role.supervisor": L("送信者の上長", "the sender's supervisor"),
    # ---- field labels (mails, record, page)
    "f.incident": L("インシデント", "Incident"),
    "f.kind": L("種別", "Kind"),
    "f.state": L("状態", "State"),
    "f.reported_at": L("報告日時", "Reported at"),
    "f.reported_by": L("報告者", "Reported by"),
    "f.via": L("経路", "Via"),
    "via.web": L("Web (リンク・画面)", "web (link or page)"),
    "via.reply": L("メール (返信・報告用アドレス)", "mail (reply or report address)"),
    "via.cli": L("コマンド", "command line"),
    "via.timer": L("タイマー", "timer"),
    "via.relay": L("リレー", "relay"),
    "f.sender": L("送信者", "Sender"),
    "f.department": L("所属", "Department"),
    "f.note": L("報告者のメモ", "Reporter's note"),
    "f.sent_at": L("送信日時", "Sent at"),
    "f.subject": L("件名 (マスク済み)", "Subject (masked)"),
    "f.rcpts": L("宛先", "Recipients"),
    "f.rcpts_count": L("{n} 件 (うち社外 {ext} 件)", "{n} ({ext} external)"),
    "f.relay_did": L("リレーの処理", "What the relay did"),
    "f.rules": L("該当したルール", "Rules that matched"),
    "f.hold": L("保留", "Hold"),
    "f.size": L("サイズ", "Size"),
    "f.policy": L("ポリシーの版", "Policy version"),
    "f.message_id": L("Message-ID", "Message-ID"),
    "f.related": L("同じメールの別の記録", "Same mail, also"),
    "f.triggers": L("警告の理由", "Alert reasons"),
    "kind.report": L("誤送信の報告", "reported mistake"),
    "kind.near_miss": L("ヒヤリハット (警告)", "near miss (alert)"),
    "state.open": L("対応中", "open"),
    "state.closed": L("完了", "closed"),
    "internal": L("社内", "internal"),
    "external": L("社外", "external"),
    "trigger.mistake": L("「誤りだった」として破棄", "discarded as a mistake"),
    "trigger.quoted_third_party_addresses": L(
        "引用・転送部分にある第三者のアドレス", "third-party addresses in quoted or forwarded text"
    ),
    "trigger.lookalike_domains": L("よく似た別のドメイン", "a lookalike domain"),
    "trigger.name_similar_recipients": L(
        "職員や取引先と似た名前の宛先", "a recipient named like a colleague or contact"
    ),
    "trigger.personal_data": L("個人情報", "personal data"),
    "trigger.rule": L("ルール {id}", "rule {id}"),
    "outcome.sent": L("送信した", "sent"),
    "outcome.sent_bcc": L("宛先を BCC に移して送信した", "sent with the recipients moved to Bcc"),
    "outcome.held": L("保留した", "held"),
    "outcome.delayed": L("送信を遅らせた", "delayed"),
    "outcome.rejected": L("拒否した", "rejected"),
    "outcome.failed": L("送信できなかった", "failed"),
    # ---- the record
    "rec.title.report": L("誤送信インシデント記録 {id}", "Mis-sent mail incident record {id}"),
    "rec.title.near_miss": L("誤送信ヒヤリハット記録 {id}", "Mis-sent mail near-miss record {id}"),
    "rec.s.summary": L("概要", "Summary"),
    "rec.s.mail": L("送信されたメール (いつ・誰に)", "What was sent, when and to whom"),
    "rec.s.rcpts": L("宛先", "Recipients"),
    "rec.s.personal": L("含まれていた個人情報 (マスク済み)", "Personal data in it (masked)"),
    "rec.s.rules": L("ルールの判定", "What the rules said"),
    "rec.s.release": L("誰がどのように送信したか", "Who released it and how"),
    "rec.s.timeline": L("経過", "Timeline"),
    "rec.s.followups": L("事後対応", "Follow-up actions"),
    "rec.no_mail": L(
        "メールの記録が見つかりません (保存期間を過ぎたか、記録前の報告です)。",
        "No record of the mail was found (past retention, or reported before it was journaled).",
    ),
    "rec.no_personal": L("個人情報の検出はありません。", "No personal data was detected."),
    "rec.personal_more": L(
        "ほか {n} 件の検出は省略 (記録上限)。", "{n} more findings not kept (record limit)."
    ),
    "rec.fired": L("該当: {rule} ({action}) — {reason}", "Matched: {rule} ({action}) — {reason}"),
    "rec.fired_bare": L("該当: {rule}", "Matched: {rule}"),
    "rec.audit": L("監査のみ (動作なし): {rule}", "Audit only (no action): {rule}"),
    "rec.silent": L("該当しなかったルール: {rules}", "Rules that stayed silent: {rules}"),
    "rec.silent_unknown": L(
        "ポリシーのルール一覧を読めないため、該当しなかったルールは示せません。",
        "The policy's rule list was not available: rules that stayed silent cannot be listed.",
    ),
    "rec.no_rules": L("どのルールにも該当しませんでした。", "No rule matched."),
    "rec.direct": L(
        "保留されずにそのまま送信されました ({at})。", "Sent at once without a hold ({at})."
    ),
    "rec.direct_bcc": L(
        "宛先を BCC に移して、保留されずに送信されました ({at})。",
        "Sent at once with the recipients moved to Bcc ({at}).",
    ),
    "rec.released": L(
        "{at} に {actor} が {via} で操作し、「{state}」になりました。",
        "{state} by {actor} via {via} at {at}.",
    ),
    "rec.still_held": L("まだ送信されていません ({state})。", "Not sent ({state})."),
    "rec.delivered": L(
        "{at} に相手先サーバーへ配送されました ({n} 件)。",
        "Delivered to the recipients' server at {at} ({n}).",
    ),
    "rec.delivery_pending": L(
        "配送待ち・再試行中 ({n} 件)。", "Delivery queued or retrying ({n})."
    ),
    "rec.delivery_failed": L("配送に失敗しました: {error}", "Delivery failed: {error}"),
    "rec.followup_done": L("済 {at} ({by})", "done {at} ({by})"),
    "rec.followup_open": L("未", "not yet"),
    "rec.col.at": L("日時", "When"),
    "rec.col.what": L("出来事", "What"),
    "rec.col.who": L("誰が", "Who"),
    "rec.col.detail": L("詳細", "Detail"),
    "rec.generated": L("{at} に leakguard が作成", "Generated by leakguard at {at}"),
    "followup.apology": L("相手先へのお詫び", "Apology to the recipients"),
    "followup.deletion_requested": L("削除の依頼", "Deletion requested"),
    "followup.deletion_confirmed": L("削除の確認", "Deletion confirmed"),
    # timeline events
    "ev.decided": L("リレーの判定: {action} → {outcome}", "Relay decided: {action} → {outcome}"),
    "ev.hold": L("保留の経過: {move}", "Hold: {move}"),
    "ev.hold_note": L("保留: {note}", "Hold: {note}"),
    "ev.delivered": L("配送完了 ({n} 件)", "Delivered ({n})"),
    "ev.delivery_failed": L("配送失敗", "Delivery failed"),
    "ev.reported": L("誤送信の報告", "Mistake reported"),
    "ev.reported_again": L("再度の報告", "Reported again"),
    "ev.alerted": L("ヒヤリハットの警告", "Near-miss alert"),
    "ev.notified": L("報告先に通知", "Route notified"),
    "ev.webhook_ok": L("Webhook 送信済み", "Webhook delivered"),
    "ev.webhook_failed": L("Webhook 失敗", "Webhook failed"),
    "ev.followup": L("事後対応を記録", "Follow-up ticked"),
    "ev.followup_undone": L("事後対応を取り消し", "Follow-up unticked"),
    "ev.closed": L("完了にした", "Closed"),
    "ev.reopened": L("再開した", "Reopened"),
    # ---- the report page
    "page.report_title": L("誤送信を報告する", "Report a mistake"),
    "page.report_intro": L(
        "このメールを誤って送ってしまった場合は、すぐに報告してください。情報セキュリティ担当者に直ちに伝わります。報告しても、あなたが責められることはありません。報告が遅れることが一番の損害になります。",
        "If this mail went to the wrong people, report it now. The security officer is told at once. Reporting is never held against you: a late report is what does the most damage.",
    ),
    "page.what_wrong": L("何が問題でしたか", "What went wrong"),
    "page.reason.wrong_recipient": L("宛先を間違えた", "Wrong recipient"),
    "page.reason.wrong_attachment": L("添付ファイルを間違えた", "Wrong attachment"),
    "page.reason.visible_recipients": L(
        "宛先が互いに見えてしまった (BCC にすべきだった)",
        "Recipients could see each other (should have been Bcc)",
    ),
    "page.reason.personal_data": L("個人情報を含めてしまった", "It contained personal data"),
    "page.reason.other": L("その他", "Something else"),
    "page.note": L(
        "補足 (任意、{max} 文字まで。マイナンバーなどの番号は書かないでください)",
        "Details (optional, up to {max} characters; do not write identifiers such as My Number)",
    ),
    "page.submit": L("報告する", "Send the report"),
    "page.filed": L(
        "報告を受け付けました。受付番号: {id}", "Your report has been received. Reference: {id}"
    ),
    "page.filed_again": L(
        "このメールは既に報告されています (受付番号: {id})。追加の情報として記録しました。",
        "This mail had already been reported (reference {id}). Your report was added to it.",
    ),
    "page.next_title": L("このあと起こること", "What happens next"),
    "page.next": L(
        "{who}に、今この報告が届きました。担当者があなたに連絡し、相手先へのお詫びや削除の依頼を一緒に進めます。",
        "{who} have just been told. The officer will contact you and, with you, apologise to the recipients and ask them to delete the mail.",
    ),
    "page.who.officer": L("情報セキュリティ担当者", "The security officer"),
    "page.who.deputy": L("代理", "the deputy"),
    "page.who.supervisor": L("あなたの上長", "your supervisor"),
    "page.now_title": L("今あなたがすること", "What to do now"),
    "page.now": L(
        "相手先にはまだ連絡しないでください。メールを削除せず、そのまま残してください。担当者からの連絡を待ち、聞かれたら、誰に何を送ったかを伝えてください。",
        "Do not contact the recipients yet. Do not delete the mail: keep it as it is. Wait for the officer, and tell them whom you sent what when asked.",
    ),
    "page.refused": L("この報告は受け付けられません: {why}", "This report cannot be filed: {why}"),
    "err.unknown_mail": L(
        "対象のメールの記録が見つかりません (保存期間を過ぎた可能性があります)。",
        "No record of this mail was found (its retention may have passed).",
    ),
    "err.not_entitled": L(
        "このメールを報告できるのは、その送信者か管理者だけです。",
        "Only the sender of this mail or an administrator can report it.",
    ),
    "err.too_long": L(
        "補足が長すぎます ({max} 文字まで)。",
        "The details are too long (at most {max} characters).",
    ),
    # ---- admin pages
    "adm.title": L("インシデント", "Incidents"),
    "adm.none": L("インシデントはありません。", "No incidents."),
    "adm.open_only": L("対応中のみ", "Open only"),
    "adm.all": L("すべて", "All"),
    "adm.save": L("事後対応を保存", "Save follow-ups"),
    "adm.close": L("完了にする", "Close"),
    "adm.reopen": L("再開する", "Reopen"),
    "adm.print": L("印刷用に表示", "Print view"),
    "adm.pdf": L("PDF", "PDF"),
    "adm.markdown": L("Markdown", "Markdown"),
    "adm.unknown": L("そのインシデントはありません。", "No such incident."),
    "adm.render_budget": L(
        "記録の作成に時間がかかりすぎたため、中断しました。しばらくしてからもう一度お試しください。",
        "Building the record took too long and was stopped. Please try again later.",
    ),
    "adm.back": L("一覧へ", "All incidents"),
    "adm.holds": L("保留一覧", "Holds"),
    "adm.hold": L("保留 {id} の画面", "Hold {id}"),
    "adm.saved": L("保存しました。", "Saved."),
    # ---- command line
    "cli.none": L("該当するインシデントはありません。", "No incidents match."),
    "cli.unknown": L("そのインシデントはありません。", "No such incident."),
    "cli.filed": L("報告しました: {id}", "Reported: {id}"),
    "cli.done": L("{id}: 記録しました。", "{id}: recorded."),
    "cli.need_one": L(
        "--decision か --hold のどちらかを指定してください。", "Give --decision or --hold."
    ),
    "cli.wrote": L("{path} に書き出しました。", "Wrote {path}."),
    "cli.pdf_needs_file": L("PDF は -o FILE で書き出してください。", "Write PDF with -o FILE."),
}


def via_words(via: str, lang: str) -> str:
    """How something was done (web, reply, cli, ...) in words; unknown values as they are."""
    return t(f"via.{via}", lang) if f"via.{via}" in TEXTS else via


def trigger_words(detail: str, lang: str) -> str:
    """A near miss's reasons (``quoted_third_party_addresses, rule:x``, as configured in
    ``incidents.alert_on_release``) in words a reader understands, each with its name."""
    out: list[str] = []
    for raw in detail.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.startswith("rule:"):
            out.append(t("trigger.rule", lang, id=name[5:]))
        elif name == "mistake":
            out.append(t("trigger.mistake", lang))
        elif f"trigger.{name}" in TEXTS:
            out.append(f"{t(f'trigger.{name}', lang)} ({name})")
        else:
            out.append(name)
    return ", ".join(out)


def told_words(roles: list[str], lang: str) -> str:
    """Who a report reached, for the reporter: 情報セキュリティ担当者・代理 / The security
    officer, the deputy and your supervisor (only the roles really told)."""
    words = [t(f"page.who.{r}", lang) for r in dict.fromkeys(roles)] or [
        t("page.who.officer", lang)
    ]
    if lang == "ja":
        return "・".join(words)
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def t(key: str, lang: str, /, **fields: object) -> str:
    """The text for ``key`` in ``lang`` with ``fields`` formatted in (missing key: the key)."""
    text = TEXTS.get(key)
    if text is None:
        return key
    s = text.get(lang)
    if fields:
        try:
            return s.format(**fields)
        except (KeyError, IndexError, ValueError):
            return s
    return s
