"""PROXY protocol on a listener behind a load balancer (issue 11): the real client named in
a v1 or v2 header is what the trusted-network check sees; only the balancers listed in
``proxy_trusted`` may send one; everybody else is cut off."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.sink import Sink
from relay_fakes import FakeEngine

from leakguard.config import ConfigError, ServiceConfig, parse_config_text
from leakguard.service import Service

ALICE = "alice@city.example.lg.jp"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src: str, sport: int = 40000) -> bytes:
    return f"PROXY TCP4 {src} 192.0.2.10 {sport} 25\r\n".encode()


def v2(src: str, sport: int = 40001, *, local: bool = False) -> bytes:
    if local:  # the balancer's own health check: no addresses
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    body = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address("192.0.2.10").packed
        + struct.pack("!HH", sport, 25)
    )
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def mail(tag: str) -> bytes:
    return (
        f"From: {ALICE}\r\nTo: bob@partner.example.co.jp\r\nSubject: proxy {tag}\r\n"
        f"Message-ID: <{tag}@city.example.lg.jp>\r\nX-Test-Action: pass\r\n\r\nbody\r\n"
    ).encode()


class Conn:
    """A raw SMTP client over a socket: the PROXY header goes out first, as HAProxy sends it."""

    def __init__(self, port: int, header: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        if header:
            self.sock.sendall(header)

    def reply(self) -> tuple[int, str]:
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if len(line) >= 4 and line[3:4] == b" ":
                    self.buf = b"\r\n".join(lines[i + 1 :])
                    return int(line[:3]), line.decode("utf-8", "replace")
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return 0, ""  # closed by the relay
            self.buf += chunk

    def cmd(self, line: str) -> tuple[int, str]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send_mail(self, tag: str) -> int:
        assert self.cmd("EHLO client.test")[0] == 250
        code, _ = self.cmd(f"MAIL FROM:<{ALICE}>")
        if code != 250:
            return code
        assert self.cmd("RCPT TO:<bob@partner.example.co.jp>")[0] == 250
        assert self.cmd("DATA")[0] == 354
        self.sock.sendall(mail(tag) + b".\r\n")
        code = self.reply()[0]
        self.cmd("QUIT")
        return code

    def close(self) -> None:
        self.sock.close()


@dataclass
class Env:
    service: Service
    sink: Sink

    @property
    def behind(self) -> int:  # balancer on loopback, real clients 10.1.2.0/24 trusted
        return self.service.smtp_ports["plain-0"]

    @property
    def elsewhere(self) -> int:  # only 192.0.2.0/24 may send PROXY headers here
        return self.service.smtp_ports["plain-1"]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    with Sink() as sink:
        cfg = ServiceConfig.model_validate(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "data"),
                "listeners": [
                    {
                        "kind": "plain",
                        "listen": "127.0.0.1:0",
                        "trusted_networks": ["10.1.2.0/24"],
                        "proxy_protocol": True,
                        "proxy_trusted": ["127.0.0.0/8"],
                    },
                    {
                        "kind": "plain",
                        "listen": "127.0.0.1:0",
                        "trusted_networks": ["127.0.0.0/8", "10.1.2.0/24"],
                        "proxy_protocol": True,
                        "proxy_trusted": ["192.0.2.0/24"],
                    },
                ],
                "upstream": {"host": "127.0.0.1", "port": sink.port, "tls": "none"},
                "web": {"listen": "127.0.0.1:0"},
                "holds": {
                    "notice_from": "leakguard@city.example.lg.jp",
                    "command_address": "leakguard-hold@city.example.lg.jp",
                },
            }
        )
        service = Service(config=cfg, policy_path=tmp_path / "unused.yaml", engine=FakeEngine())
        await service.start()
        try:
            yield Env(service, sink)
        finally:
            await service.stop(timeout=5)


def _session(port: int, header: bytes, tag: str) -> tuple[int, int]:
    c = Conn(port, header)
    try:
        greeting = c.reply()[0]
        return greeting, (c.send_mail(tag) if greeting == 220 else 0)
    finally:
        c.close()


async def session(port: int, header: bytes, tag: str) -> tuple[int, int]:
    return await asyncio.to_thread(_session, port, header, tag)


def subjects(sink: Sink) -> list[str]:
    out = []
    for m in sink.handler.messages:
        for line in m.data.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
    return out


async def test_v1_and_v2_headers_name_the_real_client(env: Env) -> None:
    # the real client is in trusted_networks: it may relay although the balancer is not
    assert await session(env.behind, v1("10.1.2.3"), "v1-trusted") == (220, 250)
    assert await session(env.behind, v2("10.1.2.4"), "v2-trusted") == (220, 250)
    # a real client outside trusted_networks is refused, as if it had connected directly
    assert await session(env.behind, v1("203.0.113.5"), "v1-stranger") == (220, 550)
    assert await session(env.behind, v2("203.0.113.6"), "v2-stranger") == (220, 550)
    for _ in range(100):
        if len(env.sink.handler.messages) >= 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(subjects(env.sink)) == ["proxy v1-trusted", "proxy v2-trusted"]


async def test_a_health_check_without_addresses_keeps_the_balancers_address(env: Env) -> None:
    # v2 LOCAL: the balancer speaks for itself (127.0.0.1, not in trusted_networks here)
    assert await session(env.behind, v2("0.0.0.0", local=True), "local") == (220, 550)


async def test_no_or_a_broken_header_closes_the_connection(env: Env) -> None:
    assert await session(env.behind, b"EHLO client.test\r\n", "none") == (0, 0)
    assert await session(env.behind, b"PROXY TCP4 nonsense\r\n", "broken") == (0, 0)


async def test_headers_from_anyone_but_the_balancers_are_refused(env: Env) -> None:
    # loopback is in this listener's trusted_networks, but not among its proxies: cut off
    # before the greeting, whatever it sends
    assert await session(env.elsewhere, v1("10.1.2.3"), "spoof") == (0, 0)
    assert await session(env.elsewhere, b"", "plain") == (0, 0)
    assert env.sink.handler.messages == []


def test_configuration_needs_the_balancers_and_a_cleartext_start() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text("listeners:\n  - kind: plain\n    proxy_protocol: true\n")
    assert "proxy_trusted" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config_text(
            "listeners:\n  - kind: smtps\n    proxy_protocol: true\n"
            "    proxy_trusted: [10.0.0.1/32]\n"
        )
    assert "submission" in str(err.value)
    cfg = parse_config_text(
        "listeners:\n  - kind: submission\n    proxy_protocol: true\n"
        "    proxy_trusted: [10.0.0.1/32, 'fd00::/8']\n"
    )
    assert cfg.listeners[0].proxy_trusted == ["10.0.0.1/32", "fd00::/8"]
