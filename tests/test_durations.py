"""Human durations: parsing, and rounding in what people read (issue 10: 「2日23時間」)."""

from __future__ import annotations

import pytest
from test_holds_support import Env, do_hold, make_env, queued, text_of

from leakguard.durations import format_duration


@pytest.mark.parametrize(
    ("seconds", "ja", "en"),
    [
        (72 * 3600, "3日", "3 d"),
        (72 * 3600 - 1, "3日", "3 d"),  # a notice written a moment after the hold was made
        (72 * 3600 - 40, "3日", "3 d"),
        (71 * 3600 + 10 * 60, "2日23時間", "2 d 23 h"),
        (25 * 3600 + 59, "1日1時間", "1 d 1 h"),
        (3600 + 1800, "1時間30分", "1 h 30 min"),
        (299, "4分59秒", "4 min 59 s"),
        (5 * 60 - 0.4, "5分", "5 min"),
        (59, "59秒", "59 s"),
        (0, "0秒", "0 s"),
        (-5, "0秒", "0 s"),
        (86400 + 60, "1日", "1 d"),  # the third unit is not shown, and no empty middle unit
    ],
)
def test_format_duration_rounds_to_the_last_unit_shown(seconds: float, ja: str, en: str) -> None:
    assert format_duration(seconds, "ja") == ja
    assert format_duration(seconds, "en") == en


async def test_a_72_hour_hold_notice_says_3_days(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env: Env = await make_env(tmp_path)
    try:
        await do_hold(env)
        ((_, _, notice, _),) = await queued(env, "notice")
        text = text_of(notice)
        assert "3日 後" in text and "2日23時間" not in text
    finally:
        await env.store.close()
