"""Connections shared out among worker processes (``relay/balance.py``): the load board, and
the accept loop that leaves a new connection to a less loaded sibling. The siblings here are
accept loops on duplicates of one listening socket in one event loop (the same open socket,
as after a fork); ``tests/e2e/test_e2e_workers.py`` checks real worker processes."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from leakguard.relay import balance
from leakguard.relay.balance import DEAD, BalancedServer, LoadBoard, WorkerLoad


class _Greeter(asyncio.Protocol):
    """Says which sibling took the connection, counts it open until it closes."""

    def __init__(self, name: str, load: WorkerLoad) -> None:
        self.name = name
        self.load = load

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.load.opened()
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.name.encode() + b"\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.closed()


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def _server(
    sock: socket.socket, name: str, board: LoadBoard, index: int, **tls: object
) -> tuple[BalancedServer, WorkerLoad]:
    load = WorkerLoad(board, index)
    server = BalancedServer(sock, lambda: _Greeter(name, load), load, **tls)  # type: ignore[arg-type]
    server.start()
    return server, load


async def _connect(port: int, n: int, **kw: object) -> list[tuple[str, asyncio.StreamWriter]]:
    async def one() -> tuple[str, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **kw)  # type: ignore[arg-type]
        line = await asyncio.wait_for(reader.readline(), 5)
        return line.decode().strip(), writer

    return list(await asyncio.gather(*(one() for _ in range(n))))


@pytest.fixture
async def pair() -> AsyncIterator[tuple[int, LoadBoard, list[BalancedServer], Callable[[], None]]]:
    """Two siblings, "a" (worker 0) and "b" (worker 1), on one listening socket."""
    board = LoadBoard(2)
    base = _listener()
    dup = base.dup()
    a, _ = _server(base, "a", board, 0)
    b, _ = _server(dup, "b", board, 1)

    def close() -> None:
        a.close()
        b.close()

    yield base.getsockname()[1], board, [a, b], close
    close()
    base.close()
    dup.close()


def test_board_slots_start_dead_and_the_least_loaded_live_sibling_counts() -> None:
    board = LoadBoard(3)
    assert [board.get(i) for i in range(3)] == [DEAD] * 3
    assert board.least_of_others(0) is None  # nobody else alive
    board.set(1, 4)
    board.set(2, 2)
    assert board.least_of_others(0) == 2
    assert board.least_of_others(2) == 4  # its own slot is never its sibling
    board.mark_dead(2)
    assert board.least_of_others(0) == 4
    with pytest.raises(ValueError):
        LoadBoard(0)


def test_the_board_is_shared_with_a_forked_child() -> None:
    board = LoadBoard(2)
    pid = os.fork()
    if pid == 0:  # the child writes its slot, as a worker does
        board.set(1, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.get(1) == 7


def test_worker_load_publishes_pending_and_open_connections() -> None:
    board = LoadBoard(2)
    load = WorkerLoad(board, 0)
    assert board.get(0) == 0  # a started worker is alive with nothing open
    load.opened()
    load.pending += 1
    load.publish()
    assert board.get(0) == 2
    assert not load.busier_than_siblings()  # the sibling is dead: nobody to leave it to
    board.set(1, 1)
    assert load.busier_than_siblings()
    board.set(1, 2)
    assert not load.busier_than_siblings()  # as busy: both accept
    load.closed()
    assert board.get(0) == 1


async def test_connections_that_arrive_together_are_shared_out_evenly(
    pair: tuple[int, LoadBoard, list[BalancedServer], Callable[[], None]],
) -> None:
    port, board, _servers, _close = pair
    got = await _connect(port, 20)
    names = [n for n, _ in got]
    assert abs(names.count("a") - names.count("b")) <= 2, names
    assert board.get(0) + board.get(1) == 20
    for _, w in got:
        w.close()
    for _ in range(100):
        if board.get(0) == board.get(1) == 0:
            break
        await asyncio.sleep(0.01)
    assert (board.get(0), board.get(1)) == (0, 0)  # closed connections are counted off


async def test_a_sibling_that_does_not_accept_delays_a_connection_only_briefly() -> None:
    """A sibling marked alive and idle that never accepts (stuck, or busy deciding): the
    busier worker leaves it each new connection for ``DEFER_SECONDS``, then takes it."""
    board = LoadBoard(2)
    sock = _listener()
    server, load = _server(sock, "a", board, 0)
    try:
        load.opened()  # one connection open already: busier than the idle sibling
        board.set(1, 0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = await _connect(sock.getsockname()[1], 3)
        took = loop.time() - t0
        assert [n for n, _ in got] == ["a"] * 3
        assert server.deferred >= 1
        assert took < 3 * balance.DEFER_SECONDS + 1.0
        for _, w in got:
            w.close()
    finally:
        server.close()
        sock.close()


async def test_a_dead_sibling_is_not_waited_for() -> None:
    board = LoadBoard(2)
    sock = _listener()
    server, load = _server(sock, "a", board, 0)
    try:
        for _ in range(5):
            load.opened()
        board.mark_dead(1)
        got = await _connect(sock.getsockname()[1], 4)
        assert [n for n, _ in got] == ["a"] * 4
        assert server.deferred == 0
        for _, w in got:
            w.close()
    finally:
        server.close()
        sock.close()


async def test_a_closed_server_stops_accepting_and_leaves_the_socket_to_its_siblings(
    pair: tuple[int, LoadBoard, list[BalancedServer], Callable[[], None]],
) -> None:
    port, _board, (a, b), _close = pair
    a.close()
    assert not a.is_serving() and a.sockets == ()
    assert b.is_serving() and b.sockets
    got = await _connect(port, 6)
    assert [n for n, _ in got] == ["b"] * 6  # the shared socket is still open and served
    for _, w in got:
        w.close()
    await a.wait_closed()


async def test_tls_connections_and_a_failed_handshake(tmp_path: Path) -> None:
    """The smtps listener's socket is TLS from the first byte: the handshake runs in the
    connection's set-up; a client that fails it is counted off and nothing else changes."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    board = LoadBoard(2)
    sock = _listener()
    server, load = _server(sock, "a", board, 0, ssl=server_ctx, ssl_handshake_timeout=5.0)
    port = sock.getsockname()[1]
    try:
        # a client that speaks plain text to the TLS socket
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"EHLO plain.example\r\n" * 200)
        await w.drain()
        assert await asyncio.wait_for(r.read(), 10) == b""  # the server gave up on it
        w.close()
        got = await _connect(port, 2, ssl=client_ctx, server_hostname="127.0.0.1")
        assert [n for n, _ in got] == ["a", "a"]
        assert load.active == 2 and load.pending == 0
        for _, w2 in got:
            w2.close()
    finally:
        server.close()
        sock.close()


class _Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def error(self, event: str, **_kw: object) -> None:
        self.events.append(event)

    def debug(self, event: str, **_kw: object) -> None:
        self.events.append(event)


class _OutOfFiles(socket.socket):
    """A listening socket whose first accept fails as at the open-file limit (EMFILE)."""

    failed = 0

    def accept(self) -> tuple[socket.socket, object]:
        if not self.failed:
            self.failed += 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_out_of_files_pauses_accepting_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the open-file limit the socket stays readable: the worker logs it, stops
    watching the socket for a while (no busy loop) and then serves the connection."""
    monkeypatch.setattr(balance, "ACCEPT_RETRY_SECONDS", 0.2)
    sock = _OutOfFiles(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    board = LoadBoard(2)
    log = _Log()
    load = WorkerLoad(board, 0)
    server = BalancedServer(sock, lambda: _Greeter("a", load), load, log=log)
    server.start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = await _connect(sock.getsockname()[1], 1)
        assert [n for n, _ in got] == ["a"]
        assert log.events == ["accept_failed"] and sock.failed == 1
        assert loop.time() - t0 >= 0.15  # it waited, rather than retrying at once
        got[0][1].close()
    finally:
        server.close()
        sock.close()
