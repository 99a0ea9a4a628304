"""``leakguard`` console script: a thin dispatcher over ``leakguard.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser(s) and sets
``func`` to a callable taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leakguard import __version__
from leakguard.cli_ja import JapaneseArgumentParser, localize
from leakguard.commands import (
    backup,
    check,
    config,
    holds,
    incidents,
    policy,
    replay,
    serve,
    stats,
    users,
)
from leakguard.commands import help as help_cmd
from leakguard.i18n import lang_from_env

# registered in this order in --help
_COMMANDS = (check, policy, replay, serve, users, holds, incidents, stats, config, help_cmd, backup)


def build_parser(lang: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``lang`` "ja" (default: from the locale) gives Japanese help."""
    lang = lang or lang_from_env()
    cls = JapaneseArgumentParser if lang == "ja" else argparse.ArgumentParser
    parser = cls(
        prog="leakguard",
        description="Pre-send email leak guard: an SMTP relay that checks outgoing mail.",
    )
    parser.add_argument("--version", action="version", version=f"leakguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    if lang == "ja":
        localize(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
