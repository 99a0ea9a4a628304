"""Reply commands execute only when the reply plainly says so (issue 12: no reply may mean
its opposite). Negations, conditions, questions and other text ask back; quoted text and
signatures are not read as commands."""

from __future__ import annotations

import base64

import pytest

from leakguard.holds.commands import Decision, Unclear, read_command, read_reply

R, B, D = Decision.RELEASE, Decision.RELEASE_BCC, Decision.DISCARD


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("送信", R),
        ("送信。", R),
        ("　送信　\n", R),
        ("送信してください", R),
        ("送信をお願いします。", R),
        ("承認", R),
        ("承認します", R),
        ("ＲＥＬＥＡＳＥ", R),
        ("Release.", R),
        ("OK", R),
        ("yes", R),
        ("BCC", B),
        ("ｂｃｃで送信", B),
        ("release as bcc", B),
        ("破棄", D),
        ("キャンセル", D),
        ("discard", D),
        ("Discard\n> release", D),
        ("> release\n\n破棄", D),
    ],
)
def test_plain_commands(text: str, expected: Decision) -> None:
    assert read_command(text).decision == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("送信　しないでください", Unclear.NEGATION),
        ("送信しないで", Unclear.NEGATION),
        ("送信しません", Unclear.NEGATION),
        ("送信は不要です", Unclear.NEGATION),
        ("送信、待ってください", Unclear.NEGATION),
        ("送信はやめてください", Unclear.NEGATION),
        ("承認　しません", Unclear.NEGATION),
        ("承認できません", Unclear.NEGATION),
        ("Send nothing yet please", Unclear.NEGATION),
        ("Don't release", Unclear.NEGATION),
        ("do not send", Unclear.NEGATION),
        ("OK, but wait until I have checked", Unclear.NEGATION),
        ("release after I check the list", Unclear.CONDITION),
        ("確認してから送信", Unclear.CONDITION),
        ("上司に確認後に送信してください", Unclear.CONDITION),
        ("送信しても大丈夫ですか？", Unclear.NEGATION),  # ない/ません-free question forms below
        ("送信していいですか", Unclear.QUESTION),
        ("release?", Unclear.QUESTION),
        ("please release it to the first two only", Unclear.OTHER_TEXT),
        ("送信\n宛先を1件削除してから", Unclear.CONDITION),
        ("送信\nでも添付が違うかも", Unclear.OTHER_TEXT),
        ("送信\n\n破棄", Unclear.SEVERAL),
        ("送信\n\nThe attachment is wrong, though.", Unclear.OTHER_TEXT),
        ("送信\n\nやっぱり待ってください。", Unclear.NEGATION),
    ],
)
def test_anything_around_the_command_asks_back(text: str, why: Unclear) -> None:
    r = read_command(text)
    assert r.decision is None
    assert r.asks_back
    if why is not Unclear.NEGATION or r.unclear is Unclear.NEGATION:
        assert r.unclear in (
            why,
            Unclear.NEGATION,
            Unclear.CONDITION,
            Unclear.QUESTION,
            Unclear.OTHER_TEXT,
            Unclear.SEVERAL,
        )


def test_negations_never_release_whatever_the_class() -> None:
    for text in (
        "送信　しないでください",
        "承認　しません",
        "OK, but wait until I have checked",
        "Send nothing yet please",
        "送信不要",
        "送信 NG",
        "送信はまだです",
        "いいえ、送信しません",
    ):
        assert read_command(text).decision is None, text


@pytest.mark.parametrize(
    "signature",
    [
        "--\n山田 太郎\n〇〇市役所 総務部 総務課\nTEL: 03-1234-5678\nyamada@city.example.lg.jp",
        "\n山田 太郎\n〇〇市役所 総務部 総務課\nTEL 03-1234-5678",
        "\n━━━━━━━━━━━━\n山田 太郎 (Taro Yamada)\n━━━━━━━━━━━━",
        "\niPhoneから送信",
        "\nSent from my iPhone",
        "\nTaro Yamada | General Affairs\nCity of Example",
    ],
)
def test_command_with_a_signature(signature: str) -> None:
    assert read_command("送信\n" + signature).decision == R


def test_command_then_quoted_original_in_client_formats() -> None:
    quotes = [
        "\n\n2025年2月17日(月) 10:00 山田太郎 <yamada@city.example.lg.jp>:\n> 送信しないで",
        "\n\n-----Original Message-----\nFrom: leakguard\nSent: Monday\n送信",
        "\n\n________________________________\n差出人: leakguard\n送信日時: 2025年2月17日\n",
        "\n\nOn Mon, Feb 17, 2025 at 10:00 AM leakguard <hold@x.example> wrote:\n> release",
        "\n\n山田太郎 さんは書きました:\n> 破棄",
    ]
    for q in quotes:
        assert read_command("破棄" + q).decision == D, q


def _mail(body: bytes, ctype: str = "text/plain; charset=utf-8", cte: str = "8bit") -> bytes:
    return (
        b"From: sato@city.example.lg.jp\r\nTo: hold+x@leakguard.example\r\n"
        b"Subject: Re: hold\r\nContent-Type: " + ctype.encode() + b"\r\n"
        b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n" + body
    )


def test_html_only_reply_with_command_only_inside_blockquote_does_not_release() -> None:
    html = (
        b"<html><body><div>\xe3\x81\x82\xe3\x82\x8a\xe3\x81\x8c\xe3\x81\xa8\xe3\x81\x86</div>"
        b"<blockquote type=cite><p>release</p></blockquote></body></html>"
    )
    reading, _ = read_reply(_mail(html, "text/html; charset=utf-8"))
    assert reading.decision is None
    gmail = (
        b'<div dir="ltr"><br></div><div class="gmail_quote"><p>\xe9\x80\x81\xe4\xbf\xa1</p></div>'
    )
    reading, _ = read_reply(_mail(gmail, "text/html; charset=utf-8"))
    assert reading.decision is None and not reading.asks_back
    outlook = (
        b"<div>discard</div><hr><div id=divRplyFwdMsg><b>From:</b> leakguard</div>"
        b"<div>release</div>"
    )
    reading, _ = read_reply(_mail(outlook, "text/html; charset=utf-8"))
    assert reading.decision == D


def test_charsets_and_encodings() -> None:
    iso = "送信　しないでください".encode("iso-2022-jp")
    reading, _ = read_reply(_mail(iso, "text/plain; charset=ISO-2022-JP", "7bit"))
    assert reading.decision is None and reading.asks_back
    sjis = base64.b64encode("ＢＣＣ\r\n\r\n--\r\n佐藤".encode("cp932"))
    reading, _ = read_reply(_mail(sjis, "text/plain; charset=Shift_JIS", "base64"))
    assert reading.decision == B
    qp = b"=E9=80=81=E4=BF=A1=E3=81=97=E3=81=BE=E3=81=9B=E3=82=93\r\n"  # 送信しません
    reading, _ = read_reply(_mail(qp, "text/plain; charset=utf-8", "quoted-printable"))
    assert reading.decision is None and reading.asks_back


def test_long_or_hostile_text_is_bounded() -> None:
    assert read_command("送信\n" + "あ" * 100_000).decision is None
    assert read_command("\n" * 1_000_000 + "送信").decision is None  # past the line bound
    reading, _ = read_reply(b"\xff\xfe" * 500_000)
    assert reading.decision is None


def test_html_bomb_reply_is_read_in_bounded_time() -> None:
    import time

    bomb = b"<div>" * 200_000 + b"\xe9\x80\x81\xe4\xbf\xa1"  # 200k nested divs, then 送信
    t0 = time.perf_counter()
    reading, _ = read_reply(_mail(bomb, "text/html; charset=utf-8"))
    assert time.perf_counter() - t0 < 5.0
    assert reading.decision is None


@pytest.mark.parametrize(
    "text",
    [
        # found by the security review: each released before
        "送信\n・・・しないでください。やっぱり待ってください。",
        "送信\n\n・・・と書きましたが、やはり送らないでください。",
        "OK\n〜〜〜 ただし添付を外してから 〜〜〜",
        "承認\n*** 宛先を確認するまで待って ***",
        "送信\n=== 注意：田中さん宛は除外 ===",
        "Send\nbut wait, first read what Tanaka wrote:\nhe says the list is wrong",
        "送信\n待ってください。佐藤さんのメール：\n宛先が違います",
        "Release\nSent from my phone - do not release yet",
        "Send\n\nScratch that",
        "了解",
        "OK…",
        "OK...",
        "送らないでください",
    ],
)
def test_review_bypasses_ask_back(text: str) -> None:
    r = read_command(text)
    assert r.decision is None and r.asks_back, (text, r)


def test_split_plain_parts_and_indented_html_are_read_whole() -> None:
    def mk(parts: list[tuple[str, str]]) -> bytes:
        body = "".join(f"--B\r\n{h}\r\n\r\n{c}\r\n" for h, c in parts)
        return (
            "From: kazuya.sato@city.example.lg.jp\r\nTo: hold@relay\r\nSubject: Re: held\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
            f"{body}--B--\r\n"
        ).encode()

    split = mk(
        [
            ("Content-Type: text/plain; charset=utf-8", "送信"),
            ("Content-Type: image/png\r\nContent-Disposition: inline; filename=a.png", "x"),
            ("Content-Type: text/plain; charset=utf-8", "しないでください"),
        ]
    )
    assert read_reply(split)[0].decision is None
    indent = mk(
        [
            (
                "Content-Type: text/html; charset=utf-8",
                "<div>送信</div><blockquote style='margin:0 0 0 40px'>"
                "送らないでください</blockquote>",
            )
        ]
    )
    assert read_reply(indent)[0].decision is None


# ---------------------------------------------------------------------- report commands
# (issue 9) 「報告」/"report" files a report; 「誤送信」/"mistake" discards an open hold as a
# mistake (a report when the hold is closed). The same strictness as the other commands.

from leakguard.holds.commands import Report  # noqa: E402

REP, MIS = Report.REPORT, Report.MISTAKE


@pytest.mark.parametrize(
    ("text", "kind", "note"),
    [
        ("報告", REP, ""),
        ("報告。", REP, ""),
        ("　報告します\n", REP, ""),
        ("ＲＥＰＯＲＴ", REP, ""),
        ("Report a mistake", REP, ""),
        ("誤送信を報告します", REP, ""),
        ("報告: 宛先を間違えました", REP, "宛先を間違えました"),
        ("報告：宛先を間違えました", REP, "宛先を間違えました"),
        ("報告 別の会社に送ってしまいました。", REP, "別の会社に送ってしまいました。"),
        ("report\nSent to the wrong city.\nSorry!", REP, "Sent to the wrong city.\nSorry!"),
        ("Report: Wrong Client", REP, "Wrong Client"),
        (
            "報告\n\n添付が別の方の書類でした。\n--\n山田 太郎\n総務課",
            REP,
            "添付が別の方の書類でした。",
        ),
        ("報告\niPhoneから送信", REP, ""),
        ("> 送信\n\n報告", REP, ""),
        ("誤送信", MIS, ""),
        ("誤送信でした", MIS, ""),
        ("破棄（誤送信でした）", MIS, ""),
        ("mistake", MIS, ""),
        ("It was a mistake.", MIS, ""),
        ("誤送信\n宛先が違います", MIS, "宛先が違います"),
    ],
)
def test_report_commands(text: str, kind: Report, note: str) -> None:
    r = read_command(text)
    assert r.decision is None and r.report == kind, r
    assert r.note == note
    assert not r.asks_back


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("報告しないで", Unclear.NEGATION),
        ("報告しないでください", Unclear.NEGATION),
        ("報告 しないで", Unclear.NEGATION),
        ("報告は不要です", Unclear.NEGATION),
        ("報告はやめてください", Unclear.NEGATION),
        ("報告\nやっぱりやめます", Unclear.NEGATION),
        ("報告\n\nやっぱり待ってください。", Unclear.NEGATION),
        ("誤送信ではありません", Unclear.NEGATION),
        ("誤送信じゃない", Unclear.NEGATION),
        ("Don't report", Unclear.NEGATION),
        ("do not report this", Unclear.NEGATION),
        ("report: not needed", Unclear.NEGATION),
        ("no mistake", Unclear.NEGATION),
        ("not a mistake", Unclear.NEGATION),
        ("報告 後で", Unclear.CONDITION),
        ("report later", Unclear.CONDITION),
        ("report if the client complains", Unclear.CONDITION),
        ("報告ですか", Unclear.QUESTION),
        ("報告しますか？", Unclear.QUESTION),
        ("report?", Unclear.QUESTION),
        ("mistake?", Unclear.QUESTION),
        ("報告: 必要でしょうか", Unclear.QUESTION),
        ("報告\n送信", Unclear.SEVERAL),
        ("誤送信\n\n送信", Unclear.SEVERAL),
        ("送信\n\n報告", Unclear.SEVERAL),
        ("破棄\n\nreport", Unclear.SEVERAL),
        ("報告書を送ります", Unclear.OTHER_TEXT),
        ("reporting", Unclear.OTHER_TEXT),
    ],
)
def test_report_commands_are_read_strictly(text: str, why: Unclear) -> None:
    r = read_command(text)
    assert r.decision is None and r.report is None, r
    assert r.asks_back and r.unclear is why, r


def test_a_quoted_report_is_not_a_report() -> None:
    for text in ("> 報告\n", "> report\n> 誤送信\n", "\n\n-----Original Message-----\n報告"):
        r = read_command(text)
        assert r.report is None and not r.asks_back, text
