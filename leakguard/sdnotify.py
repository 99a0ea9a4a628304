"""systemd readiness and watchdog notifications (``sd_notify``), without libsystemd.

The protocol is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named
by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). With ``Type=notify``
systemd waits for ``READY=1`` before it counts the unit as started; with ``WatchdogSec=``
it expects ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds and restarts the
service when the pings stop. Implemented here in a few lines rather than taking a
dependency: the maintained Python bindings (``systemd-python``) need libsystemd headers to
build, and the pure-Python ``sdnotify`` package is unmaintained and has no watchdog helper.

Outside systemd (no ``$NOTIFY_SOCKET``) every function does nothing and returns False.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

# at most this long between watchdog pings, whatever WATCHDOG_USEC says (and at least 0.5 s)
_MAX_PING_INTERVAL = 30.0
_tasks: set[asyncio.Task[None]] = set()


def _address(env: dict[str, str] | os._Environ[str]) -> str | None:
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr or not (addr.startswith(("/", "@"))):
        return None  # unset, or a vsock address we do not speak
    return "\0" + addr[1:] if addr.startswith("@") else addr


def notify(state: str, *, env: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=serving"``); True when it was sent."""
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode("utf-8", "replace"))
    except OSError:
        return False  # systemd gone or socket not writable: never a reason to fail serving
    return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when no watchdog is set.

    ``$WATCHDOG_PID``, when present, must be this process (systemd sets it for the main
    process only).
    """
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC", "")
    pid = e.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return max(0.5, min(_MAX_PING_INTERVAL, int(usec) / 2_000_000))


async def _ping_forever(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def ready(status: str = "serving") -> bool:
    """Tell systemd the service is ready; start watchdog pings from the running event loop.

    Pings come from the event loop itself, so a blocked loop (the thing worth restarting
    for) stops them. Call once, from a coroutine, after every listener is bound.
    """
    one_line = " ".join(status.split())[:200]
    sent = notify(f"READY=1\nSTATUS={one_line}\nMAINPID={os.getpid()}")
    interval = watchdog_interval()
    if sent and interval is not None:
        with contextlib.suppress(RuntimeError):  # no running loop: no pings
            task = asyncio.get_running_loop().create_task(
                _ping_forever(interval), name="sd-watchdog"
            )
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
    return sent


__all__ = ["notify", "ready", "watchdog_interval"]
