# ruff: noqa: E501  (a catalogue of sentences: one per line reads best)
"""Japanese ``--help`` for every command, and argparse's own words in Japanese.

The command modules write their help in English. Under a Japanese locale
(``LEAKGUARD_LANG``, ``LC_ALL``, ``LC_MESSAGES`` or ``LANG`` = ``ja_*``) ``localize`` walks the
finished parser tree and replaces every description and help text by its Japanese version
from ``HELP_JA``; argparse's headings ("usage:", "options:") and its error messages are
translated by ``JapaneseArgumentParser``. ``tests/test_cli_help.py`` fails when a help text
has no Japanese version, so a new flag cannot ship with English-only help.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from typing import NoReturn

HELP_JA: dict[str, str] = {
    # leakguard
    "Pre-send email leak guard: an SMTP relay that checks outgoing mail.": "送信前メール誤送信対策: 送信メールを確認する SMTP リレーです。",
    "show this help message and exit": "このヘルプを表示して終了する",
    "show program's version number and exit": "バージョンを表示して終了する",
    "dry run: show what the relay would do with saved mails and why": "試験実行: 保存したメールをリレーがどう扱うか、その理由とともに表示する",
    "validate, export schema, test": "ポリシーの検証、スキーマ出力、テスト",
    "run the SMTP relay and the web server": "SMTP リレーと Web サーバーを動かす",
    "manage SMTP AUTH users (argon2 users file)": "SMTP AUTH のユーザーを管理する (argon2 のユーザーファイル)",
    "list, show and answer held mail (administrators)": "保留メールの一覧・表示・操作 (管理者用)",
    "show help on a topic, in Japanese or English": "トピック別の説明を日本語または英語で表示する",
    "print the configuration reference (docs/configuration.md), generated from the configuration model": "設定項目の一覧 (docs/configuration.md) を設定モデルから生成して表示する",
    # backup / restore
    "write the store, web secret and configuration to one archive": "ストア・Web の秘密鍵・設定を1つのアーカイブに書き出す",
    "Back up a running service: a consistent snapshot of the store (SQLite online backup or pg_dump), the web secret, the users file and the configuration, policy and organisation files, into one .tar.gz (mode 0600).": "稼働中のサービスをバックアップします: ストアの一貫したスナップショット (SQLite のオンラインバックアップまたは pg_dump)、Web の秘密鍵、ユーザーファイル、設定・ポリシー・組織ファイルを1つの .tar.gz (モード 0600) にまとめます。",
    "file to write (.tar.gz)": "書き出すファイル (.tar.gz)",
    "restore a backup into an empty data directory / database": "バックアップを空のデータディレクトリ/データベースに復元する",
    "Restore a backup made by 'leakguard backup' into the data directory and store of the named configuration (stop the service first). An older backup is upgraded to this release's schema.": "'leakguard backup' で作ったバックアップを、指定した設定のデータディレクトリとストアに復元します (先にサービスを停止してください)。古いバックアップはこのリリースのスキーマに更新されます。",
    "overwrite an existing store and secret": "既存のストアと秘密鍵を上書きする",
    "also write the configuration files here": "設定ファイルもここに書き出す",
    "service configuration (default $LEAKGUARD_CONFIG, then /etc/leakguard/leakguard.yaml when it exists)": "サービスの設定ファイル (既定: $LEAKGUARD_CONFIG、なければ /etc/leakguard/leakguard.yaml)",
    # incidents
    "report mistakes, list incidents, print the incident record (officers)": "誤送信の報告、インシデントの一覧、インシデント記録の出力 (担当者用)",
    "Incident reports and near-miss alerts: file a report, list incidents, print the record (text, Markdown, PDF), tick follow-ups, close.": "誤送信の報告とヒヤリハットの警告: 報告の登録、一覧、記録の出力 (テキスト・Markdown・PDF)、事後対応の記録、完了。",
    "report a mail that went out by mistake": "誤って送ったメールを報告する",
    "the journal id of the mail (M-...)": "メールの記録 ID (M-...)",
    "the hold id of the mail (H-...)": "メールの保留 ID (H-...)",
    "what went wrong (no identifiers, please)": "何が問題だったか (マイナンバーなどの番号は書かないでください)",
    "list incidents (newest first)": "インシデントを一覧する (新しい順)",
    "only incidents still open": "対応中のインシデントのみ",
    "one JSON object per line": "1行に1つの JSON オブジェクトで出力する",
    "print the incident record": "インシデント記録を出力する",
    "incident id, e.g. I-ABCDE12345": "インシデント ID (例: I-ABCDE12345)",
    "output format": "出力形式",
    "write to this file instead of stdout": "標準出力ではなくこのファイルに書き出す",
    "language (default: from the locale)": "言語 (既定: ロケールから)",
    "tick off a follow-up action": "事後対応を済みにする",
    "the follow-up action": "事後対応の種類",
    "untick it": "済みを取り消す",
    "close an incident": "インシデントを完了にする",
    "reopen an incident": "インシデントを再開する",
    # check
    "Run the detectors and the policy on .eml files without sending anything.": ".eml ファイルに検出とポリシーを適用します。何も送信しません。",
    "policy file (default: policies/default.yaml)": "ポリシーファイル (既定: policies/default.yaml)",
    "organisation file; replaces the policy's": "組織ファイル (ポリシー内の組織情報の代わりに使う)",
    "envelope sender (default: From)": "エンベロープの差出人 (既定: From)",
    "envelope recipient; repeat for several (default: To + Cc + Bcc)": "エンベロープの宛先 (複数なら繰り返し指定。既定: To + Cc + Bcc)",
    "mail files, or directories of .eml files (with an optional envelopes.jsonl)": "メールファイル、または .eml ファイルのディレクトリ (envelopes.jsonl があればそれも読む)",
    'per-mail envelopes, one JSON object a line: {"file":…, "sender":…, "rcpt":[…]}': 'メールごとのエンベロープ (1行に1つの JSON: {"file":…, "sender":…, "rcpt":[…]})',
    "one JSON object per line per message": "メール1通ごとに JSON オブジェクトを1行で出力する",
    # policy
    "Tools for policy files: validate them, export their JSON Schema, run their test cases.": "ポリシーファイルの道具: 検証、JSON Schema の出力、テストケースの実行。",
    "check policy files; errors name file:line:column": "ポリシーファイルを検証する (誤りは ファイル:行:桁 で示す)",
    "print the JSON Schema of policy files (for editors)": "ポリシーファイルの JSON Schema を出力する (エディター用)",
    "run test cases: a policy file's tests: list, or directories of .eml cases": "テストケースを実行する: ポリシーファイルの tests: の一覧、または .eml のテストケースのディレクトリ",
    "Run policy test cases like unit tests. A policy file runs its tests: list; a directory runs every .eml file in it (subdirectories too) against --policy, each with its expected outcome in a sidecar NAME.eml.yaml or in X-Leakguard-Expect headers. Exit status 1 when a case fails, 2 on usage errors.": "ポリシーのテストケースを単体テストのように実行します。ポリシーファイルはその tests: の一覧を、ディレクトリはその中 (サブディレクトリも含む) のすべての .eml ファイルを --policy で判定します。期待する結果は各メールのサイドカー NAME.eml.yaml か X-Leakguard-Expect ヘッダーに書きます。不合格のケースがあれば終了コード 1、使い方の誤りは 2 です。",
    "policy files, directories of .eml cases, or single .eml cases": "ポリシーファイル、.eml のテストケースのディレクトリ、または1件の .eml テストケース",
    "policy for directory cases (default: the embedded default policy)": "ディレクトリのテストケースに使うポリシー (既定: 組み込みの既定ポリシー)",
    "run only cases whose path (inside the folder) contains SUBSTRING; repeat for several": "(ディレクトリ内の) パスに SUBSTRING を含むテストケースだけを実行する (複数なら繰り返し指定)",
    "processes running cases (default: 1 below 200 cases, else up to 4)": "テストケースを実行するプロセス数 (既定: 200 件未満なら 1、それ以上なら最大 4)",
    "one JSON object per line per case": "テストケースごとに JSON オブジェクトを1行で出力する",
    "also write JUnit XML to FILE": "JUnit XML を FILE にも書き出す",
    "schema of organisation files": "組織ファイルのスキーマを出力する",
    "policy files": "ポリシーファイル",
    # serve
    "Run the SMTP relay and the web server. Flags override the config file.": "SMTP リレーと Web サーバーを動かします。オプションは設定ファイルより優先します。",
    "service configuration (YAML); default $LEAKGUARD_CONFIG, then /etc/leakguard/leakguard.yaml when it exists, else built-in defaults": "サービスの設定ファイル (YAML)。既定は $LEAKGUARD_CONFIG、次に /etc/leakguard/leakguard.yaml (あれば)、なければ組み込みの既定値",
    "plain SMTP listener (trusted networks only; loopback is trusted)": "平文の SMTP 待ち受け (信頼するネットワークのみ。ループバックは信頼する)",
    "smarthost to relay to (default: local maildir under the data dir)": "中継先のスマートホスト (既定: データディレクトリ内のローカル maildir)",
    "policy file": "ポリシーファイル",
    "organisation file": "組織ファイル",
    "data directory": "データディレクトリ",
    "web server address": "Web サーバーの待ち受けアドレス",
    "public URL of the web server used in notice links (default: derived from --web-listen)": "通知のリンクに使う Web サーバーの公開 URL (既定: --web-listen から決める)",
    "log JSON lines (default: JSON unless on a terminal)": "ログを JSON 行で出力する (既定: 端末以外では JSON)",
    "least important level logged": "記録する最も低いログレベル",
    "worker processes serving the same ports (1-64, or 'auto': one per CPU core)": "同じポートで待ち受けるワーカープロセスの数 (1〜64、または 'auto': CPU コアごとに1つ)",
    # users
    "Manage the users file used for SMTP AUTH and the administrators' web view.": "SMTP AUTH と管理者用 Web 画面で使うユーザーファイルを管理します。",
    "service configuration (finds the file)": "サービスの設定ファイル (ユーザーファイルの場所を知るため)",
    "users file (default: the service's, found like holds: -c, $LEAKGUARD_CONFIG, /etc/leakguard/leakguard.yaml, the data directory)": "ユーザーファイル (既定: サービスのもの。holds と同じく -c、$LEAKGUARD_CONFIG、/etc/leakguard/leakguard.yaml、データディレクトリの順に探す)",
    "add a user or change a password": "ユーザーを追加する、またはパスワードを変える",
    "remove a user": "ユーザーを削除する",
    "list users": "ユーザーを一覧する",
    "login name, normally the user's mail address": "ログイン名 (通常は利用者のメールアドレス)",
    "further sender address the user may use (shared mailbox; *@domain)": "この利用者が差出人に使える別のアドレス (共有メールボックス、*@ドメイン)",
    "read the password from the first line of standard input": "パスワードを標準入力の1行目から読む",
    "login name to remove": "削除するログイン名",
    # replay
    "decide saved mail again under a new policy and show what would change": "保存したメールを新しいポリシーで判定し直し、何が変わるかを表示する",
    "Decide every mail of the sources under the new policy and under the baseline, and show the difference by action, rule, department and sender. Nothing is sent.": "指定したメールをすべて新しいポリシーと比較元のポリシーで判定し、その違いを動作・ルール・部署・差出人ごとに表示します。何も送信しません。",
    "a maildir (cur/new), an mbox file, a directory of .eml files, or one .eml file": "maildir (cur/new)、mbox ファイル、.eml ファイルのディレクトリ、または1つの .eml ファイル",
    "new policy": "新しいポリシー",
    "policy to compare with (default: the service's policy, else policies/default.yaml)": "比較元のポリシー (既定: サービスが使っているポリシー、なければ policies/default.yaml)",
    "service configuration (finds the baseline policy and the attachment limits)": "サービスの設定ファイル (比較元のポリシーと添付ファイルの制限を知るため)",
    "organisation file for both policies; replaces theirs": "両方のポリシーに使う組織ファイル (ポリシー内の組織情報の代わりに使う)",
    "worker processes (default: the number of CPUs)": "処理プロセスの数 (既定: CPU の数)",
    "senders listed (default 20)": "表示する差出人の数 (既定 20)",
    "example mails shown per rule (default 3)": "ルールごとに表示するメールの例の数 (既定 3)",
    "write the report as one JSON object instead": "結果を1つの JSON オブジェクトで出力する",
    "write every changed mail to this file, one JSON object a line": "判定が変わったメールをすべてこのファイルに書き出す (1行に1つの JSON)",
    "exit with status 3 when any decision changed (for CI)": "判定が1通でも変わったら終了コード 3 で終わる (CI 用)",
    "no progress bar (a final summary line only)": "進捗バーを表示しない (最後に要約を1行だけ表示する)",
    "time allowed for one mail's decision; a slower mail counts as an error": "メール1通の判定に使える時間 (秒)。超えたメールはエラーとして数える",
    # holds
    "Administer held mail: the same rules and audit trail as web and reply.": "保留メールを管理します。Web や返信と同じ規則で操作し、同じ記録を残します。",
    "service configuration; default $LEAKGUARD_CONFIG, then /etc/leakguard/leakguard.yaml, then make run's data directory": "サービスの設定ファイル。既定は $LEAKGUARD_CONFIG、次に /etc/leakguard/leakguard.yaml、次に make run のデータディレクトリ",
    "data directory (overrides the configuration)": "データディレクトリ (設定ファイルより優先)",
    "replay what the relay decided since then, from its retained mail (the store)": (
        "その時点以降にリレーが判定したメールを、保存メール (ストア) から再判定する"
    ),
    "end of the period replayed from the store (default: now)": (
        "ストアから再判定する期間の終わり (既定: 現在)"
    ),
    "list holds (newest first)": "保留を一覧する (新しい順)",
    "print a hold and its timeline (for incident reports)": "保留の内容と経過を表示する (事故報告用)",
    "send the held mail": "保留メールを送信する",
    "send it with the recipients moved to Bcc": "宛先を BCC にして送信する",
    "discard it": "破棄する",
    "only holds in this state (repeatable)": "この状態の保留だけ (複数回指定できる)",
    "only mail from this envelope sender": "このエンベロープ差出人のメールだけ",
    "only holds where this rule matched": "このルールに一致した保留だけ",
    "only holds older than this, e.g. 2h, 3d": "これより古い保留だけ (例: 2h, 3d)",
    "at most this many (default 200)": "最大件数 (既定 200)",
    "one JSON object per line instead of the TSV table": "TSV の表の代わりに、1件ごとに JSON オブジェクトを1行で出力する",
    "hold id, e.g. H-ABCDE12345": "保留ID (例: H-ABCDE12345)",
    "administrator name recorded (default: login)": "記録する管理者名 (既定: ログイン名)",
    "note recorded in the timeline": "経過に記録するメモ",
    # stats
    "what each rule does: holds, releases, release rate, per rule or department": "各ルールの働き (保留・送信・送信率など) をルール別または部署別に表示する",
    "Statistics from the decision journal and the holds: holds, releases, release as Bcc, discards, expiries, median time to release, release rate (a proxy for false positives), Bcc rewrites, audit-only hits, delays and rejects.": "判定記録と保留から集計した統計です: 保留、送信、Bcc での送信、破棄、期限切れ、送信までの時間の中央値、送信率 (誤検知の目安)、Bcc 変換、監査のみの該当、遅延、拒否。",
    "start of the period: a duration back from now (7d, 12h) or a date (default 30d)": "期間の始まり: 現在からさかのぼる長さ (7d, 12h) または日付 (既定 30d)",
    "end of the period: a date (included) or date and time (default now)": "期間の終わり: 日付 (その日を含む) または日時 (既定: 現在)",
    "one JSON object instead of the table": "表の代わりに JSON オブジェクトを1つ出力する",
    "one row per rule (default) or per department": "ルールごと (既定) または部署ごとに1行",
    "flag a rule as noisy from this release rate (default 0.8)": "送信率がこの値以上のルールを「要見直し」とする (既定 0.8)",
    "... when at least this many of its holds were answered (default 10)": "… ただし回答済みの保留がこの件数以上のとき (既定 10)",
    "what an audit-mode rule would have done, and how those mails were answered": "監査モードのルールが何をしたはずか、そのメールが実際どう扱われたかを表示する",
    "The audit-first rollout report of one rule in mode: audit.": "mode: audit のルール1つについて、本番適用前の確認用の報告を表示します。",
    "rule id": "ルールID",
    "how many example mails to list (default 10)": "例として表示するメールの件数 (既定 10)",
    # help, config
    "Explain one part of leakguard (serve, policy, holds, check, config, postfix, logs), in the reader's language.": "leakguard の各部分 (serve, policy, holds, check, config, postfix, logs) を読み手の言語で説明します。",
    "topic; without it, the list of topics": "トピック (省略するとトピックの一覧)",
    "language (default: from LEAKGUARD_LANG / LANG)": "言語 (既定: LEAKGUARD_LANG / LANG から)",
    "The service configuration (leakguard.yaml): its reference, generated from the model.": "サービスの設定 (leakguard.yaml): 設定モデルから生成した項目一覧。",
    "write the Markdown reference of every option, default and example": "すべての設定項目・既定値・例を Markdown で出力する",
    "write to this file instead of standard output": "標準出力の代わりにこのファイルへ書く",
}

_HEADINGS = {
    "positional arguments": "引数",
    "options": "オプション",
    "optional arguments": "オプション",
}

_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), ja)
    for p, ja in (
        (r"^the following arguments are required: (.*)$", "次の引数が必要です: {0}"),
        (r"^unrecognized arguments: (.*)$", "解釈できない引数です: {0}"),
        (
            r"^argument (\S+): invalid choice: (.*?) \(choose from (.*)\)$",
            "引数 {0}: {1} は選べません (選べるもの: {2})",
        ),
        (r"^argument (\S+): expected one argument$", "引数 {0} には値が1つ必要です"),
        (r"^argument (\S+): expected at least one argument$", "引数 {0} には値が1つ以上必要です"),
        (
            r"^argument (\S+): invalid (\S+) value: (.*)$",
            "引数 {0}: {2} は正しい値ではありません ({1})",
        ),
        (
            r"^argument (\S+): not allowed with argument (\S+)$",
            "引数 {0} は {1} と一緒に使えません",
        ),
    )
)


def error_ja(message: str) -> str:
    for pat, ja in _ERRORS:
        m = pat.match(message)
        if m:
            return ja.format(*m.groups())
    return message


class _JapaneseFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, prefix="使い方: " if prefix is None else prefix)

    def start_section(self, heading):  # type: ignore[no-untyped-def]
        super().start_section(_HEADINGS.get(heading or "", heading))


class JapaneseArgumentParser(argparse.ArgumentParser):
    """argparse with Japanese headings and error messages (help texts: ``localize``)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _JapaneseFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: エラー: {error_ja(message)}\n")


def walk(parser: argparse.ArgumentParser) -> Iterator[tuple[object, str, str]]:
    """(holder, attribute, text) for every description and help text in the tree."""
    if parser.description:
        yield parser, "description", parser.description
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            yield action, "help", action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.help:
                    yield choice, "help", choice.help
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) not in seen:  # aliases share one parser
                    seen.add(id(sub))
                    yield from walk(sub)


def missing_translations(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({text for _h, _a, text in walk(parser) if text not in HELP_JA})


def localize(parser: argparse.ArgumentParser) -> None:
    """Replace every help text by its Japanese version (English where none exists)."""
    for holder, attr, text in list(walk(parser)):
        setattr(holder, attr, HELP_JA.get(text, text))
