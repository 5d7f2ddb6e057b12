"""`teach`'s tasks (read from a data set's rows) and its output files: kept rows and every attempt
appended and flushed as they complete, and what a rerun with the same `--out` reads back to resume
(a torn last line is cut, not fatal)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:  # httpx loads when a run starts, so registering the command costs nothing
    pass

from .teach_endpoint import _TRANSIENT, TeachOptions


class Logged(Protocol):
    """What the writer needs of an attempt: the kept row (or None) and its log line."""

    @property
    def row(self) -> dict[str, Any] | None: ...

    def log_entry(self) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------- files and resuming
def attempts_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".attempts.jsonl") if out.suffix != ".jsonl" else out.with_suffix(".attempts.jsonl")


def report_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_suffix(".report.json") if out.suffix == ".jsonl" else out.with_name(out.name + ".report.json")


def _read_jsonl_repairing(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only JSONL file; a torn last line (the process died mid-write) is cut off
    so the next append starts on a fresh line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(cut)
        data = data[:cut]
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


@dataclass
class _Progress:
    """What earlier runs left in the output files, per task id."""

    kept: Counter[str] = field(default_factory=Counter)
    judged: Counter[str] = field(default_factory=Counter)

    def done(self, task_id: str, options: TeachOptions) -> bool:
        if self.kept[task_id] >= options.keep_per_task:
            return True
        return not options.retry_failed and self.judged[task_id] >= options.samples_per_task


def _load_progress(out: Path) -> _Progress:
    progress = _Progress()
    for row in _read_jsonl_repairing(out):
        progress.kept[str(row.get("id"))] += 1
    for entry in _read_jsonl_repairing(attempts_path(out)):
        if entry.get("reason") not in _TRANSIENT:
            progress.judged[str(entry.get("id"))] += 1
    return progress


class _Writer:
    """Appends rows and attempt entries, one flushed line each (the event loop serialises writes)."""

    def __init__(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self._rows: TextIO = out.open("a", encoding="utf-8")
        self._log: TextIO = attempts_path(out).open("a", encoding="utf-8")

    def write(self, attempt: Logged) -> None:
        if attempt.row is not None:
            self._rows.write(json.dumps(attempt.row, ensure_ascii=False, sort_keys=True) + "\n")
            self._rows.flush()
        self._log.write(json.dumps(attempt.log_entry(), ensure_ascii=False) + "\n")
        self._log.flush()

    def close(self) -> None:
        self._rows.close()
        self._log.close()


# ---------------------------------------------------------------------------- tasks
@dataclass(frozen=True, slots=True)
class Task:
    id: str
    row: dict[str, Any]
    toolset: str
    ground_truths: tuple[str, ...]


def _prompt(row: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"row {row.get('id')!r}: 'prompt' must be a message list or a string")
    return [dict(m) for m in prompt]


def _ground_truths(row: dict[str, Any]) -> tuple[str, ...]:
    gt = row.get("ground_truth")
    values = gt if isinstance(gt, list) else [gt]
    out = tuple(str(v) for v in values if v is not None and str(v).strip())
    if not out:
        raise ValueError(f"row {row.get('id')!r} has no ground_truth")
    return out


def make_tasks(rows: Sequence[dict[str, Any]], split: str, toolset: str | None) -> list[Task]:
    tasks = []
    for i, row in enumerate(rows):
        task_id = str(row.get("id") or f"{split}-{i:05d}")
        _prompt(row)
        tasks.append(Task(task_id, row, toolset or str(row.get("toolset") or "calculator"), _ground_truths(row)))
    return tasks
