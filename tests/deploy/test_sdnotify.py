"""sd_notify readiness and watchdog, against a fake NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.harness import Relay
from e2e.sink import Sink

from leakguard import sdnotify


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_no_socket_means_nothing_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready() is False


def test_ready_datagram(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.ready("serving:\n SMTP [2525]") is True
    got = fields(sock.recv(4096))
    assert got == {"READY": "1", "STATUS": "serving: SMTP [2525]", "MAINPID": str(os.getpid())}


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"leakguard-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("STATUS=x") is True
        assert sock.recv(100) == b"STATUS=x"
    finally:
        sock.close()


def test_unreachable_socket_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # not a socket we speak
    assert sdnotify.notify("READY=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("", "", None),
        ("0", "", None),
        ("junk", "", None),
        ("10000000", "", 5.0),
        ("10000000", "self", 5.0),
        ("10000000", "1", None),  # the watchdog is for another process
        ("200000", "", 0.5),  # never busier than twice a second
        ("600000000", "", 30.0),  # and at least every 30 s
    ],
)
def test_watchdog_interval(usec: str, pid: str, expected: float | None) -> None:
    env = {"WATCHDOG_USEC": usec}
    if pid:
        env["WATCHDOG_PID"] = str(os.getpid()) if pid == "self" else pid
    assert sdnotify.watchdog_interval(env) == expected


async def test_watchdog_pings_from_the_event_loop(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # ping every 0.5 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.ready()
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    end = loop.time() + 3
    while loop.time() < end and sum(d == b"WATCHDOG=1" for d in got) < 3:
        try:
            got.append(sock.recv(4096))
        except BlockingIOError:
            await asyncio.sleep(0.05)
    assert got[0].startswith(b"READY=1")
    assert sum(d == b"WATCHDOG=1" for d in got) >= 3
    for task in list(sdnotify._tasks):
        task.cancel()


@pytest.mark.e2e
def test_serve_says_ready_only_once_listening(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with Sink() as sink:
        relay = Relay(tmp_path, sink.port)
        # start without the harness's wait for the port: READY must come by itself
        start = time.monotonic()
        relay.start()
        try:
            got = fields(sock.recv(4096))
            assert got["READY"] == "1"
            assert str(relay.port) in got["STATUS"]
            assert got["MAINPID"] == str(relay.proc.pid if relay.proc else -1)
            # ready means ready: the SMTP listener and the web server answer now
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as c:
                assert c.recv(100).startswith(b"220")
            import httpx

            health = httpx.get(f"http://127.0.0.1:{relay.web_port}/healthz", timeout=5)
            assert health.status_code == 200
            assert time.monotonic() - start < 60
        finally:
            assert relay.stop() == 0
