"""``leakguard help [TOPIC]``: the manual, one topic at a time, in Japanese or English.

The texts live in ``leakguard/data/help/<topic>.<ja|en>.txt`` (shipped in the wheel);
``tests/test_cli_help.py`` checks that every topic exists in both languages and that every
``leakguard ...`` command line and flag they show exists in the real parser.
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

from leakguard.i18n import lang_from_env

TOPICS = ("serve", "policy", "holds", "check", "config", "postfix", "logs")

_LIST = {
    "ja": "トピック: {topics}\n例: leakguard help serve (英語: LEAKGUARD_LANG=en または --lang en)",
    "en": "Topics: {topics}\n"
    "Example: leakguard help serve (Japanese: LANG=ja_JP.UTF-8 or --lang ja)",
}


def topic_text(topic: str, lang: str) -> str:
    return (
        resources.files("leakguard")
        .joinpath("data", "help", f"{topic}.{lang}.txt")
        .read_text(encoding="utf-8")
    )


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "help",
        help="show help on a topic, in Japanese or English",
        description="Explain one part of leakguard (serve, policy, holds, check, config, "
        "postfix, logs), in the reader's language.",
    )
    p.add_argument("topic", nargs="?", choices=TOPICS, help="topic; without it, the list of topics")
    p.add_argument(
        "--lang", choices=["ja", "en"], help="language (default: from LEAKGUARD_LANG / LANG)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lang = args.lang or lang_from_env()
    if not args.topic:
        print(_LIST[lang].format(topics=", ".join(TOPICS)))
        return 0
    print(topic_text(args.topic, lang), end="")
    return 0
