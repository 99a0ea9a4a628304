"""``leakguard config reference``: every configuration option, generated from the model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "config",
        help="print the configuration reference (docs/configuration.md), generated from the "
        "configuration model",
        description="The service configuration (leakguard.yaml): its reference, generated "
        "from the model.",
    )
    cs = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    r = cs.add_parser(
        "reference", help="write the Markdown reference of every option, default and example"
    )
    r.add_argument(
        "-o", "--output", type=Path, help="write to this file instead of standard output"
    )
    r.set_defaults(func=run_reference)


def run_reference(args: argparse.Namespace) -> int:
    from leakguard.config_reference import reference

    text = reference()
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0
