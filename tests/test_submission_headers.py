"""RFC 6409 §8: Date and Message-ID are added on submission when missing (issue 10)."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import re
from datetime import UTC, datetime

import pytest
from test_relay_smtp import ALICE, RCPTS, Env, send
from test_relay_smtp import env as env

from leakguard.relay.submission import complete_submission, missing_fields

NOW = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)

# Becky!-style ISO-2022-JP mail from a script that forgot both fields (LF line ends)
ISO = (
    b"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@city.example.lg.jp>\n"
    b"To: bob@partner.example.co.jp\n"
    b"Subject: =?ISO-2022-JP?B?GyRCOGVAUTpuGyhC?=\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=ISO-2022-JP\n"
    b"Content-Transfer-Encoding: 7bit\n\n"
) + "お世話になっております。\n".encode("iso-2022-jp")

# an in-house tool: UTF-8 base64, CRLF, Date present but no Message-ID
TOOL = (
    b"Date: Tue, 31 Mar 2026 18:00:00 +0900\r\n"
    b"From: system@city.example.lg.jp\r\nTo: bob@partner.example.co.jp\r\n"
    b"Subject: =?UTF-8?B?5pel5aCx?=\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes("本日の報告です。\n".encode()).replace(b"\n", b"\r\n")
)

# Outlook: both present (lower-case "Message-Id" as some clients write it)
OUTLOOK = (
    b"Message-Id: <abc@city.example.lg.jp>\r\ndate: Wed, 1 Apr 2026 09:00:00 +0900\r\n"
    b"From: a@city.example.lg.jp\r\nTo: b@partner.example.co.jp\r\nSubject: x\r\n\r\nbody\r\n"
)


def test_both_missing_are_prepended_and_the_rest_is_untouched() -> None:
    out = complete_submission(ISO, "mail-guard.city.example.lg.jp", NOW)
    assert out.endswith(ISO)
    added = out[: len(out) - len(ISO)]
    lines = added.split(b"\n")[:-1]
    assert [ln.split(b":")[0] for ln in lines] == [b"Date", b"Message-ID"]
    assert b"\r" not in added  # the message's own line ends (LF here)
    date = email.utils.parsedate_to_datetime(lines[0].split(b": ", 1)[1].decode())
    assert date == NOW
    assert re.fullmatch(rb"Message-ID: <[^<>@\s]+@mail-guard\.city\.example\.lg\.jp>", lines[1])


def test_only_the_missing_one_is_added_with_crlf() -> None:
    out = complete_submission(TOOL, "mail-guard.city.example.lg.jp", NOW)
    assert out.endswith(TOOL)
    added = out[: len(out) - len(TOOL)]
    assert added.startswith(b"Message-ID: <") and added.endswith(b">\r\n")
    assert added.count(b"\r\n") == 1


def test_nothing_added_when_present_in_any_case() -> None:
    assert complete_submission(OUTLOOK, "x.example.jp", NOW) is OUTLOOK
    assert missing_fields(OUTLOOK, "x.example.jp") == []


def test_message_id_domain_without_a_dot_is_not_used() -> None:
    (_, mid) = missing_fields(ISO, "localhost", NOW)
    assert mid.endswith(b"@leakguard.invalid>")


async def test_relay_adds_them_on_the_way_upstream(env: Env) -> None:
    raw = (
        f"From: Alice <{ALICE}>\r\nTo: bob@partner.example.co.jp\r\nCc: carol@city.example.lg.jp"
        "\r\nSubject: no date\r\nX-Test-Action: pass\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "本文\r\n"
    ).encode()
    code, _ = await send(env.port("plain-0"), raw, RCPTS)
    assert code == 250
    (got,) = await asyncio.to_thread(env.sink.handler.wait_for, 1)
    assert got.data.endswith(raw) and got.data != raw
    head = got.data[: len(got.data) - len(raw)]
    assert head.startswith(b"Date: ") and b"\r\nMessage-ID: <" in head


@pytest.mark.parametrize("raw", [ISO, TOOL, OUTLOOK])
def test_idempotent(raw: bytes) -> None:
    once = complete_submission(raw, "mail-guard.city.example.lg.jp", NOW)
    assert complete_submission(once, "mail-guard.city.example.lg.jp", NOW) == once
