"""Run ``leakguard serve`` as a real subprocess against a sink started by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "relay" / "policy.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


class Relay:
    def __init__(
        self,
        tmp: Path,
        sink_port: int,
        *,
        extra: dict[str, Any] | None = None,
        policy: Path = POLICY,
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.web_port = free_port()
        self.data = tmp / "data"
        self.log_path = tmp / "relay.log"
        cfg: dict[str, Any] = {
            "hostname": "relay.test",
            "data_dir": str(self.data),
            "policy": str(policy),
            "listeners": [{"kind": "plain", "listen": f"127.0.0.1:{self.port}"}],
            "upstream": {"host": "127.0.0.1", "port": sink_port, "tls": "none", "timeout": "10s"},
            "web": {"listen": f"127.0.0.1:{self.web_port}"},
            "delivery": {"poll_interval": "1s", "retry_base": "1s", "retry_max": "2s"},
            "log": {"json": True, "level": "info"},
        }
        for k, v in (extra or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        self.config = tmp / "leakguard.yaml"
        self.config.write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Relay:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leakguard", "serve", "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.tmp),
            env=env,
        )
        log.close()
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError("relay did not start:\n" + self.log())
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)
