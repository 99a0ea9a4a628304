"""``leakguard`` console script: a thin dispatcher over ``leakguard.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser(s) and sets
``func`` to a callable taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from leakguard import __version__

# module name -> registered in this order in --help
_COMMAND_MODULES = ("check", "policy", "serve", "users", "holds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leakguard",
        description="Pre-send email leak guard: an SMTP relay that checks outgoing mail.",
    )
    parser.add_argument("--version", action="version", version=f"leakguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"leakguard.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"leakguard.commands.{name}":
                continue  # command not built yet
            raise
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
