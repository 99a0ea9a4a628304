"""Bounds the relay keeps against what comes back from the workers (security review, issue 7):
the number and size of mails returned per attachment and per mail, ZIPs of many small
members, and a worker that starts an answer (or stops reading) and stalls."""

from __future__ import annotations

import io
import json
import multiprocessing.connection as mc
import os
import socket
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from leakguard.extract.formats import Limits, Output, extract
from leakguard.extract.pool import (
    MAIL_MAX_MESSAGES,
    ExtractPool,
    Failure,
    Job,
    decode_result,
    encode_result,
    recv_frame,
    send_frame,
)


def small_mail(i: int, size: int = 2000) -> bytes:
    body = (os.urandom(size).hex()[:size] + "\r\n").encode()
    return (
        f"From: a{i}@x.example\r\nTo: b@y.example\r\nSubject: s{i}\r\n"
        f"Message-ID: <{i}@x.example>\r\n\r\n"
    ).encode() + body


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def pair() -> Iterator[tuple[mc.Connection, mc.Connection]]:
    a, b = socket.socketpair()
    relay, worker = mc.Connection(a.detach()), mc.Connection(b.detach())
    try:
        yield relay, worker
    finally:
        relay.close()
        worker.close()


# --------------------------------------------------------------------------- in the worker


def test_zip_of_many_mails_returns_at_most_the_limit_and_the_rest_is_uninspected() -> None:
    limits = Limits(max_messages=5)
    data = make_zip({f"m{i}.eml": small_mail(i) for i in range(8)})
    out = extract("mails.zip", "application/zip", data, limits)
    assert len(out.messages) == 5
    statuses = [c.status for c in out.contents if c.name.endswith(".eml")]
    assert statuses == ["read"] * 5 + ["uninspected"] * 3


def test_mail_bytes_per_attachment_are_bounded() -> None:
    limits = Limits(max_message_bytes=10_000)
    data = make_zip({f"m{i}.eml": small_mail(i, 4000) for i in range(4)})
    out = extract("mails.zip", "application/zip", data, limits)
    assert sum(len(raw) for _n, raw in out.messages) <= 10_000
    assert any(c.status == "uninspected" for c in out.contents)


def test_zip_of_many_small_compressible_members_is_a_bomb() -> None:
    member = (b"A" * 998 + b"\r\n") * 900  # under 1 MiB each: the per-member check misses
    data = make_zip({f"m{i}.eml": member for i in range(20)})
    c = extract("a.zip", "application/zip", data, Limits()).contents[0]
    assert c.status == "uninspected" and "ratio" in c.detail


def test_ordinary_zip_of_a_few_mails_is_read() -> None:
    data = make_zip({f"m{i}.eml": small_mail(i) for i in range(3)})
    out = extract("mails.zip", "application/zip", data, Limits())
    assert len(out.messages) == 3
    assert {c.status for c in out.contents} == {"read"}


# --------------------------------------------------------------------------- in the relay


def test_decode_result_refuses_more_messages_than_the_limit(
    pair: tuple[mc.Connection, mc.Connection],
) -> None:
    relay, worker = pair
    limits = Limits(max_messages=3)
    out = Output(messages=[(f"m{i}", b"From: a@x\r\n\r\nx") for i in range(4)])
    threading.Thread(target=encode_result, args=(worker, out), daemon=True).start()
    with pytest.raises(ValueError, match="more than 3"):
        decode_result(relay, limits, time.monotonic() + 5)


def test_decode_result_refuses_message_bytes_over_the_limit(
    pair: tuple[mc.Connection, mc.Connection],
) -> None:
    relay, worker = pair
    limits = Limits(max_message_bytes=1000)
    out = Output(messages=[("m", b"x" * 1500)])
    threading.Thread(target=encode_result, args=(worker, out), daemon=True).start()
    with pytest.raises(ValueError, match="over the limit"):
        decode_result(relay, limits, time.monotonic() + 5)


def test_frames_round_trip_in_multiprocessing_framing(
    pair: tuple[mc.Connection, mc.Connection],
) -> None:
    relay, worker = pair
    payload = os.urandom(300_000)
    t = threading.Thread(target=lambda: worker.send_bytes(payload), daemon=True)
    t.start()
    assert recv_frame(relay, 1 << 20, time.monotonic() + 5) == payload
    t.join()
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(worker.recv_bytes()), daemon=True)
    t.start()
    send_frame(relay, memoryview(payload), time.monotonic() + 5)
    t.join(5)
    assert got == [payload]


def test_a_stalled_answer_does_not_hold_the_relay_thread(
    pair: tuple[mc.Connection, mc.Connection],
) -> None:
    relay, worker = pair

    def hostile() -> None:
        worker.recv()
        worker.recv_bytes()
        os.write(worker.fileno(), struct.pack("!i", 1000) + b'{"contents": [')

    threading.Thread(target=hostile, daemon=True).start()
    pool = ExtractPool.__new__(ExtractPool)
    pool.limits = Limits()
    w = SimpleNamespace(conn=relay, exitcode=lambda t: None)
    t0 = time.monotonic()
    result = pool._one(w, Job("x.pdf", "application/pdf", "", "", b"AAAA"), 0.5)  # type: ignore[arg-type]
    assert isinstance(result, Failure) and result.detail.startswith("worker killed")
    assert time.monotonic() - t0 < 2.0


def test_a_worker_that_stops_reading_does_not_hold_the_relay_thread(
    pair: tuple[mc.Connection, mc.Connection],
) -> None:
    relay, _worker = pair  # nobody reads the worker's end
    pool = ExtractPool.__new__(ExtractPool)
    pool.limits = Limits()
    w = SimpleNamespace(conn=relay, exitcode=lambda t: None)
    t0 = time.monotonic()
    body = b"A" * (16 * 1024 * 1024)
    result = pool._one(w, Job("x.pdf", "application/pdf", "", "", body), 0.5)  # type: ignore[arg-type]
    assert isinstance(result, Failure) and result.detail.startswith("worker killed")
    assert time.monotonic() - t0 < 2.0


def test_mail_found_across_attachments_is_bounded_per_mail() -> None:
    limits = Limits(max_messages=20)
    pool = ExtractPool(1, limits=limits, memory_bytes=512 * 1024 * 1024)
    try:
        zipped = make_zip({f"m{i}.eml": small_mail(i) for i in range(15)})
        jobs = [Job(f"z{n}.zip", "application/zip", "", "", zipped) for n in range(4)]
        results = pool.run(jobs, 30.0)
    finally:
        pool.close()
    kept = sum(len(r.messages) for r in results if isinstance(r, Output))
    assert kept <= MAIL_MAX_MESSAGES
    assert [isinstance(r, Failure) for r in results] == [False, False, True, True]
    assert json.dumps([r.detail for r in results if isinstance(r, Failure)]).count("limit") == 2
