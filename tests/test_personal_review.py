"""Personal-data detector: the findings of the issue 7 review (each case failed before).

Quadratic scans, lists of My Numbers under a column header, organisation account holders,
identifiers in a "signature", the nearest label winning over a negative word, a stub plain
part hiding the HTML, numbered labels, the Subject, 記入例 values, and masking for pages.
"""

from __future__ import annotations

import base64
import time
from email.header import Header

import pytest
from test_personal import CTX, facts_of, kinds, mail

from leakguard.detectors.forms import find_forms
from leakguard.detectors.personal import detect, identifier_keys, normalize, scan_text
from leakguard.masking import mask_identifiers, redact_text
from leakguard.message.parse import parse_message

MN2 = "123456789018"  # valid check digits
MN3 = "987654321093"


def _h(s: str) -> str:
    return Header(s, "utf-8").encode()


# --------------------------------------------------------------------------- 1. linear scans


def _cpu(text: str) -> float:
    scan_text("〒160-0023 " * 100, "", "text part 1")  # warm up
    t0 = time.process_time()
    scan_text(text, "", "text part 1")
    return time.process_time() - t0


def test_postal_code_scan_is_linear_on_one_long_line() -> None:
    """12 MB of 「〒160-0023 」 took 21 s: the zip-on-its-own-line check searched for the
    next newline from every candidate (2 MB on one line: 5.5 s CPU before, 0.35 s after)."""
    assert _cpu("〒160-0023 " * 200_000) < 2.5


def test_bank_context_lookahead_is_bounded_on_one_long_line() -> None:
    """The holder check reads "the two lines below" from the precomputed line starts, not by
    searching for newlines along a long line: 5,000 accounts on one line stay well under a
    second of CPU (a bound on the per-candidate work, which is capped at 20,000)."""
    line = "みずほ銀行 新宿支店 普通 1234567 "
    small = _cpu(line * 2_000 + "\n末尾\n")
    large = _cpu(line * 8_000 + "\n末尾\n")
    # linear (4x the input, well under 8x the time: quadratic work would be 16x), and
    # bounded in absolute terms even on a loaded machine (about 1 s here when idle)
    assert large < 8 * max(small, 0.05), (small, large)
    assert large < 10.0


# --------------------------------------------------------------------------- 2. tables


@pytest.mark.parametrize(
    "text",
    [
        f"氏名\t個人番号\n山田太郎\t{MN2}\n鈴木花子\t{MN3}\n",  # body tab table, 2 columns
        f"氏名,マイナンバー\n山田太郎,{MN2}\n鈴木花子,{MN3}\n",  # CSV (Shift_JIS decoded)
        f"氏名 個人番号\n山田 太郎 {MN2}\n鈴木 花子 {MN3}\n",  # an HTML table as rendered
        f"| 氏名 | My Number |\n|---|---|\n| Taro Yamada | {MN2} |\n| Hanako | {MN3} |\n",
        f"氏名\t個人番号\t生年月日\n山田太郎\t{MN2}\t1980/01/02\n鈴木花子\t{MN3}\t1975/03/04\n",
        f"氏名\nマイナンバー\n山田 太郎\n{MN2}\n鈴木 花子\n{MN3}\n",  # a DOCX table, cell by cell
    ],
)
def test_my_numbers_under_a_column_header(text: str) -> None:
    found = kinds(text, "list.xlsx")
    assert found.count("my_number") == 2, found


def test_my_number_column_in_an_attachment_holds_the_mail() -> None:
    from leakguard.types import AttachmentContent, TextSection

    msg = parse_message(mail("資料を添付します。\n"))
    section = TextSection(location="sheet 名簿", text=f"氏名\t個人番号\n山田太郎\t{MN2}\n")
    content = AttachmentContent("マイナンバー一覧.xlsx", "xlsx", "read", (section,))
    import dataclasses

    msg = dataclasses.replace(msg, contents=(content,))
    facts = dict(detect(msg, CTX).facts)
    assert facts.get("personal_data.my_number") == 1


def test_birth_date_and_pension_columns() -> None:
    text = (
        "氏名\t生年月日\t基礎年金番号\n山田太郎\t1980/01/02\t1234567890\n"
        "鈴木花子\t昭和50年3月4日\t2345678901\n"
    )
    found = kinds(text)
    assert found.count("birth_date") == 2 and found.count("pension_number") == 2, found


@pytest.mark.parametrize(
    "text",
    [
        # a paragraph about My Number cards, then a blank line: a new block
        f"マイナンバーについてのお知らせです。\n\n注文一覧\n{MN2}\n{MN3}\n",
        # a number with its own label under a paragraph mentioning My Number cards
        f"マイナンバーカードの申請状況\n申請番号 {MN2}\n",
        # a column of order numbers
        f"注文番号\t金額\n{MN2}\t12,000\n{MN3}\t8,000\n",
        # a date column that is not a birth date
        "氏名\t生年月日\t申請日\n山田太郎\t-\t2024/04/01\n",
        "受付日\t件名\n2024/04/01\t転入届\n",
    ],
)
def test_table_hard_negatives(text: str) -> None:
    found = kinds(text)
    assert "my_number" not in found and "birth_date" not in found, found


# --------------------------------------------------------------------------- 3. holders


INVOICE = (
    "株式会社サンプル商事\n経理部 御中\n\nいつもお世話になっております。\n"
    "下記のとおりご請求申し上げます。\n\nご請求金額：1,234,567円\n"
    "お振込先：みずほ銀行 浦和支店\n普通預金 1234567\n口座名義：{}\n\nよろしくお願いいたします。\n"
)


@pytest.mark.parametrize(
    "holder",
    [
        "〇〇市会計管理者",
        "さいたま市",
        "埼玉県",
        "カブシキガイシャサンプルショウジ",
        "ｶﾌﾞｼｷｶﾞｲｼｬ ｻﾝﾌﾟﾙｼｮｳｼﾞ",
        "医療法人社団 さくら会",
        "社会福祉法人 ひまわり会",
        "学校法人 みどり学園",
        "特定非営利活動法人 あおぞら",
        "埼玉県国民健康保険団体連合会",
        "〇〇町役場",
        "シャ）サクラカイ",
        "ザイ）ミドリキキン",
        "ｲ) ｻｸﾗｶｲ",
    ],
)
def test_organisation_holders_are_not_personal(holder: str) -> None:
    assert "bank_account" not in kinds(normalize(INVOICE.format(holder)))


@pytest.mark.parametrize("holder", ["ヤマダ タロウ", "中村", "木村 花子", "ﾔﾏﾀﾞ ﾀﾛｳ"])
def test_person_holders_stay_personal(holder: str) -> None:
    assert "bank_account" in kinds(normalize(INVOICE.format(holder)))


def test_employer_above_a_persons_account_is_not_the_holder() -> None:
    text = (
        "【給付金振込先】\n氏名：山田 太郎\n勤務先：株式会社サンプル工業\n"
        "みずほ銀行 新宿支店\n普通預金 口座番号 1234567\n"
    )
    assert "bank_account" in kinds(text)
    text2 = "【勤務先】株式会社サンプル工業\nみずほ銀行 新宿支店\n普通 1234567\n"
    assert "bank_account" in kinds(text2)
    text3 = "勤務先 株式会社サンプル工業\n山田 太郎\nみずほ銀行 新宿支店 普通預金 1234567\n"
    assert "bank_account" in kinds(text3)
    text4 = "みずほ銀行 新宿支店 普通 1234567\n名義：ヤマダ タロウ\n（会社員）\n"
    assert "bank_account" in kinds(normalize(text4))


# --------------------------------------------------------------------------- 4. signature


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            "田中様\n\n下記の方の口座情報です。\n\n-----\n山田 太郎\n"
            "〒160-0023 東京都新宿区西新宿2-8-1\nTEL 090-1234-5678\n"
            "みずほ銀行 新宿支店 普通 1234567\n-----\n",
            "bank_account",
        ),
        (
            "田中様\n\n下記の通りです。\n==========\nクレジットカード番号：4111 1111 1111 1111\n"
            "有効期限：12/28\nTEL：090-1234-5678\n==========\n",
            "credit_card",
        ),
        (
            "田中様\n\n決済情報です。\n\n経理課 山田\nTEL 090-1234-5678\n"
            "VISA 4111 1111 1111 1111 有効期限 12/28\n",
            "credit_card",
        ),
        (
            "田中様\n\n手続きをお願いします。\n\n総務部 山田 太郎\n電話 090-1234-5678\n"
            "年金番号 1234-567890\n",
            "pension_number",
        ),
    ],
)
def test_identifiers_are_never_a_signature(body: str, kind: str) -> None:
    for charset in ("utf-8", "iso-2022-jp"):
        facts, _ = facts_of(
            mail(body, charset=charset, cte="7bit" if "2022" in charset else "8bit")
        )
        assert facts.get("personal_data." + kind) == 1, (charset, facts)
        assert "personal_data.phone" not in facts  # the contact lines stay the signature's


def test_signature_contacts_are_still_exempt() -> None:
    body = (
        "田中様\n\nよろしくお願いいたします。\n\n--\n佐藤 一也\n〇〇市 市民課\n"
        "〒330-9588 埼玉県さいたま市浦和区常盤6-4-4\nTEL 048-829-1234\n"
        "kazuya.sato@city.example.lg.jp\n"
    )
    facts, _ = facts_of(mail(body))
    assert facts["personal_data_items"] == 0


# --------------------------------------------------------------------------- 5. nearest label


@pytest.mark.parametrize(
    "text",
    [
        f"受付番号：0012　氏名：山田太郎　個人番号：{MN2}\n",
        "受付番号0012 山田太郎 1234-5678-9018\n",
        f"In case you need it, My Number: {MN2}\n",
        f"Order confirmed. Individual Number {MN2}\n",
    ],
)
def test_nearest_positive_label_wins(text: str) -> None:
    assert "my_number" in kinds(normalize(text))


@pytest.mark.parametrize(
    "text",
    [
        f"受付番号：{MN2}\n",
        f"個人番号の提出について 受付番号 {MN2}\n",
        f"Order No. {MN2}\n",
        f"お問い合わせ番号：{MN2}（マイナンバーではありません）\n",
    ],
)
def test_negative_label_of_the_number_still_wins(text: str) -> None:
    assert "my_number" not in kinds(text)


# --------------------------------------------------------------------------- 6. alternatives


def _alternative(plain: str, html: str) -> bytes:
    def b64(s: str) -> str:
        return base64.encodebytes(s.encode("utf-8")).decode()

    return (
        "From: kazuya.sato@city.example.lg.jp\r\nTo: tanaka@sample-shoji.co.jp\r\n"
        f"Subject: {_h('見積')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64"
        f"\r\n\r\n{b64(plain)}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64(html)}\r\n--b1--\r\n"
    ).encode()


def test_stub_plain_part_does_not_hide_the_html() -> None:
    html = f"<html><body><p>田中様</p><p>個人番号：{MN2}</p><p>以上です。</p></body></html>"
    facts, _ = facts_of(_alternative("HTML対応のメールソフトでご覧ください。", html))
    assert facts.get("personal_data.my_number") == 1


def test_full_plain_alternative_still_skips_the_html() -> None:
    html = f"<p>田中様</p><p>個人番号：{MN2}</p><p>よろしくお願いします。</p>"
    plain = f"田中様\n\n個人番号：{MN2}\n\nよろしくお願いします。\n"
    raw = _alternative(plain, html)
    facts, findings = facts_of(raw)
    assert facts.get("personal_data.my_number") == 1
    assert all(f.evidence.get("section") != "HTML part 1" for f in findings)


# --------------------------------------------------------------------------- 7. labels


@pytest.mark.parametrize(
    "prefixes",
    [
        ("① ", "② ", "③ "),
        ("1. ", "2. ", "3. "),
        ("(1)", "(2)", "(3)"),
        ("１．", "２．", "３．"),
        ("（１）", "（２）", "（３）"),
        ("1) ", "2) ", "3) "),
        ("■1. ", "■2. ", "■3. "),
    ],
)
def test_numbered_labels(prefixes: tuple[str, str, str]) -> None:
    labels = ("氏名：山田 太郎", "住所：東京都新宿区西新宿2-8-1", "電話番号：090-1234-5678")
    text = "\n".join(p + x for p, x in zip(prefixes, labels, strict=True)) + "\n"
    forms = find_forms(normalize(text))
    assert len(forms) == 1 and forms[0].unmasked, text
    assert forms[0].subject == "山田 太郎"


def test_qualified_labels() -> None:
    text = (
        "氏名（漢字）：山田 太郎\n氏名（ふりがな）：やまだ たろう\n"
        "住所：東京都新宿区西新宿2-8-1\n電話：090-1234-5678\n"
    )
    (form,) = find_forms(normalize(text))
    assert {f.type for f in form.fields} >= {"name", "kana", "address", "phone"}
    assert form.subject == "山田 太郎"


def test_numbered_prose_is_not_a_form() -> None:
    text = "1. 名前の変更について\n2. 住所の変更について\n3. 電話番号の変更について\n"
    assert find_forms(normalize(text)) == []


# --------------------------------------------------------------------------- 8. subject


def test_subject_is_scanned() -> None:
    raw = mail("添付のとおりです。\n").replace(
        f"Subject: {_h('申請の件')}".encode(), f"Subject: {_h(f'個人番号 {MN2} の件')}".encode()
    )
    facts, findings = facts_of(raw)
    assert facts.get("personal_data.my_number") == 1
    (f,) = [f for f in findings if f.evidence.get("kind") == "my_number"]
    assert f.evidence["section"] == "subject" and MN2 not in f.detail


def test_ordinary_subject_is_clean() -> None:
    raw = mail("添付のとおりです。\n").replace(
        f"Subject: {_h('申請の件')}".encode(),
        f"Subject: {_h('注文番号 123456789018 の件')}".encode(),
    )
    facts, _ = facts_of(raw)
    assert facts["personal_data_items"] == 0


# --------------------------------------------------------------------------- 9. samples


@pytest.mark.parametrize(
    "name,phone",
    [
        ("見本 太郎", "03-0000-0000"),
        ("山田 太郎（記入例）", "090-0000-0000"),
        ("サンプル 花子", "03-0000-0000"),
    ],
)
def test_sample_values_are_not_personal(name: str, phone: str) -> None:
    body = (
        f"田中様\n\n記入例を送ります。\n\n氏名：{name}\n"
        f"住所：東京都千代田区霞が関1-1-1\n電話番号：{phone}\n"
    )
    facts, _ = facts_of(mail(body))
    assert facts["unmasked_forms"] == 0 and "personal_data.phone" not in facts


def test_real_numbers_ending_in_zeros_stay_phones() -> None:
    assert kinds("携帯：090-1234-0000\n") == ["phone"]


# --------------------------------------------------------------------------- 10. masking


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("みずほ銀行 新宿支店\n普通 1234567 ヤマダ タロウ", "1234567"),
        ("三井住友銀行 渋谷支店\n口座番号：７６５４３２１（普通）", "７６５４３２１"),
        ("旅券番号：TK1234567", "1234567"),
        ("パスポート番号：ＴＫ１２３４５６７", "１２３４５６７"),
        (f"個人番号：{MN2[:4]} {MN2[4:8]} {MN2[8:]}", MN2[:8]),
        ("マイナンバー：１２３４−５６７８−９０１８", "１２３４"),
        ("基礎年金番号 1234-567890", "567890"),
        ("クレジットカード 4111 1111 1111 1111", "1111 1111 1111 1111"),
    ],
)
def test_mask_identifiers(text: str, secret: str) -> None:
    out = mask_identifiers(text)
    assert secret not in out and secret.replace(" ", "") not in out.replace(" ", ""), out
    assert len(out) == len(text)


def test_mask_identifiers_agrees_with_the_detector() -> None:
    text = "お振込先：みずほ銀行 浦和支店\n普通預金 1234567\n口座名義：ヤマダ タロウ\n"
    assert identifier_keys(text) == {"1234567": "bank_account"}
    assert "1234567" not in mask_identifiers(text)


@pytest.mark.parametrize(
    "text",
    [
        "ご請求金額：1,234,567円（2024年4月1日）",
        "注文番号 1234567 の件",
        "会議室 301 で 14:00 から",
        "郵便番号 160-0023",
        "",
    ],
)
def test_mask_identifiers_leaves_ordinary_text(text: str) -> None:
    assert mask_identifiers(text) == text


def test_redact_text_handles_split_numbers() -> None:
    assert "5678" not in redact_text("番号 1234 - 5678 - 9018")
    assert "５６７８" not in redact_text("番号 １２３４　５６７８　９０１８")
    assert redact_text("2024年4月1日 12,000円") == "2024年4月1日 12,000円"


def test_stub_plain_part_before_a_long_html_letter() -> None:
    para = "<p>平素より格別のご高配を賜り、厚く御礼申し上げます。手続きの状況をお知らせします。</p>"
    html = f"<html><body>{para * 120}<p>個人番号：{MN2}</p></body></html>"
    facts, _ = facts_of(_alternative("HTML対応のメールソフトでご覧ください。", html))
    assert facts.get("personal_data.my_number") == 1
