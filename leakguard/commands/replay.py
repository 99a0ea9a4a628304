"""``leakguard replay``: what a new policy would change, before the officer reloads it.

Every mail of the SOURCEs (maildirs, mbox files, directories of ``.eml`` files, single
``.eml`` files) is decided by the new policy (``--policy``) and by the baseline (``--baseline``,
default: the policy the service runs, else the shipped default); the diff is shown by
action, rule, department and sender. The work is spread over ``-j`` processes; see
:mod:`leakguard.officer.replay`. Exit status: 0, or 3 with ``--fail-on-change`` when any
mail's decision changed; 2 for unusable arguments or policies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from tqdm import tqdm

from leakguard.config import ConfigError, find_config_file, load_config
from leakguard.i18n import lang_from_env
from leakguard.officer.replay import ItemResult, ReplaySettings, WorkersFailing, run_replay
from leakguard.officer.replay_report import Aggregator, changed_line, render_text
from leakguard.officer.replay_sources import ReplaySource, SourceError, open_source
from leakguard.policy import PolicyError, default_policy_path, load_policy
from leakguard.terminal import json_for_terminal

EXIT_CHANGED = 3

_T = {
    "policy_invalid": ("{which}ポリシーが不正です:", "invalid {which} policy:"),
    "new": ("新しい", "new"),
    "baseline": ("比較元の", "baseline"),
    "config_invalid": ("サービスの設定が不正です:", "invalid service configuration:"),
    "changed_unwritable": (
        "{file}: 変化の一覧を書き込めません: {err}",
        "{file}: cannot write the list of changes: {err}",
    ),
    "done": (
        "{n} 通を {s:.1f} 秒で再判定しました ({rate:.0f} 通/秒、{j} プロセス)",
        "replayed {n} mails in {s:.1f} s ({rate:.0f} mails/s, {j} processes)",
    ),
    "bar": ("再判定", "replay"),
    "baseline_is": ("比較元のポリシー: {path}", "baseline policy: {path}"),
    "interrupted": ("中断しました", "interrupted"),
    "no_source": (
        "再判定するメールがありません: SOURCE (maildir、mbox、.eml) か --since を指定してください",
        "nothing to replay: give SOURCEs (maildir, mbox, .eml) or --since",
    ),
    "bad_key": (
        "保存メールの鍵を読めません: {err}",
        "cannot read the retention key: {err}",
    ),
    "workers_failing": (
        "処理プロセスが {n} 回続けて異常終了したため中止しました",
        "stopped: the worker processes died {n} times in a row",
    ),
}


def _t(key: str, lang: str) -> str:
    ja, en = _T[key]
    return ja if lang == "ja" else en


def _cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="decide saved mail again under a new policy and show what would change",
        description="Decide every mail of the sources under the new policy and under the "
        "baseline, and show the difference by action, rule, department and sender. Nothing "
        "is sent.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        type=Path,
        help="a maildir (cur/new), an mbox file, a directory of .eml files, or one .eml file",
    )
    p.add_argument(
        "--since",
        metavar="30d|DATE",
        help="replay what the relay decided since then, from its retained mail (the store)",
    )
    p.add_argument(
        "--until",
        metavar="DATE",
        help="end of the period replayed from the store (default: now)",
    )
    p.add_argument("--data-dir", type=Path, help="data directory (overrides the configuration)")
    p.add_argument("--policy", type=Path, required=True, metavar="NEW.yaml", help="new policy")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="OLD.yaml",
        help="policy to compare with (default: the service's policy, else policies/default.yaml)",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="service configuration (finds the baseline policy and the attachment limits)",
    )
    p.add_argument("--org", type=Path, help="organisation file for both policies; replaces theirs")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=_cpus(),
        metavar="N",
        help="worker processes (default: the number of CPUs)",
    )
    p.add_argument("--top", type=int, default=20, metavar="N", help="senders listed (default 20)")
    p.add_argument(
        "--examples",
        type=int,
        default=3,
        metavar="N",
        help="example mails shown per rule (default 3)",
    )
    p.add_argument(
        "--json", action="store_true", help="write the report as one JSON object instead"
    )
    p.add_argument(
        "--changed",
        type=Path,
        metavar="FILE.jsonl",
        help="write every changed mail to this file, one JSON object a line",
    )
    p.add_argument(
        "--fail-on-change",
        action="store_true",
        help="exit with status 3 when any decision changed (for CI)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (a final summary line only)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time allowed for one mail's decision; a slower mail counts as an error",
    )
    p.set_defaults(func=run)


def _store_source(args: argparse.Namespace, lang: str) -> ReplaySource | int:
    """The retained mail of the service's store in ``--since``..``--until``, or an exit code."""
    from leakguard.commands.service_args import period, service_config
    from leakguard.officer.replay_store import StoreSource
    from leakguard.service import retention_key

    cfg = service_config(args, lang)
    if cfg is None:
        return 2
    found = period(args.since, args.until, ZoneInfo(cfg.holds.timezone), lang)
    if found is None:
        return 2
    since, until = found
    try:
        key = retention_key(cfg, create=False)
    except (OSError, ValueError) as exc:
        print(_t("bad_key", lang).format(err=exc), file=sys.stderr)
        return 2
    return StoreSource(cfg.store_url(), since=since, until=until, key=key)


def _load(path: Path, org: Path | None, which: str, lang: str) -> bool:
    try:
        load_policy(path, org_path=org)
    except PolicyError as exc:
        print(_t("policy_invalid", lang).format(which=_t(which, lang)), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    lang = lang_from_env()
    baseline: Path | None = args.baseline
    org: Path | None = args.org
    extract: dict[str, Any] = {}
    try:
        cfg_path = find_config_file(args.config)
        if cfg_path is not None:
            cfg = load_config(cfg_path)
            extract = cfg.extract.model_dump()
            if baseline is None and cfg.policy:
                baseline = Path(cfg.policy)
                if org is None and cfg.org:
                    org = Path(cfg.org)
    except ConfigError as exc:
        print(_t("config_invalid", lang), file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.text(lang)}", file=sys.stderr)
        return 2
    baseline = baseline or default_policy_path()
    if not _load(args.policy, args.org, "new", lang) or not _load(baseline, org, "baseline", lang):
        return 2
    if not args.sources and not args.since:
        print(_t("no_source", lang), file=sys.stderr)
        return 2
    try:
        sources: list[ReplaySource] = [open_source(s) for s in args.sources]
    except SourceError as exc:
        print(exc.text(lang), file=sys.stderr)
        return 2
    if args.since:
        store_source = _store_source(args, lang)
        if isinstance(store_source, int):
            return store_source
        sources.append(store_source)
    settings = ReplaySettings(
        policy=str(args.policy),
        baseline=str(baseline),
        org=str(args.org) if args.org else None,
        # --org counts for both; else the service's policy runs with the service's org file
        baseline_org=str(org) if org else None,
        extract=extract,
        timeout=args.timeout,
    )
    agg = Aggregator(examples=max(0, args.examples), top=max(0, args.top))
    try:
        changed_out = args.changed.open("w", encoding="utf-8") if args.changed else None
    except OSError as exc:
        err = exc.strerror or str(exc)
        print(_t("changed_unwritable", lang).format(file=args.changed, err=err), file=sys.stderr)
        return 2
    jobs = max(1, args.jobs)
    try:
        seconds = _replay(sources, settings, agg, changed_out, jobs, args.no_progress, lang)
    except KeyboardInterrupt:
        print(_t("interrupted", lang), file=sys.stderr)
        return 130
    except WorkersFailing as exc:
        print(_t("workers_failing", lang).format(n=exc.breaks), file=sys.stderr)
        return 1
    finally:
        if changed_out is not None:
            changed_out.close()
    report = agg.report()
    report["policy"] = {"new": str(args.policy), "baseline": str(baseline)}
    report["run"] = {"seconds": round(seconds, 3), "jobs": jobs}
    if args.json:
        sys.stdout.write(json_for_terminal(report, indent=1) + "\n")
    else:
        sys.stdout.write(_t("baseline_is", lang).format(path=baseline) + "\n")
        render_text(report, lang, sys.stdout)
    if args.fail_on_change and agg.changed:
        return EXIT_CHANGED
    return 0


def _replay(
    sources: list[ReplaySource],
    settings: ReplaySettings,
    agg: Aggregator,
    changed_out: TextIO | None,
    jobs: int,
    no_progress: bool,
    lang: str,
) -> float:
    counts = [s.count() for s in sources]
    total = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
    show = not no_progress and sys.stderr.isatty()
    start = time.monotonic()
    with tqdm(
        total=total,
        desc=_t("bar", lang),
        unit="mail",
        file=sys.stderr,
        disable=not show,
        smoothing=0.1,
        dynamic_ncols=True,
    ) as bar:

        def on_result(r: ItemResult) -> None:
            agg.add(r)
            if changed_out is not None and r.changed:
                changed_out.write(json.dumps(changed_line(r), ensure_ascii=False) + "\n")
            bar.update(1)

        run_replay(sources, settings, on_result, jobs=jobs)
    seconds = time.monotonic() - start
    if not show:
        rate = agg.mails / seconds if seconds > 0 else 0.0
        print(_t("done", lang).format(n=agg.mails, s=seconds, rate=rate, j=jobs), file=sys.stderr)
    return seconds
