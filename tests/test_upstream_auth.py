"""Pass-through AUTH: credentials are good when the upstream smarthost accepts them."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from loops import event_loop_policy  # noqa: F401  (both event loops)

from leakguard.delivery.smtp import client_tls_context, try_login
from leakguard.relay.auth import UpstreamAuthenticator


class _Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class _Authenticator:
    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool]] = []  # (login, accepted)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == b"alice@city.example.lg.jp" and auth_data.password == b"s3cret"
        self.attempts.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def upstream() -> Iterator[tuple[int, ssl.SSLContext, _Authenticator]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = client_tls_context()
    ca.configure_trust(client_ctx)
    auth = _Authenticator()
    port = _port()
    ctl = Controller(
        _Handler(),
        hostname="127.0.0.1",
        port=port,
        server_hostname="upstream.test",
        tls_context=server_ctx,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=auth,
    )
    ctl.start()
    try:
        yield port, client_ctx, auth
    finally:
        ctl.stop()


async def test_try_login_over_starttls(
    upstream: tuple[int, ssl.SSLContext, _Authenticator],
) -> None:
    port, ctx, auth = upstream
    kw: dict[str, Any] = {"tls": "starttls", "tls_context": ctx, "timeout": 5}
    assert await try_login(
        "127.0.0.1", port, username="alice@city.example.lg.jp", password="s3cret", **kw
    )
    assert not await try_login(
        "127.0.0.1", port, username="alice@city.example.lg.jp", password="wrong", **kw
    )
    assert [ok for _, ok in auth.attempts].count(True) == 1
    tried = len(auth.attempts)
    # never in clear: without TLS the upstream refuses AUTH, no password crosses, and we say no
    assert not await try_login(
        "127.0.0.1",
        port,
        tls="none",
        tls_context=None,
        username="alice@city.example.lg.jp",
        password="s3cret",
        timeout=5,
    )
    assert len(auth.attempts) == tried


async def test_upstream_authenticator_caches_success_only(
    upstream: tuple[int, ssl.SSLContext, _Authenticator],
) -> None:
    port, ctx, auth = upstream

    async def check(login: str, password: str) -> bool:
        return await try_login(
            "127.0.0.1",
            port,
            tls="starttls",
            tls_context=ctx,
            username=login,
            password=password,
            timeout=5,
        )

    a = UpstreamAuthenticator(check, cache_seconds=60)
    assert await a.authenticate("alice@city.example.lg.jp", "s3cret") == "alice@city.example.lg.jp"
    assert await a.authenticate("alice@city.example.lg.jp", "s3cret") == "alice@city.example.lg.jp"
    assert await a.authenticate("alice@city.example.lg.jp", "nope") is None
    assert await a.authenticate("alice@city.example.lg.jp", "nope") is None
    # the success was checked upstream once and then cached; failures are never cached
    assert [ok for _, ok in auth.attempts].count(True) == 1
    after_first_failure = len(auth.attempts)
    assert await a.authenticate("alice@city.example.lg.jp", "nope") is None
    assert len(auth.attempts) > after_first_failure
