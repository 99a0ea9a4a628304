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
    _share_service_options(sub)
    if lang == "ja":
        localize(parser)
    return parser


# Options of a command that has actions (``holds``, ``incidents``, ``stats``, ``users``) that
# people also write after the action: ``leakguard incidents show ID -c FILE``.
_SHARED = ("-c", "--config", "--data-dir", "--as", "--file")


def _share_service_options(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Accept a command's service options after its action too (given there, they win)."""
    for command in sub.choices.values():
        shared = [
            a
            for a in command._actions
            if isinstance(a, argparse._StoreAction) and set(a.option_strings) & set(_SHARED)
        ]
        actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for group in actions:
            for child in group.choices.values():
                for opt in shared:
                    if any(o in child._option_string_actions for o in opt.option_strings):
                        continue
                    child.add_argument(
                        *opt.option_strings,
                        dest=opt.dest,
                        type=opt.type,
                        metavar=opt.metavar,
                        help=opt.help,
                        default=argparse.SUPPRESS,
                    )


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
