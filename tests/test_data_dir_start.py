"""Issue 12: a data directory the service cannot write stops ``leakguard serve`` at start
with a clear error in Japanese and English that names the directory and what is needed,
exit code 1, and no traceback.

The tests run as root, whom no permission bit stops, so the directory is made unusable in
ways that stop root too (a path under a regular file, a regular file in its place); the
permission case proper runs as ``nobody`` through setpriv when that is possible."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leakguard.service import data_dir_problem

REPO = Path(__file__).resolve().parents[1]
_AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def _serve(data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEAKGUARD_LANG": "en"}
    env.pop("LEAKGUARD_CONFIG", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "leakguard",
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_clear(err: str, data_dir: Path) -> None:
    assert "Traceback" not in err, err
    assert str(data_dir) in err
    assert "データディレクトリ" in err and "書き込める" in err  # Japanese: what is needed
    assert "Cannot use the data directory" in err and "can write" in err


@pytest.mark.parametrize("shape", ["under-a-file", "is-a-file"])
def test_unusable_data_directory_stops_serve_clearly(tmp_path: Path, shape: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file\n")
    data_dir = blocker / "data" if shape == "under-a-file" else blocker
    r = _serve(data_dir, tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    _assert_clear(r.stderr, data_dir)
    assert blocker.read_text() == "a regular file\n"


def test_writable_directory_has_no_problem_and_keeps_no_probe(tmp_path: Path) -> None:
    d = tmp_path / "new" / "data"
    assert data_dir_problem(d) is None
    assert d.is_dir() and list(d.iterdir()) == []


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_read_only_directory_as_a_non_root_user(tmp_path: Path) -> None:
    """chmod 0500 (owner may read, not write) as the owner ``nobody``: the probe refuses it;
    os.access alone would not be asked, the write is."""
    d = tmp_path / "ro"
    d.mkdir()
    os.chown(d, 65534, 65534)
    d.chmod(0o500)
    tmp_path.chmod(0o755)
    code = (
        "import sys; from pathlib import Path; from leakguard.service import data_dir_problem; "
        "p = data_dir_problem(Path(sys.argv[1])); print(p[1] if p else 'OK')"
    )
    r = subprocess.run(
        [*_AS_NOBODY, sys.executable, "-c", code, str(d)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode != 0 and "Permission denied" in r.stderr and "leakguard" not in r.stderr:
        pytest.skip(f"nobody cannot run this interpreter: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(f"Cannot use the data directory {d} (EACCES"), r.stdout
