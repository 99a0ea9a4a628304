"""The users file for SMTP AUTH (and the web administrators' login).

One user per line: ``name:$argon2id$...[:extra@addr,*@shared.example.jp]``. The optional
third field lists further sender addresses the user may use (shared mailboxes). Lines
starting with ``#`` are comments. The file is written atomically with mode 0600 by
``leakguard users add|remove``; passwords never appear on a command line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_PH = PasswordHasher()
_DUMMY = _PH.hash("leakguard-dummy-password")  # equalises timing for unknown users


@dataclass(frozen=True, slots=True)
class User:
    name: str
    hash: str
    senders: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print the hash
        return f"User({self.name!r}, senders={self.senders!r})"


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and ":" not in name
        and name.isprintable()
        and not any(ch.isspace() for ch in name)
    )


def parse_users(text: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 2 or not parts[1].startswith("$argon2"):
            continue
        senders = (
            tuple(s.strip() for s in parts[2].split(",") if s.strip()) if len(parts) > 2 else ()
        )
        users[parts[0].strip()] = User(parts[0].strip(), parts[1].strip(), senders)
    return users


def read_users(path: Path) -> dict[str, User]:
    try:
        return parse_users(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}


def write_users(path: Path, users: dict[str, User]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# leakguard users: name:argon2-hash[:extra sender addresses]"]
    for u in sorted(users.values(), key=lambda u: u.name):
        extra = ":" + ",".join(u.senders) if u.senders else ""
        lines.append(f"{u.name}:{u.hash}{extra}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users.", text=True)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def add_user(path: Path, name: str, password: str, senders: tuple[str, ...] = ()) -> None:
    if not _valid_name(name):
        raise ValueError(f"invalid user name {name!r} (no spaces or ':')")
    for s in senders:
        if not _valid_name(s) or "," in s:
            raise ValueError(f"invalid sender address {s!r}")
    if not password:
        raise ValueError("empty password")
    users = read_users(path)
    users[name] = User(name, _PH.hash(password), senders)
    write_users(path, users)


def remove_user(path: Path, name: str) -> bool:
    users = read_users(path)
    if name not in users:
        return False
    del users[name]
    write_users(path, users)
    return True


def verify_hash(user: User | None, password: str) -> bool:
    try:
        _PH.verify(user.hash if user is not None else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return user is not None


def verify_password(path: Path, name: str, password: str) -> bool:
    """True when ``name`` is in the users file at ``path`` with this password."""
    return verify_hash(read_users(path).get(name), password)
