"""``leakguard`` console script: a thin dispatcher over ``leakguard.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser(s) and sets
``func`` to a callable taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leakguard import __version__
from leakguard.commands import backup, check, holds, policy, serve, users

# registered in this order in --help
_COMMANDS = (check, policy, serve, users, holds, backup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leakguard",
        description="Pre-send email leak guard: an SMTP relay that checks outgoing mail.",
    )
    parser.add_argument("--version", action="version", version=f"leakguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
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
