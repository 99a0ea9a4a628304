"""Where replayed mail comes from: the ``ReplaySource`` protocol and the file sources.

A source yields ``ReplayItem``s in the parent process. An item carries no mail bytes: only
a ``Locator`` (picklable, small) that a worker process calls to read them, the envelope if
known, and the verdict the relay recorded (``old``) if known. File sources (a maildir, an
mbox, a directory of ``.eml`` files, one ``.eml``) know no verdict: the baseline policy
decides those again. The retained-mail source of the store yields items whose ``old`` is the
journal's verdict (action and rule ids) with the recorded envelope.

mbox files are indexed by a streaming scan in the parent (byte offset and length of each
message, kept in two ``array``s: 16 bytes a mail); a worker reads its message's slice.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

MAX_MAIL_BYTES = 64 * 1024 * 1024  # a larger file or mbox slice is an error, not read
_SCAN_BLOCK = 1024 * 1024
_LINE_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a policy did with a mail: the action and the rules that matched."""

    action: str  # "pass" | "bcc" | "delay" | "hold" | "reject"
    rules: tuple[str, ...] = ()  # enforced rules
    audit_rules: tuple[str, ...] = ()  # audit-mode rules


@runtime_checkable
class Locator(Protocol):
    """Reads one mail's bytes; called in a worker process, so it must pickle small."""

    def read(self) -> bytes: ...


class ReadError(Exception):
    """A mail that cannot be read (``str()`` says why, in English; shown with its name)."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    """``length`` bytes at ``offset`` of ``path`` (``length`` -1: the whole file); ``mbox``:
    drop the ``From `` line and undo ``>From`` quoting (mboxrd)."""

    path: str
    offset: int = 0
    length: int = -1
    mbox: bool = False

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                if self.length < 0:
                    data = f.read(MAX_MAIL_BYTES + 1)
                else:
                    if self.length > MAX_MAIL_BYTES:
                        raise ReadError(f"larger than {MAX_MAIL_BYTES} bytes")
                    f.seek(self.offset)
                    data = f.read(self.length)
        except OSError as exc:
            raise ReadError(exc.strerror or type(exc).__name__) from exc
        if len(data) > MAX_MAIL_BYTES:
            raise ReadError(f"larger than {MAX_MAIL_BYTES} bytes")
        return unquote_mbox(data) if self.mbox else data


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One mail to replay. ``ref`` names it to people (a file name, ``mbox:offset``, a
    journal id); ``sender``/``rcpts`` None: from the mail's headers (Return-Path or From;
    To + Cc + Bcc); ``old`` None: the baseline policy decides it again."""

    ref: str
    locator: Locator
    sender: str | None = None
    rcpts: tuple[str, ...] | None = None
    old: Outcome | None = None


@runtime_checkable
class ReplaySource(Protocol):
    """Mails to replay, in a stable order. ``count`` is for the progress bar (None: not
    known in advance); ``items`` is iterated once, in the parent process."""

    name: str

    def count(self) -> int | None: ...

    def items(self) -> Iterator[ReplayItem]: ...


# --------------------------------------------------------------------------- file sources

_MBOX_FROM_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def unquote_mbox(data: bytes) -> bytes:
    """One mbox message without its ``From `` separator line, ``>From`` unquoted."""
    if data.startswith(b"From "):
        nl = data.find(b"\n")
        data = b"" if nl < 0 else data[nl + 1 :]
    if b">From " in data:
        data = _MBOX_FROM_QUOTED.sub(rb"\1", data)
    return data


def is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


def index_mbox(path: Path) -> tuple[array[int], array[int]]:
    """Offsets and lengths of the messages of an mbox, by a streaming scan: a message starts
    at a ``From `` line at the start of the file or after an empty line."""
    offsets: array[int] = array("Q")
    pos = 0
    prev_blank = True  # the start of the file counts as after an empty line
    with open(path, "rb", buffering=_SCAN_BLOCK) as f:
        # readline with a limit: a huge line (base64 without breaks) comes in pieces, and a
        # piece that does not end a line is never blank, so no false separator follows it
        for line in iter(lambda: f.readline(_LINE_LIMIT), b""):
            if prev_blank and line.startswith(b"From "):
                offsets.append(pos)
            prev_blank = line in (b"\n", b"\r\n")
            pos += len(line)
    size = path.stat().st_size
    lengths: array[int] = array("Q")
    for i, off in enumerate(offsets):
        end = offsets[i + 1] if i + 1 < len(offsets) else size
        lengths.append(end - off)
    return offsets, lengths


class MboxSource:
    """Every message of one mbox file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._index: tuple[array[int], array[int]] | None = None

    def _indexed(self) -> tuple[array[int], array[int]]:
        if self._index is None:
            self._index = index_mbox(self.path)
        return self._index

    def count(self) -> int:
        return len(self._indexed()[0])

    def items(self) -> Iterator[ReplayItem]:
        offsets, lengths = self._indexed()
        base = self.path.name
        for off, n in zip(offsets, lengths, strict=True):
            yield ReplayItem(f"{base}@{off}", FileSlice(str(self.path), off, n, mbox=True))


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _scan_names(folder: Path, *, eml_only: bool) -> list[str]:
    try:
        with os.scandir(folder) as it:
            names = [
                e.name
                for e in it
                if not e.name.startswith(".")
                and e.is_file()
                and (not eml_only or e.name.lower().endswith(".eml"))
            ]
    except OSError:
        return []
    return sorted(names)


class FilesSource:
    """Mail files: a maildir's ``cur`` and ``new`` (``tmp`` holds unfinished deliveries), a
    directory's ``*.eml`` files, or one file. Names are listed once, sorted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._folders: list[tuple[Path, list[str]]] | None = None

    def _listed(self) -> list[tuple[Path, list[str]]]:
        if self._folders is None:
            p = self.path
            if _is_maildir(p):
                self._folders = [
                    (p / sub, _scan_names(p / sub, eml_only=False)) for sub in ("cur", "new")
                ]
            elif p.is_dir():
                self._folders = [(p, _scan_names(p, eml_only=True))]
            else:
                self._folders = [(p.parent, [p.name])]
        return self._folders

    def count(self) -> int:
        return sum(len(names) for _, names in self._listed())

    def items(self) -> Iterator[ReplayItem]:
        maildir = _is_maildir(self.path)
        for folder, names in self._listed():
            for name in names:
                full = folder / name
                ref = f"{folder.name}/{name}" if maildir else name
                yield ReplayItem(ref, FileSlice(str(full)))


class SourceError(Exception):
    """A SOURCE argument that is none of the kinds known (ja/en text)."""

    def __init__(self, ja: str, en: str) -> None:
        self.ja = ja
        self.en = en
        super().__init__(en)

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


def open_source(path: Path) -> ReplaySource:
    """The source a SOURCE argument names: maildir, directory of .eml, mbox or one file."""
    if path.is_dir():
        if _is_maildir(path) or any(n.lower().endswith(".eml") for n in os.listdir(path)):
            return FilesSource(path)
        raise SourceError(
            f"{path}: maildir (cur/new) でも .eml ファイルのディレクトリでもありません",
            f"{path}: neither a maildir (cur/new) nor a directory of .eml files",
        )
    if path.is_file():
        return MboxSource(path) if is_mbox(path) else FilesSource(path)
    raise SourceError(f"{path}: ありません", f"{path}: not found")
