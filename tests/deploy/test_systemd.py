"""The systemd units pass ``systemd-analyze verify`` and keep their hardening."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze")
INSTALLED = "/opt/leakguard/bin/leakguard"

if ANALYZE is None:
    print("SKIP systemd unit checks: systemd-analyze is not installed (package systemd)")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)


def _leakguard_script() -> str:
    script = Path(sys.executable).parent / "leakguard"
    return str(script) if script.exists() else (shutil.which("leakguard") or sys.executable)


def _copy_units(tmp: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's console script (verify checks
    that the binary exists and is executable)."""
    out = []
    for unit in sorted(UNITS.glob("leakguard*")):
        text = unit.read_text("utf-8").replace(INSTALLED, _leakguard_script())
        dst = tmp / unit.name
        dst.write_text(text, "utf-8")
        out.append(dst)
    return out


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=paths[0].parent,
        check=False,
    )


@needs_analyze
def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    units = _copy_units(tmp_path)
    assert {u.name for u in units} == {
        "leakguard.service",
        "leakguard-backup.service",
        "leakguard-backup.timer",
    }
    done = _verify(units)
    assert done.returncode == 0, done.stderr
    # verify only warns about unknown keys and bad values: any output is a failure here
    assert done.stderr.strip() == "", done.stderr


@needs_analyze
def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    (unit,) = [u for u in _copy_units(tmp_path) if u.name == "leakguard.service"]
    text = unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter")
    unit.write_text(text.replace("[Service]\n", "[Service]\nDynamicUsers=yes\n"))
    done = _verify([unit])
    assert "ProtectSystem" in done.stderr or "protect system" in done.stderr
    assert "DynamicUsers" in done.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    (unit,) = [u for u in _copy_units(tmp_path) if u.name == "leakguard.service"]
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    m = re.search(r"Overall exposure level for leakguard\.service: ([0-9.]+)", done.stdout)
    if m is None:
        pytest.skip(f"systemd-analyze security --offline not supported here: {done.stderr[:200]}")
    assert float(m.group(1)) <= 2.0, done.stdout[-3000:]


def _service_section(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / name).read_text("utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            k, _, v = line.partition("=")
            values.setdefault(k, []).append(v)
    return values


def test_main_unit_has_the_hardening_the_docs_promise() -> None:
    s = _service_section("leakguard.service")
    assert s["Type"] == ["notify"]
    assert s["DynamicUser"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["StateDirectory"] == ["leakguard"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["PrivateTmp"] == ["yes"]
    assert s["ProtectHome"] == ["yes"]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["CapabilityBoundingSet"] == [""]  # none: the default ports are above 1024
    assert s["AmbientCapabilities"] == [""]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["ExecStart"][0].startswith(f"{INSTALLED} serve ")
    # the backup job runs as the same (dynamic) user so it can read the store
    b = _service_section("leakguard-backup.service")
    assert b["User"] == s["User"] == ["leakguard"]
    assert "leakguard" in b["StateDirectory"][0].split()
