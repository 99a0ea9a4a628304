"""Evaluate the default policy on the real corpora (evaluation data, never shipped).

Enron (``enron-subset/``): every message whose From address is internal (enron.com or a
subdomain) is treated as outgoing mail: envelope sender = From, recipients = To+Cc+Bcc. The
organisation is Enron's own (``internal_domains: [enron.com, "*.enron.com"]``); its people
directory is derived at run time from the X-From names of enron.com senders (a stand-in for an
HR directory). Both files are written into the output directory, which is gitignored: they
contain real people's names and must not be committed.

Sisimai (``sisimai-set-of-emails/``): inbound bounces. Measured: parsing never fails, and a
bounce forwarded (as an attached message and inline) by a user to an internal help desk passes.

Prints a summary table; writes per-message results (JSON lines) and a hold sample for reading
into the output directory.

    .venv/bin/python bench/evaluate_corpus.py [--corpora DIR] [--out DIR] [--processes 2]
        [--no-directory] [--extra-internal] [--sample N] [--json]
"""

from __future__ import annotations

import argparse
import collections
import csv
import email
import email.policy
import email.utils
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leakguard.commands.check import decision_json  # noqa: E402
from leakguard.engine import Engine  # noqa: E402
from leakguard.message.parse import parse_message  # noqa: E402
from leakguard.organization import domain_matches  # noqa: E402
from leakguard.policy import load_policy  # noqa: E402

DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
DEFAULT_OUT = ROOT / "bench" / "corpus" / "out"
INTERNAL = ("enron.com", "*.enron.com")
# Other SMTP domains of Enron itself that appear in the corpus as recipients; only used with
# --extra-internal (a sensitivity check: the brief's organisation is enron.com only).
EXTRA_INTERNAL = ("enron.net", "enron.co.uk")
RULES = (
    "bulk-external",
    "bcc-rewrite-exposed",
    "mixed-organizations",
    "forwarded-third-party",
    "forward-to-own-mailbox",
    "similar-to-colleague",
    "lookalike-domain",
    "personal-my-number",
    "personal-identifiers",
    "unmasked-personal-form",
    "personal-birth-date",
    "unreadable-attachment",
    "uninspected-content",
    "addressee-mismatch",
)


def find_corpora(explicit: str | None) -> Path:
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    env = os.environ.get("LEAKGUARD_CORPORA")
    if env:
        candidates.append(Path(env))
    candidates += [ROOT.parent / "shared" / "corpora", Path("/work/shared/corpora")]
    for c in candidates:
        if c.is_dir():
            return c
    raise SystemExit("corpora not found: pass --corpora or set LEAKGUARD_CORPORA")


# --------------------------------------------------------------------------- organisation


def is_internal(addr: str, patterns: Sequence[str]) -> bool:
    domain = addr.rpartition("@")[2].lower()
    return bool(domain) and "@" in addr and any(domain_matches(domain, p) for p in patterns)


def from_address(raw: bytes) -> str:
    """The first From address, lower-cased ("" if none)."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    msg = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
    value = str(msg.get("From", "") or "")
    addrs = email.utils.getaddresses([value])
    return addrs[0][1].strip().lower() if addrs and addrs[0][1] else ""


_NOTES_NAME = re.compile(r"^(?P<name>[^/<@]+?)\s*/[A-Za-z0-9/ ]+(@[A-Za-z0-9.]+)?$")


def clean_person_name(x_from: str) -> str:
    """A person's name from an X-From value: ``Name``, ``Name/HOU/ECT@ECT``, ``"Last, First"
    <addr>``. Returns "" for values that are addresses or not recognisably a name."""
    value = x_from.strip()
    if "<" in value:
        value = value.split("<", 1)[0]
    value = value.strip().strip('"').strip("'").strip()
    m = _NOTES_NAME.match(value)
    if m:
        value = m.group("name").strip()
    if "@" in value or not value:
        return ""
    if value.count(",") == 1:
        last, first = (s.strip() for s in value.split(","))
        value = f"{first} {last}".strip()
    value = re.sub(r"\s+", " ", value)
    if not re.fullmatch(r"[A-Za-z][A-Za-z .'\-]{1,60}", value) or " " not in value:
        return ""
    return value


def build_directory(files: Iterable[Path], patterns: Sequence[str]) -> dict[str, str]:
    """email -> most frequent clean X-From name, over messages sent from internal addresses."""
    names: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for path in files:
        raw = path.read_bytes()
        sender = from_address(raw)
        if not sender or not is_internal(sender, patterns):
            continue
        head = raw.split(b"\n\n", 1)[0]
        msg = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
        name = clean_person_name(str(msg.get("X-From", "") or ""))
        if name:
            names[sender][name] += 1
    return {addr: c.most_common(1)[0][0] for addr, c in sorted(names.items())}


def write_organization(
    out: Path, patterns: Sequence[str], directory: dict[str, str] | None
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated by bench/evaluate_corpus.py for the Enron corpus. Do not commit.",
        "internal_domains: [" + ", ".join(json.dumps(p) for p in patterns) + "]",
    ]
    if directory is not None:
        with (out / "enron-directory.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["email", "name", "kana", "department", "supervisor", "language"])
            for addr, name in directory.items():
                w.writerow([addr, name, "", "", "", "en"])
        lines.append("directory: enron-directory.csv")
    path = out / "enron-organization.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- workers

_ENGINE: Engine | None = None
_ENGINE_ERROR = ""


def _init_worker(policy_path: str, org_path: str | None) -> None:
    """Build the worker's engine. A failure is recorded, not raised: a Pool whose initializer
    raises respawns workers for ever instead of stopping."""
    global _ENGINE, _ENGINE_ERROR
    try:
        org = Path(org_path) if org_path else None
        _ENGINE = Engine(load_policy(Path(policy_path), org_path=org))
    except Exception:
        _ENGINE_ERROR = traceback.format_exc(limit=3)


def _decide(job: tuple[str, str, str]) -> dict[str, Any]:
    """Run the engine on one corpus file; never raises (errors are reported)."""
    path, rel, sender = job
    if _ENGINE is None:
        return {"file": rel, "error": _ENGINE_ERROR or "engine not initialised"}
    raw = Path(path).read_bytes()
    try:
        d = _ENGINE.decide(raw, envelope_from=sender or None)
    except Exception:  # measuring: a crash is a result, not a reason to stop
        return {"file": rel, "error": traceback.format_exc(limit=3)}
    out = decision_json(rel, d)  # the same record as `leakguard check --json`
    out["cpu_ms"] = d.cpu_seconds * 1000
    out["n_rcpts"] = len(d.message.envelope_rcpts)
    return out


def _run(
    jobs: list[tuple[str, str, str]], processes: int, policy: Path, org: Path | None
) -> Iterator[dict[str, Any]]:
    init = (str(policy), str(org) if org else None)
    Engine(load_policy(policy, org_path=org))  # fail fast, in the parent, on a broken setup
    if processes <= 1:
        _init_worker(*init)
        yield from map(_decide, jobs)
        return
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(processes, initializer=_init_worker, initargs=init) as pool:
        yield from pool.imap(_decide, jobs, chunksize=16)


# --------------------------------------------------------------------------- summaries


@dataclass
class Tally:
    name: str
    n: int = 0
    actions: collections.Counter[str] = field(default_factory=collections.Counter)
    rules: collections.Counter[str] = field(default_factory=collections.Counter)
    only_rule: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, r: dict[str, Any]) -> None:
        self.n += 1
        self.actions[r.get("action", "error")] += 1
        for rule in r.get("rules", []):
            self.rules[rule] += 1
        if r.get("action") == "hold":
            holds = [x for x in r["rules"] if x != "bulk-external"]
            if len(holds) == 1:
                self.only_rule[holds[0]] += 1

    def pct(self, k: int) -> str:
        return f"{k:5d} {100 * k / self.n:5.1f} %" if self.n else f"{k:5d}     - "

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "actions": dict(self.actions),
            "rules": dict(self.rules),
            "hold_only_by_rule": dict(self.only_rule),
        }


def print_table(tallies: Sequence[Tally]) -> None:
    width = max(24, 6 + max(len(r) for r in RULES), 15 + max(len(r) for r in RULES))
    head = f"{'':{width}}" + "".join(f"{t.name:>16}" for t in tallies)
    print(head)
    print(f"{'messages':{width}}" + "".join(f"{t.n:>16d}" for t in tallies))
    for a in ("pass", "bcc", "delay", "hold", "reject", "error"):
        if any(t.actions[a] for t in tallies):
            print(
                f"{'action ' + a:{width}}" + "".join(f"{t.pct(t.actions[a]):>16}" for t in tallies)
            )
    for rule in RULES:
        print(f"{'rule ' + rule:{width}}" + "".join(f"{t.pct(t.rules[rule]):>16}" for t in tallies))
    for rule in RULES[1:]:
        print(
            f"{'  held only by ' + rule:{width}}"
            + "".join(f"{t.pct(t.only_rule[rule]):>16}" for t in tallies)
        )


def evaluate_enron(args: argparse.Namespace, corpora: Path, out: Path) -> dict[str, Any]:
    root = corpora / "enron-subset"
    rows = list(csv.DictReader((root / "manifest.csv").open(encoding="utf-8")))
    patterns = INTERNAL + (EXTRA_INTERNAL if args.extra_internal else ())
    t0 = time.perf_counter()
    files = [root / r["file"] for r in rows]
    directory = None if args.no_directory else build_directory(files, patterns)
    org_path = write_organization(out, patterns, directory)
    jobs: list[tuple[str, str, str]] = []
    strata: dict[str, set[str]] = {}
    skipped = collections.Counter[str]()
    for r in rows:
        path = root / r["file"]
        sender = from_address(path.read_bytes())
        if not sender:
            skipped["no From address"] += 1
            continue
        if not is_internal(sender, patterns):
            skipped["From not internal"] += 1
            continue
        rel = f"enron-subset/{r['file']}"
        strata[rel] = {s for s in r["strata"].split(";") if s}
        jobs.append((str(path), rel, sender))
    all_t, sent_t = Tally("internal-sent"), Tally("sent stratum")
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for res in _run(jobs, args.processes, Path(args.policy), org_path):
        res["strata"] = sorted(strata[res["file"]])
        results.append(res)
        if "error" in res:
            errors.append(res)
        all_t.add(res)
        if "sent" in strata[res["file"]]:
            sent_t.add(res)
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: r["file"])
    with (out / "enron-results.jsonl").open("w", encoding="utf-8") as fh:
        for res in results:
            fh.write(json.dumps(res, ensure_ascii=False) + "\n")
    # a reproducible sample of holds per rule for reading (paths and evidence only)
    rnd = random.Random(args.seed)
    sample: dict[str, list[str]] = {}
    for rule in RULES[1:]:
        held = [r["file"] for r in results if r.get("action") == "hold" and rule in r["rules"]]
        sample[rule] = sorted(rnd.sample(held, min(args.sample, len(held))))
    (out / "enron-hold-sample.json").write_text(json.dumps(sample, indent=1), encoding="utf-8")
    cpu = sorted(r["cpu_ms"] for r in results if "cpu_ms" in r)
    p99 = cpu[min(len(cpu) - 1, int(0.99 * len(cpu)))] if cpu else 0.0
    print(
        f"Enron subset: {len(rows)} messages; outgoing (From internal): {len(jobs)}; "
        f"skipped: {dict(skipped)}; directory: "
        f"{'none' if directory is None else f'{len(directory)} people from X-From names'}"
    )
    print_table([sent_t, all_t])
    print(f"engine errors: {len(errors)}")
    for e in errors[:5]:
        print(f"  {e['file']}: {e['error'].strip().splitlines()[-1]}")
    if cpu:
        print(
            f"engine CPU per message: median {statistics.median(cpu):.2f} ms, p99 {p99:.2f} ms, "
            f"max {cpu[-1]:.1f} ms; wall {wall:.1f} s with {args.processes} process(es)"
        )
    return {
        "messages": len(rows),
        "outgoing": len(jobs),
        "skipped": dict(skipped),
        "directory_people": None if directory is None else len(directory),
        "sent": sent_t.as_dict(),
        "internal_sent": all_t.as_dict(),
        "errors": len(errors),
        "cpu_ms_median": statistics.median(cpu) if cpu else None,
        "cpu_ms_p99": p99,
        "wall_s": wall,
    }


# --------------------------------------------------------------------------- sisimai

HELPDESK_ORG = ("city.example.lg.jp", "*.city.example.lg.jp")
USER = "kazuya.sato@city.example.lg.jp"
HELPDESK = "helpdesk@city.example.lg.jp"


def forward_as_attachment(raw: bytes) -> bytes:
    boundary = "lg-eval-" + os.urandom(8).hex()
    head = (
        f"From: Sato <{USER}>\r\nTo: Help desk <{HELPDESK}>\r\n"
        "Subject: Fw: bounce\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "My mail bounced, see attached.\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode()
    return head + raw + f"\r\n--{boundary}--\r\n".encode()


def forward_inline(raw: bytes) -> bytes:
    body = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    text = "My mail bounced:\n\n-----Original Message-----\n" + body
    head = (
        f"From: Sato <{USER}>\r\nTo: Help desk <{HELPDESK}>\r\nSubject: Fw: bounce\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + text.replace("\n", "\r\n").encode("utf-8")


@dataclass
class BounceResult:
    files: int = 0
    parse_failures: list[str] = field(default_factory=list)
    with_attached_message: int = 0
    actions: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: {"attached": collections.Counter(), "inline": collections.Counter()}
    )
    not_pass: list[tuple[str, str, str]] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def check_bounces(files: Sequence[Path], engine: Engine, base: Path) -> BounceResult:
    """Parse every bounce; forward each (attached and inline) to the internal help desk."""
    out = BounceResult(files=len(files))
    for p in files:
        rel = str(p.relative_to(base))
        raw = p.read_bytes()
        try:
            msg = parse_message(raw)
        except Exception:  # measuring: "parse_message never raises" is what is checked
            out.parse_failures.append(rel)
            continue
        out.with_attached_message += bool(msg.attached_messages)
        for kind, fwd in (("attached", forward_as_attachment), ("inline", forward_inline)):
            try:
                d = engine.decide(fwd(raw), envelope_from=USER, rcpts=[HELPDESK])
            except Exception:
                out.actions[kind]["error"] += 1
                out.not_pass.append((rel, kind, "error"))
                continue
            out.cpu_ms.append(d.cpu_seconds * 1000)
            out.actions[kind][d.verdict.action.value] += 1
            if d.verdict.action.value != "pass":
                out.not_pass.append((rel, kind, ",".join(d.verdict.rule_ids)))
    return out


def bounce_files(corpora: Path) -> list[Path]:
    root = corpora / "sisimai-set-of-emails" / "maildir"
    return sorted(p for p in root.rglob("*") if p.is_file())


def evaluate_sisimai(args: argparse.Namespace, corpora: Path) -> dict[str, Any]:
    files = bounce_files(corpora)
    engine = Engine(load_policy(Path(args.policy)))  # the default (fictional city) organisation
    res = check_bounces(files, engine, corpora)
    print(
        f"\nSisimai bounces: {res.files} files; parse failures: {len(res.parse_failures)}; "
        f"with an attached message (message/rfc822) found: {res.with_attached_message}"
    )
    for kind, c in res.actions.items():
        print(f"  forwarded to internal help desk ({kind}): {dict(c)}")
    for rel, kind, why in res.not_pass[:10]:
        print(f"    not pass: {rel} ({kind}): {why}")
    if res.cpu_ms:
        cpu = sorted(res.cpu_ms)
        print(
            f"  engine CPU per forward: median {statistics.median(cpu):.2f} ms, "
            f"max {cpu[-1]:.1f} ms"
        )
    return {
        "files": res.files,
        "parse_failures": res.parse_failures,
        "with_attached_message": res.with_attached_message,
        "forward_actions": {k: dict(v) for k, v in res.actions.items()},
        "not_pass": res.not_pass,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--corpora",
        help="corpora directory (default: $LEAKGUARD_CORPORA, "
        "../shared/corpora, /work/shared/corpora)",
    )
    ap.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="output directory for the generated organisation and results "
        "(default bench/corpus/out, gitignored)",
    )
    ap.add_argument("--policy", default=str(DEFAULT_POLICY))
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--no-directory",
        action="store_true",
        help="organisation without the derived people directory",
    )
    ap.add_argument(
        "--extra-internal",
        action="store_true",
        help=f"also treat {', '.join(EXTRA_INTERNAL)} as internal",
    )
    ap.add_argument("--sample", type=int, default=40, help="holds per rule in the reading sample")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--skip-sisimai", action="store_true")
    ap.add_argument("--json", action="store_true", help="also print the summary as JSON")
    args = ap.parse_args(argv)
    corpora = find_corpora(args.corpora)
    out = Path(args.out)
    summary: dict[str, Any] = {"enron": evaluate_enron(args, corpora, out)}
    if not args.skip_sisimai:
        summary["sisimai"] = evaluate_sisimai(args, corpora)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
