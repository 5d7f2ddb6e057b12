"""`mentor-reward report`: write the reward dashboard of a record file as one offline HTML file.

    mentor-reward report --records runs/scores.sqlite3 --out report.html
    mentor-reward report --records scores.jsonl --run-id exp1 --out exp1.html

The page is the service's `/ui` page for the same records; it needs no server and no network.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


def _report(args: argparse.Namespace) -> int:
    # Imported here: `mentor-reward --help` does not load the engine.
    from ..record_query import iter_records
    from ..scoring import ScoringConfigError
    from . import build_dashboard

    path = Path(args.records)
    if not path.is_file():
        print(f"error: no record file at {str(path)!r}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        page = build_dashboard(iter_records(path, run_id=args.run_id), source=str(path), toolset=args.toolset)
    except sqlite3.DatabaseError as exc:
        print(f"error: {str(path)!r} is not a readable record file ({exc})", file=sys.stderr)
        return 2
    except ScoringConfigError as exc:
        print(f"error (--toolset): {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    took = time.perf_counter() - started
    print(f"wrote {out} ({len(page.encode('utf-8')) / 1024:.0f} KiB, {took:.1f} s); open it in a browser")
    return 0


def add_report_command(subparsers: Any) -> None:
    """Add `report` to an argparse `add_subparsers()` object."""
    report = subparsers.add_parser(
        "report",
        help="write the reward dashboard of a record file as one offline HTML file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--records", required=True, help="score record file (.sqlite3, or .jsonl)")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    report.add_argument("--run-id", default=None, help="only this run (default: every run in the file)")
    report.add_argument(
        "--toolset",
        default=None,
        help="the toolset the run's calls are checked against for invented names (default: each preset's own)",
    )
    report.set_defaults(func=_report)
