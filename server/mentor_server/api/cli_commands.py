"""The service's `mentor-reward` subcommands: `serve` and `records`.

`add_service_commands(subparsers)` adds both to the CLI's argparse subparsers; each sets
`func` (called with the parsed namespace, returning an exit code), the convention of
`mentor_server.cli`.

    mentor-reward serve --port 8000 --config service.yaml --workers 8
    mentor-reward records --path mentor_records.sqlite3 --run-id exp1 --step 7 --limit 50
    mentor-reward records --url "$MENTOR_RECORD_URL" --run-id exp1   # the PostgreSQL store
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from .app import run_server

    if args.ray:
        return _serve_on_ray(args)
    run_server(host=args.host, port=args.port, config_file=args.config, workers=args.workers)
    return 0


def _serve_on_ray(args: argparse.Namespace) -> int:
    from ..ray_serve import RayServeOptions, run_on_ray
    from .settings import ServiceSettings

    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("config_file", args.config),
            ("workers", args.workers),
        )
        if value is not None
    }
    options = RayServeOptions(
        replicas=args.replicas,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_ongoing_requests=args.target_ongoing_requests,
        replica_cpus=args.replica_cpus,
    )
    run_on_ray(ServiceSettings(**overrides), options, address=args.address)
    return 0


def _records(args: argparse.Namespace) -> int:
    from ..records import query_records

    if args.url:
        return _print_rows(_postgres_rows(args), args.format)
    path = Path(args.path)
    if not path.exists():
        print(f"error: no record file at {str(path)!r}", file=sys.stderr)
        return 2
    try:
        rows = query_records(path, run_id=args.run_id, step=args.step, limit=args.limit, offset=args.offset)
    except sqlite3.DatabaseError as exc:
        print(f"error: {str(path)!r} is not a readable record file ({exc})", file=sys.stderr)
        return 2
    return _print_rows(rows, args.format)


def _postgres_rows(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    from ..records_postgres import is_postgres_url, query_postgres_records, redacted

    if not is_postgres_url(args.url):
        print("error: --url takes a postgresql:// URL", file=sys.stderr)
        return None
    try:
        return query_postgres_records(
            args.url, run_id=args.run_id, step=args.step, limit=args.limit, offset=args.offset
        )
    except Exception as exc:  # the driver's errors: unreachable, refused credentials, no table
        print(f"error: cannot read the records at {redacted(args.url)!r} ({exc})", file=sys.stderr)
        return None


def _print_rows(rows: list[dict[str, Any]] | None, output_format: str) -> int:
    if rows is None:
        return 2
    for row in rows:
        if output_format == "jsonl":
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(_summary_line(row))
    return 0


def _summary_line(row: dict[str, Any]) -> str:
    reward = "error" if row.get("reward") is None else f"{row['reward']:.4f}"
    components = " ".join(f"{k}={'-' if v is None else f'{v:.3g}'}" for k, v in (row.get("components") or {}).items())
    where = f"run={row.get('run_id')} step={row.get('step')} preset={row.get('preset')}"
    return f"{where} reward={reward} {components}"


def add_service_commands(subparsers: Any) -> None:
    """Add `serve` and `records` to an argparse `add_subparsers()` object."""
    serve = subparsers.add_parser("serve", help="run the HTTP reward service")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1, or MENTOR_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000, or MENTOR_PORT)")
    serve.add_argument("--config", default=None, help="YAML settings file (or MENTOR_CONFIG_FILE)")
    serve.add_argument("--workers", type=int, default=None, help="scoring processes (default: one per core)")
    ray = serve.add_argument_group("Ray Serve (`--ray`: deploy on an existing Ray cluster; the `ray` extra)")
    ray.add_argument("--ray", action="store_true", help="run as a Ray Serve deployment instead of one process")
    ray.add_argument("--address", default="auto", help="the Ray cluster (default: auto, the local node's)")
    ray.add_argument("--replicas", type=int, default=None, help="a fixed replica count (default: autoscale)")
    ray.add_argument("--min-replicas", type=int, default=1, help="autoscaling floor (default 1)")
    ray.add_argument("--max-replicas", type=int, default=4, help="autoscaling ceiling (default 4)")
    ray.add_argument(
        "--target-ongoing-requests", type=float, default=2.0, help="requests per replica before scaling up"
    )
    ray.add_argument("--replica-cpus", type=float, default=None, help="CPUs a replica reserves (default: workers)")
    serve.set_defaults(func=_serve)

    records = subparsers.add_parser("records", help="read the score record (SQLite, JSONL or PostgreSQL)")
    records.add_argument("--path", default="mentor_records.sqlite3", help="record file (.sqlite3 or .jsonl)")
    records.add_argument("--url", default=None, help="read a PostgreSQL record store instead (postgresql://...)")
    records.add_argument("--run-id", default=None, help="only this run")
    records.add_argument("--step", type=int, default=None, help="only this step")
    records.add_argument("--limit", type=int, default=100, help="at most this many records (default 100)")
    records.add_argument("--offset", type=int, default=0, help="skip this many matching records first")
    records.add_argument("--format", choices=("jsonl", "summary"), default="jsonl", help="output format")
    records.set_defaults(func=_records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mentor_server.api", description="MENTOR reward service")
    add_service_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
