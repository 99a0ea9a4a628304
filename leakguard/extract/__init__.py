"""Text out of attachments, as part of the parse-once ``Message`` view (issue 7 §1).

``Extractor.read(msg)`` returns the same ``Message`` with:

- ``contents``: one ``AttachmentContent`` per attachment, ZIP member, or attachment of a
  mail carried in a container (names such as ``書類.zip/申請書.pdf``), with the text of
  each page, sheet or slide;
- ``attached_messages`` (and ``quoted_blocks``): mail found in ``.eml`` attachments sent as
  ``application/octet-stream``, Outlook ``.msg`` and ``winmail.dat``;
- ``calendar_attendees``: ATTENDEE / ORGANIZER of ``text/calendar`` parts and ``.ics`` files;
- ``uninspected_parts``: raised by one for each attachment that could not be read within
  the budgets (time, memory, size, nesting, bombs, broken files).

The work is done in worker processes (:mod:`leakguard.extract.pool`); the calling thread
only waits. A mail without attachments costs one look at ``msg.attachments``.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any

from leakguard.extract.config import ExtractConfig
from leakguard.extract.formats import Limits, Output, is_inline_decoration
from leakguard.extract.mail import walk_attachments
from leakguard.extract.pool import ExtractPool, Failure, Job
from leakguard.message import quotes
from leakguard.message.addresses import make_address
from leakguard.message.parse import parse_message
from leakguard.types import Address, AttachmentContent, Message, QuotedBlock

__all__ = [
    "ExtractConfig",
    "ExtractPool",
    "Extractor",
    "has_attachments",
    "limits_from",
]


def limits_from(config: ExtractConfig) -> Limits:
    return Limits(
        max_pdf_pages=config.max_pdf_pages,
        max_depth=config.max_archive_depth,
        max_members=config.max_archive_members,
        max_uncompressed=config.max_uncompressed_bytes,
        max_ratio=config.max_compression_ratio,
        max_cells=config.max_cells,
        max_chars=config.max_text_chars,
    )


def has_attachments(msg: Message) -> bool:
    """Whether the mail has anything for the extractors (cheap: no decoding)."""
    return next(walk_attachments(msg), None) is not None


_KIND_BY_TYPE = {"text/calendar": "ics", "application/pdf": "pdf"}


class Extractor:
    """Reads attachments through a worker pool started on first use (or by ``start``)."""

    def __init__(self, config: ExtractConfig | None = None, *, test_hooks: bool = False) -> None:
        self.config = config or ExtractConfig()
        self.test_hooks = test_hooks
        self._pool: ExtractPool | None = None
        self._lock = threading.Lock()
        self._finalizer: Any = None  # weakref.finalize closing the pool

    @property
    def pool(self) -> ExtractPool:
        with self._lock:
            if self._pool is None:
                cfg = self.config
                self._pool = ExtractPool(
                    cfg.workers,
                    limits=limits_from(cfg),
                    memory_bytes=cfg.worker_memory_mb * 1024 * 1024,
                    test_hooks=self.test_hooks,
                )
                self._finalizer = weakref.finalize(self, self._pool.close)
            return self._pool

    def start(self) -> None:
        """Start the workers now (the relay does, so the first attachment waits for none)."""
        if self.config.enabled:
            _ = self.pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if self._finalizer is not None:
            self._finalizer.detach()

    def read(self, msg: Message) -> Message:
        """``msg`` with what its attachments carry (see the module docstring)."""
        if not self.config.enabled or not has_attachments(msg):
            return msg
        cfg = self.config
        jobs: list[Job] = []
        settled: dict[int, AttachmentContent] = {}
        for name, holder, i in walk_attachments(msg):
            att = holder.attachments[i]
            size = att.body_end - att.body_start
            if is_inline_decoration(att, holder.raw):
                settled[len(jobs) + len(settled)] = AttachmentContent(
                    name, "image", "skipped", (), "small inline image (a logo or an icon)"
                )
                continue
            if size > cfg.max_attachment_bytes:
                settled[len(jobs) + len(settled)] = AttachmentContent(
                    name,
                    _KIND_BY_TYPE.get(att.content_type, "other"),
                    "uninspected",
                    (),
                    f"{size} bytes, over the limit of {cfg.max_attachment_bytes}",
                )
                continue
            view = memoryview(holder.raw)[att.body_start : att.body_end]
            jobs.append(Job(name, att.content_type, att.transfer_encoding, att.charset, view))
        results: list[Output | Failure] = []
        if jobs:
            try:
                results = self.pool.run(jobs, cfg.message_timeout)
            except Exception as exc:  # no worker could be started: fail closed, never crash
                why = f"extraction unavailable: {type(exc).__name__}"
                results = [Failure(why)] * len(jobs)
        return _merge(msg, jobs, results, settled)


def _merge(
    msg: Message,
    jobs: list[Job],
    results: list[Output | Failure],
    settled: dict[int, AttachmentContent],
) -> Message:
    contents: list[AttachmentContent] = []
    found: list[tuple[str, bytes]] = []
    attendees: list[Address] = []
    uids: list[str] = []
    seen_att: set[str] = set()
    pending = iter(zip(jobs, results, strict=True))
    for slot in range(len(jobs) + len(settled)):
        if slot in settled:
            contents.append(settled[slot])
            continue
        job, result = next(pending)
        if isinstance(result, Failure):
            kind = _KIND_BY_TYPE.get(job.content_type, "other")
            contents.append(AttachmentContent(job.name, kind, "uninspected", (), result.detail))
            continue
        contents.extend(result.contents)
        found.extend(result.messages)
        uids.extend(u for u in result.uids if u not in uids)
        for addr, display in result.attendees:
            a = make_address(addr, display)
            if a.domain and a.key not in seen_att:
                seen_att.add(a.key)
                attendees.append(a)
    uninspected = sum(1 for c in contents if c.status == "uninspected")
    attached = tuple(parse_message(raw) for _name, raw in found)
    blocks = msg.quoted_blocks
    if attached:
        try:
            blocks = blocks + _blocks_of(attached, [n for n, _ in found], len(blocks))
        except Exception:  # another module's bug must not lose the mail
            uninspected += 1
    return dataclasses.replace(
        msg,
        contents=msg.contents + tuple(contents),
        attached_messages=msg.attached_messages + attached,
        quoted_blocks=blocks,
        calendar_attendees=msg.calendar_attendees + tuple(attendees),
        calendar_uids=msg.calendar_uids + tuple(uids[:50]),
        uninspected_parts=msg.uninspected_parts + uninspected,
    )


def _blocks_of(
    attached: tuple[Message, ...], names: list[str], offset: int
) -> tuple[QuotedBlock, ...]:
    """Quoted blocks of mail found inside attachments, as the parser makes them for
    message/rfc822 parts, re-indexed after the mail's own blocks."""
    out: list[QuotedBlock] = []
    for msg, name in zip(attached, names, strict=True):
        base = offset + len(out)
        for qb in quotes.extract_quotes((), (msg,)):
            location = qb.location.replace("attached message 1", f"attachment {name}", 1)
            parent = None if qb.parent is None else qb.parent + base
            out.append(dataclasses.replace(qb, location=location, parent=parent))
    return tuple(out)
