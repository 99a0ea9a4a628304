"""Run a test module on both event loops: ``from loops import event_loop_policy`` (a
pytest-asyncio fixture). ``leakguard serve`` runs on uvloop by default; the in-process
tests run on asyncio's loop unless a module asks for both, as the ones whose code touches
transports directly do (the SMTP engine, TLS, the upstream client)."""

from __future__ import annotations

import asyncio

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where it installs
    uvloop = None  # type: ignore[assignment]


@pytest.fixture(
    scope="module",
    params=[
        "asyncio",
        pytest.param(
            "uvloop", marks=pytest.mark.skipif(uvloop is None, reason="uvloop not installed")
        ),
    ],
)
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    if request.param == "uvloop":
        assert uvloop is not None
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()
