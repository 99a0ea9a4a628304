# ruff: noqa: E501  (a catalogue of sentences: one sentence per line reads best)
"""Every sentence the hold workflow shows to people, in Japanese and English.

Templates (notices, review page, admin view) are language-neutral and look texts up here
through ``t(key, lang, **fields)``; fields are formatted in with ``str.format`` *before*
the template escapes the result, so values from mail content are always escaped by the
template (HTML) and never interpreted.
"""

from __future__ import annotations

from leakguard.types import Localized

L = Localized

TEXTS: dict[str, Localized] = {
    # ---- notice subjects
    "subj.held": L("【送信保留】{subject}", "[Held] {subject}"),
    "subj.delayed": L("【送信待機中】{subject}", "[Sending delayed] {subject}"),
    "subj.approval": L(
        "【承認依頼】{sender} さんのメール: {subject}",
        "[Approval needed] Mail from {sender}: {subject}",
    ),
    "subj.pending": L("【承認待ち】{subject}", "[Waiting for approval] {subject}"),
    "subj.escalated": L("【承認者を追加】{subject}", "[Approval escalated] {subject}"),
    "subj.released": L("【送信しました】{subject}", "[Sent] {subject}"),
    "subj.released_bcc": L("【BCCで送信しました】{subject}", "[Sent as Bcc] {subject}"),
    "subj.discarded": L("【破棄しました】{subject}", "[Discarded] {subject}"),
    "subj.expired": L("【期限切れで破棄】{subject}", "[Expired, discarded] {subject}"),
    "subj.reply_result": L(
        "【leakguard】コマンドの結果: {subject}", "[leakguard] Result of your command: {subject}"
    ),
    # ---- notice headlines
    "head.held": L(
        "あなたのメールは送信されずに保留されています。",
        "Your mail has NOT been sent yet: it is on hold.",
    ),
    "head.delayed": L(
        "あなたのメールは {due_in} 後 ({due_at}) に自動的に送信されます。それまでは取り消せます。",
        "Your mail will be sent automatically in {due_in} ({due_at}). Until then you can cancel it.",
    ),
    "head.approval": L(
        "{sender} さんのメールが保留されています。送信してよいか確認してください。",
        "A mail from {sender} is on hold. Please check whether it may be sent.",
    ),
    "head.approval_escalated": L(
        "{sender} さんのメールが保留されています。承認者が {after} 以内に対応しなかったため、あなたに確認をお願いしています。",
        "A mail from {sender} is on hold. The approvers did not answer within {after}, so you are asked to decide.",
    ),
    "head.pending": L(
        "あなたのメールは保留され、{approvers} さんの承認待ちです。承認されるまで送信されません。取り下げることはできます。",
        "Your mail is on hold and waits for approval by {approvers}. It is not sent until approved. You may withdraw it.",
    ),
    "head.pending_admin": L(
        "あなたのメールは保留され、承認が必要ですが承認者が見つかりません。システム管理者に連絡してください。取り下げることはできます。",
        "Your mail is on hold and needs approval, but no approver was found. Please contact your administrator. You may withdraw it.",
    ),
    "head.escalated": L(
        "承認者が {after} 以内に対応しなかったため、{deputy} さんにも承認を依頼しました。",
        "The approvers did not answer within {after}, so {deputy} was asked as well.",
    ),
    "head.released": L(
        "メールは {actor} によって送信されました。", "The mail was sent by {actor}."
    ),
    "head.released_bcc": L(
        "メールは {actor} によって、宛先をBCCにして送信されました。",
        "The mail was sent by {actor} with the recipients moved to Bcc.",
    ),
    "head.discarded": L(
        "メールは {actor} によって破棄されました。送信されていません。",
        "The mail was discarded by {actor}. It was not sent.",
    ),
    "head.expired": L(
        "保留期限 ({after}) までに誰も対応しなかったため、メールは破棄されました。送信されていません。",
        "Nobody answered within {after}, so the mail was discarded. It was not sent.",
    ),
    # ---- sections
    "sec.why": L("保留の理由", "Why"),
    "sec.recipients": L("宛先", "Recipients"),
    "sec.third_parties": L(
        "引用部分にある第三者のアドレス", "Third-party addresses in the quoted thread"
    ),
    "sec.message": L("メール", "The mail"),
    "sec.answers": L("どうしますか", "What do you want to do?"),
    "sec.reply_help": L(
        "このメールに返信して、本文の1行目に次のどれかを書いても操作できます:",
        "You can also reply to this mail with one of these words on the first line:",
    ),
    "sec.timeline": L("経過", "Timeline"),
    "sec.full_message": L("本文", "Message text"),
    "sec.html_view": L(
        "HTML表示 (安全化済み、外部コンテンツなし)", "HTML view (sanitised, no remote content)"
    ),
    "sec.text_view": L("テキスト表示", "Text view"),
    # ---- fields
    "f.subject": L("件名", "Subject"),
    "f.from": L("差出人", "From"),
    "f.first_lines": L("本文の冒頭", "First lines"),
    "f.attachments": L("添付ファイル", "Attachments"),
    "f.no_attachments": L("なし", "none"),
    "f.expires": L(
        "この保留は {expires_in} 後 ({expires_at}) に期限切れとなり、メールは破棄されます。",
        "This hold expires in {expires_in} ({expires_at}); the mail is then discarded.",
    ),
    "f.hold_id": L("保留ID", "Hold ID"),
    "f.state": L("状態", "State"),
    "f.approvers": L("承認者", "Approvers"),
    "f.rule": L("ルール", "Rule"),
    # ---- recipient marks
    "mark.internal": L("組織内", "internal"),
    "mark.external": L("社外", "external"),
    "mark.to": L("To", "To"),
    "mark.cc": L("CC", "Cc"),
    "mark.bcc": L("BCC", "Bcc"),
    "mark.similar": L("同僚 {similar_to} と似ています", "similar to colleague {similar_to}"),
    "mark.similar_contact": L(
        "いつもの連絡先 {similar_to} と似ています", "similar to your usual contact {similar_to}"
    ),
    "mark.lookalike": L(
        "ドメインが {resembles} に似ていますが別物です", "domain looks like {resembles} but is not"
    ),
    "mark.first_time": L("初めて送る宛先です", "first time you write to this address"),
    "mark.third_party": L(
        "引用部分にある第三者 ({location})", "third party in the quoted thread ({location})"
    ),
    "mark.quoted_from": L("引用元: {who}", "quoted from {who}"),
    "mark.news_to": L("{news_to} はこのアドレスを知らないはずです", "news to {news_to}"),
    # ---- answers
    "btn.release": L("送信する", "Release (send)"),
    "btn.release_bcc": L("BCCにして送信する", "Release as Bcc"),
    "btn.discard": L("破棄する", "Discard"),
    "btn.send_now": L("今すぐ送信する", "Send now"),
    "btn.cancel": L("送信を取り消す", "Cancel sending"),
    "btn.withdraw": L("取り下げる (破棄)", "Withdraw (discard)"),
    "btn.open": L("確認ページを開く", "Open the review page"),
    "btn.confirm_release": L("確認しました。送信する", "I have checked. Send it"),
    "btn.back": L("戻る", "Back"),
    "cmd.release": L("送信 (または release)", "release (or 送信)"),
    "cmd.release_bcc": L("BCC (または bcc)", "bcc (or BCC)"),
    "cmd.discard": L("破棄 (または discard)", "discard (or 破棄)"),
    "cmd.send_now": L("送信 (今すぐ送信)", "release (send now)"),
    "cmd.cancel": L("破棄 (送信を取り消す)", "discard (cancel sending)"),
    # ---- reporting a mistake (issue 9)
    "btn.report": L("誤送信を報告する", "Report a mistake"),
    "btn.discard_mistake": L("破棄 (誤送信でした)", "Discard — this was a mistake"),
    "cmd.discard_mistake": L(
        "誤送信 (破棄して誤送信として記録)", "mistake (discard it as a mistake)"
    ),
    "cmd.report": L(
        "報告 (または report)。続けて説明を書けます",
        "report (or 報告), optionally followed by a note",
    ),
    "note.report": L(
        "送ってはいけないメールだった場合は、すぐに報告してください。セキュリティ担当者に連絡が届きます。",
        "If this mail should not have been sent, report it at once: the security officer is told.",
    ),
    "note.report_reply": L(
        "このメールに「報告」と返信しても報告できます (続けて説明を書けます)。",
        "You can also reply to this mail with the word report (and a note after it).",
    ),
    "res.reported": L(
        "誤送信の報告を受け付けました。セキュリティ担当者に連絡します。",
        "Your report was filed. The security officer is being told.",
    ),
    "res.reported_id": L("受付番号: {id}", "Reference: {id}"),
    "err.report_failed": L(
        "報告は記録しましたが、担当者への連絡に失敗しました。セキュリティ担当者に直接連絡してください。",
        "Your report was recorded, but telling the security officer failed. Please contact them directly.",
    ),
    # ---- the Bcc change notice (issue 9)
    "subj.bcc_notice": L(
        "[leakguard] 宛先を Bcc に移して送信しました: {subject}",
        "[leakguard] Your mail was sent with recipients moved to Bcc: {subject}",
    ),
    "head.bcc_notice": L(
        "あなたのメールは、宛先の一部を To/Cc から Bcc に移して送信しました。",
        "Your mail was sent, with some recipients moved from To/Cc to Bcc.",
    ),
    "bcc.delivered": L(
        "メールは配送済みです。Bcc に移した宛先の方にも届いていますが、ほかの宛先のアドレスは見えません。",
        "The mail was delivered. The recipients moved to Bcc received it too, without seeing the other addresses.",
    ),
    "bcc.moved": L("To/Cc から Bcc に移した宛先 ({count} 件)", "Moved from To/Cc to Bcc ({count})"),
    "bcc.more": L("ほか {count} 件", "and {count} more"),
    "bcc.why": L("理由", "Why"),
    "bcc.mail": L("メール", "The mail"),
    "bcc.sent_at": L("送信日時", "Sent"),
    "bcc.id": L("記録ID", "Record ID"),
    "note.links": L(
        "リンクは確認ページを開くだけです。送信や破棄は、そのページのボタンを押すまで行われません。",
        "The links only open a review page. Nothing is sent or discarded until you press a button there.",
    ),
    "note.bcc_offer": L(
        "社外の宛先同士がお互いのアドレスを見られる状態です。BCCにして送信できます。",
        "External recipients can see each other's addresses. You can send with the recipients in Bcc.",
    ),
    "note.summary_incomplete": L(
        "このメールは内容の読み取りに時間がかかりすぎたため、宛先の見出し・本文の冒頭・添付ファイルの一覧をこの通知に載せていません。確認ページで内容を確かめてください。",
        "Reading this mail took too long, so this notice does not show its header recipients, first lines or attachments. Check the mail on the review page.",
    ),
    "note.auto": L(
        "このメールは leakguard が自動で送っています。",
        "This message was sent automatically by leakguard.",
    ),
    "note.links_defanged": L(
        "上に引用したメール本文の中のリンクは、誤って開かないよう hxxp:// の形に変えてあります。この通知で開けるリンクは、leakguard の確認ページと報告ページへのボタンとリンクだけです。",
        "Links in the mail text quoted above are shown as hxxp:// so they cannot be opened by mistake. The only links you can open in this notice are the buttons and links to leakguard's review and report pages.",
    ),
    # ---- web page
    "page.title": L("保留中のメール", "Held mail"),
    "page.invalid": L(
        "このリンクは無効です。期限切れか、すでに使われたか、正しくありません。",
        "This link is not valid: it expired, was already used, or is not correct.",
    ),
    "page.closed": L(
        "このメールはすでに処理されています: {state}", "This mail has already been handled: {state}"
    ),
    "page.used_title": L("このリンクは使用済みです", "This link was already used"),
    "page.expired_title": L("このリンクは期限切れです", "This link has expired"),
    "page.handled": L(
        "このメールは {at} に {actor} によって処理されました: {state}。",
        "This mail was handled by {actor} on {at}: {state}.",
    ),
    "page.handled_by_link": L(
        "このリンクからの操作はすでに行われています。もう一度操作する必要はありません。",
        "The answer given with this link has been carried out; there is nothing more to do.",
    ),
    "page.still_open": L(
        "このメールはまだ {state} です。新しい通知のリンクか返信で操作してください。",
        "This mail is still {state}. Use the link in a newer notice, or reply to it.",
    ),
    "page.confirm_title": L("本当に送信しますか?", "Really send?"),
    "page.confirm_text": L(
        "このメールには、第三者のアドレスや似たドメインが見つかっています。宛先と本文をもう一度確認してから送信してください。",
        "A third-party address or a lookalike domain was found in this mail. Check the recipients and the text again before sending.",
    ),
    "page.done": L("完了しました: {result}", "Done: {result}"),
    "page.not_allowed": L(
        "あなたはこの操作をできません: {reason}", "You are not allowed to do this: {reason}"
    ),
    "page.csrf": L(
        "フォームの有効期限が切れました。ページを開き直してください。",
        "The form expired. Please open the page again.",
    ),
    "page.view_html": L("HTMLで表示 (安全化済み)", "Show as HTML (sanitised)"),
    "page.view_text": L("テキストで表示", "Show as text"),
    "page.no_text": L("(本文なし)", "(no text)"),
    "page.truncated": L(
        "この表示は短縮されています (本文が長すぎるか、HTML が複雑すぎるため、テキストだけを表示しています)。",
        "This view is shortened (the mail is too long or its HTML too complex, so only text is shown).",
    ),
    "page.incomplete": L(
        "このメールは、表示の処理に時間がかかりすぎたため、すべてを表示できませんでした。下はメールの先頭部分をそのままテキストで示したものです (HTML や添付ファイルは表示していません)。",
        "This mail could not be fully displayed: preparing the view took too long. Below is the beginning of the mail's source as plain text (no HTML, no attachments).",
    ),
    "admin.title": L("保留メール一覧", "Held mail"),
    "admin.login": L("管理者ログイン", "Administrator login"),
    "admin.user": L("ユーザー名", "User name"),
    "admin.password": L("パスワード", "Password"),
    "admin.submit_login": L("ログイン", "Log in"),
    "admin.logout": L("ログアウト", "Log out"),
    "admin.bad_login": L("ユーザー名またはパスワードが違います。", "Wrong user name or password."),
    "admin.no_users": L(
        "管理者ユーザーファイルが設定されていません (web.admin_users_file)。",
        "No administrators' users file is configured (web.admin_users_file).",
    ),
    "admin.same_as_smtp": L(
        "web.admin_users_file ({path}) が SMTP AUTH のユーザーファイルと同じです。すべてのメール利用者が管理者になり、誰の保留メールでも送信できてしまうため、起動できません。管理者用に別のファイルを作成してください (leakguard users add --file 管理者ファイル)。",
        "web.admin_users_file ({path}) is the SMTP AUTH users file. Every mail user would become an administrator able to release anyone's held mail, so leakguard refuses to start. Create a separate file for administrators (leakguard users add --file ADMIN-FILE).",
    ),
    "admin.filter": L("絞り込み", "Filter"),
    "admin.any": L("すべて", "any"),
    "admin.sender": L("差出人", "Sender"),
    "admin.incidents": L("このメールのインシデント", "Incidents filed for this mail"),
    "admin.older_than": L("経過時間 (例: 1h, 2d) 以上", "Older than (e.g. 1h, 2d)"),
    "admin.created": L("保留日時", "Held at"),
    "admin.none": L("該当する保留はありません。", "No holds match."),
    # ---- states
    "state.held": L("保留中", "held"),
    "state.delayed": L("送信待機中", "delayed"),
    "state.released": L("送信済み", "released"),
    "state.released_bcc": L("BCCで送信済み", "released as Bcc"),
    "state.discarded": L("破棄", "discarded"),
    "state.expired": L("期限切れ (破棄)", "expired (discarded)"),
    # ---- outcomes and refusals (reply confirmations, page results, CLI)
    "res.released": L("送信しました。", "The mail was released and is being sent."),
    "res.released_bcc": L(
        "宛先をBCCにして送信しました。", "The mail was released with the recipients in Bcc."
    ),
    "res.discarded": L(
        "破棄しました。メールは送信されません。", "The mail was discarded. It will not be sent."
    ),
    "err.unknown_hold": L("該当する保留が見つかりません。", "No such hold."),
    "err.closed": L(
        "このメールはすでに処理されています ({state})。", "This mail was already handled ({state})."
    ),
    "err.not_entitled": L(
        "あなたはこのメールの差出人でも承認者でもないため、操作できません。何も変更していません。",
        "You are neither the sender nor an approver of this mail, so you cannot answer it. Nothing was changed.",
    ),
    "err.needs_approval": L(
        "このメールは承認が必要です。送信できるのは承認者 ({approvers}) だけです。取り下げ (破棄) はできます。",
        "This mail needs approval: only an approver ({approvers}) can release it. You can still withdraw (discard) it.",
    ),
    "err.bad_token": L(
        "このリンク/返信先は無効です (期限切れ、使用済み、または不正)。何も変更していません。",
        "This link or reply address is not valid (expired, already used, or forged). Nothing was changed.",
    ),
    "err.no_command": L(
        "コマンドが読み取れませんでした。返信の1行目に「送信」「BCC」「破棄」のどれか (誤送信の報告は「報告」) を書いてください。何も変更していません。",
        "No command was recognised. Write release, bcc or discard (or report, to report a mistake) on the first line of your reply. Nothing was changed.",
    ),
    "err.unclear_command": L(
        "内容を判断できませんでした。何も変更していません。返信の本文には、次のどれか1語だけを書いてください: 「送信」「BCC」「破棄」。誤送信の報告は1行目に「報告」とだけ書き、説明は次の行から書いてください。(否定・条件・質問などの文が一緒に書かれていると、安全のため実行しません。)",
        "Your reply could not be read as a clear command, so nothing was changed. Reply with one word only: release, bcc or discard. To report a mistake, write report alone on the first line and your note on the next lines. (A reply with a negation, a condition, a question or other text next to the command is never executed.)",
    ),
    "err.bcc_rewrite_budget": L(
        "このメールは、宛先をBCCに移す処理に時間がかかりすぎたため、BCCで送信できませんでした。保留はそのまま残っています。「送信」か「破棄」を選ぶか、管理者に相談してください。",
        "This mail could not be released as Bcc: moving its recipients to Bcc took too long. The hold stays as it is. Release or discard it, or ask an administrator.",
    ),
    "err.bcc_unavailable": L(
        "BCCでの送信はこのメールでは使えません。", "Release as Bcc is not available for this mail."
    ),
    "who.timer": L("タイマー (自動)", "the timer (automatic)"),
    "who.admin": L("管理者 {name}", "administrator {name}"),
}


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
