"""bench/fuzz_mass.py: the GIL watch sees a C-level GIL hold and not pure Python, and
chunk summaries merge into the figures one run over all their cases gives."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_mass", ROOT / "bench" / "fuzz_mass.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_mass"] = mod
    spec.loader.exec_module(mod)
    return mod


fm = _load()


def test_a_c_level_pass_is_seen_as_one_hold() -> None:
    watch = fm.GilWatch(0.002)
    hay = b"a" * 60_000_000
    watch.start()
    c0 = time.process_time()
    assert re.search(b"ab", hay) is None  # one C call: the GIL is never handed over
    took = time.process_time() - c0
    wall, cpu = watch.stop()
    assert took > 0.03
    assert cpu >= 0.7 * took
    assert wall >= cpu


def test_pure_python_hands_the_gil_over() -> None:
    watch = fm.GilWatch(0.002)
    watch.start()
    c0 = time.process_time()
    n = 0
    while time.process_time() - c0 < 0.3:  # as long as the C pass above, in bytecode
        n += 1
    _wall, cpu = watch.stop()
    # the switch interval is 5 ms; allow for a loaded machine's scheduling
    assert cpu < 0.05, cpu


def _out(i: int) -> dict[str, object]:
    steps = fm.STEPS
    out: dict[str, object] = {
        "i": i,
        "seed": "x.eml",
        "mutations": ["flip"],
        "times": {s: (i * 7 + k) % 13 / 100 for k, s in enumerate(steps)},
        "gil": {s: [(i + k) % 11 / 50, (i + k) % 11 / 60] for k, s in enumerate(steps)},
    }
    if i % 9 == 0:
        out["gil_over"] = [steps[0]]
    if i % 10 == 3:
        out["error"] = {"step": "reply", "exception": "x"}
    return out


def _args(start: int, count: int) -> argparse.Namespace:
    return argparse.Namespace(
        count=count, start=start, seed=1, jobs=2, corpora=None, kill_after=120.0,
        gil_interval=0.002, code="abc", started_at=0,
    )  # fmt: skip


def test_chunks_merge_into_the_whole_runs_figures(tmp_path: Path) -> None:
    whole = fm.Tally()
    files = []
    for start, count in ((0, 17), (17, 40), (57, 3)):
        part = fm.Tally()
        for i in range(start, start + count):
            part.add(_out(i))
            whole.add(_out(i))
        f = tmp_path / f"chunk-{start}.json"
        f.write_text(json.dumps(part.summary(_args(start, count), 1.0, 5)))
        files.append(f)
    out = tmp_path / "merged.json"
    assert fm.merge(list(reversed(files)), out) == 1  # it has exceptions and long holds
    merged = json.loads(out.read_text())
    expect = whole.summary(_args(0, 60), 3.0, 5)
    assert merged["problems"] == []
    for key in ("cases", "exceptions", "gil_over_limit", "steps", "slowest", "slowest_gil"):
        assert merged[key] == expect[key], key
    assert merged["cases"] == 60
    assert merged["gil_over_limit"] == {fm.STEPS[0]: 7}


def test_a_missing_chunk_is_reported(tmp_path: Path) -> None:
    files = []
    for start in (0, 20):
        part = fm.Tally()
        for i in range(start, start + 10):
            part.add(_out(i))
        f = tmp_path / f"chunk-{start}.json"
        f.write_text(json.dumps(part.summary(_args(start, 10), 1.0, 5)))
        files.append(f)
    out = tmp_path / "merged.json"
    fm.merge(files, out)
    assert merged_problems(out) == ["gap or overlap: a chunk starts at 20, expected 10"]


def merged_problems(out: Path) -> list[str]:
    return list(json.loads(out.read_text())["problems"])
