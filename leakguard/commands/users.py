"""``leakguard users add|remove|list``: the argon2 users file for SMTP AUTH and the web.

Passwords are read from a prompt (asked twice) or, with ``--password-stdin``, from the
first line of standard input; never from the command line, where other users could see it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from leakguard.config import ConfigError, NoServiceError, locate_service
from leakguard.i18n import lang_from_env
from leakguard.relay.users import add_user, read_users, remove_user

_TEXT = {
    "pw": ("パスワード: ", "Password: "),
    "pw2": ("パスワード(確認): ", "Password (again): "),
    "mismatch": ("パスワードが一致しません。", "The passwords do not match."),
    "empty": ("パスワードが空です。", "The password is empty."),
    "added": ("ユーザーを登録しました: {name}", "User saved: {name}"),
    "removed": ("ユーザーを削除しました: {name}", "User removed: {name}"),
    "unknown": ("そのユーザーはいません: {name}", "No such user: {name}"),
    "none": ("ユーザーはまだいません ({path})", "No users yet ({path})"),
    "config": ("設定ファイルに誤りがあります:", "The configuration file has errors:"),
    "invalid": ("登録できません: {err}", "Cannot save: {err}"),
}


def _t(key: str, lang: str, **kw: str) -> str:
    ja, en = _TEXT[key]
    return (ja if lang == "ja" else en).format(**kw)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "users",
        help="manage SMTP AUTH users (argon2 users file)",
        description="Manage the users file used for SMTP AUTH and the administrators' web view.",
    )
    _file_options(p, None)
    us = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    a = us.add_parser("add", help="add a user or change a password")
    a.add_argument("name", help="login name, normally the user's mail address")
    a.add_argument(
        "--sender",
        action="append",
        default=[],
        metavar="ADDR",
        help="further sender address the user may use (shared mailbox; *@domain)",
    )
    a.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    r = us.add_parser("remove", help="remove a user")
    r.add_argument("name", help="login name to remove")
    ls = us.add_parser("list", help="list users")
    # `users add --file F NAME` works as well as `users --file F add NAME` (the docs and
    # people write it both ways); given after the action, the option wins.
    for sp in (a, r, ls):
        _file_options(sp, argparse.SUPPRESS)
    p.set_defaults(func=run)


def _file_options(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default,
        help="service configuration (finds the file)",
    )
    p.add_argument(
        "--file",
        type=Path,
        default=default,
        help="users file (default: the service's, found like holds: -c, $LEAKGUARD_CONFIG, "
        "/etc/leakguard/leakguard.yaml, the data directory)",
    )


def _path(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    return locate_service(args.config).users_file_path()


def run(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    try:
        path = _path(args)
    except ConfigError as exc:
        print(_t("config", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
        return 2
    except NoServiceError as exc:
        print(exc.text(lang), file=sys.stderr)
        return 2
    if args.users_command == "list":
        users = read_users(path)
        if not users:
            print(_t("none", lang, path=str(path)))
        for u in sorted(users.values(), key=lambda u: u.name):
            extra = f"  ({', '.join(u.senders)})" if u.senders else ""
            print(f"{u.name}{extra}")
        return 0
    if args.users_command == "remove":
        if remove_user(path, args.name):
            print(_t("removed", lang, name=args.name))
            return 0
        print(_t("unknown", lang, name=args.name), file=sys.stderr)
        return 1
    # add
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(_t("pw", lang))
        if getpass.getpass(_t("pw2", lang)) != password:
            print(_t("mismatch", lang), file=sys.stderr)
            return 1
    if not password:
        print(_t("empty", lang), file=sys.stderr)
        return 1
    try:
        add_user(path, args.name, password, tuple(args.sender))
    except ValueError as exc:
        print(_t("invalid", lang, err=str(exc)), file=sys.stderr)
        return 1
    print(_t("added", lang, name=args.name))
    return 0
