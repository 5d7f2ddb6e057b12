"""What the trainer adapters share: reading references out of dataset columns and labels,
making trainer values JSON-safe, environment settings, and one async client per event loop.

Trainers hand reward functions whatever their datasets hold: a reference trace as a dict or
as a JSON string, a names-only teacher tool list, a ground truth that is sometimes a JSON
object carrying all of these. The readers here accept each form and produce the wire
`ScoreItem`, so that every adapter reads the same data the same way.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..protocol import ScoreItem

T = TypeVar("T")

ENV_PRESET = "MENTOR_REWARD_PRESET"
ENV_SPEC = "MENTOR_REWARD_SPEC"
ENV_TOOLSET = "MENTOR_REWARD_TOOLSET"
ENV_ON_ERROR = "MENTOR_REWARD_ON_ERROR"
ENV_FINISHED = "MENTOR_REWARD_FINISHED"
ENV_LOCAL = "MENTOR_REWARD_LOCAL"
ENV_URL = "MENTOR_REWARD_URL"
ENV_API_KEY = "MENTOR_REWARD_API_KEY"
ENV_TIMEOUT = "MENTOR_REWARD_TIMEOUT"

# Keys a label / ground-truth object may carry. `tool_calls_used` is the paper's name for the
# names-only teacher trace.
_LABEL_KEYS = frozenset({"ground_truth", "reference", "teacher_tools", "tool_calls_used", "preset", "toolset"})
_MAX_DEPTH = 64


# ---------------------------------------------------------------------------- JSON safety
def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-encodable copy of a trainer value: containers are copied, anything else that
    JSON cannot hold (images in multimodal tool messages, tensors, objects) becomes its `str`.
    Non-finite floats become None, since JSON has no NaN."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if _depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, _depth + 1) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy / torch scalars and arrays
    if callable(tolist):
        return to_jsonable(tolist(), _depth + 1)
    return str(value)


def completion_payload(completion: Any) -> str | list[dict[str, Any]]:
    """A trainer's completion as the wire accepts it: text, or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and all(isinstance(m, Mapping) for m in completion):
        return [to_jsonable(m) for m in completion]
    raise TypeError(
        "a completion must be a string or a list of chat messages (dicts), got " + type(completion).__name__
    )


# ---------------------------------------------------------------------------- references
def _maybe_json(value: Any, what: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{what}: not valid JSON ({exc.msg})") from exc
    return value


def _teacher_tools(value: Any, what: str) -> list[str] | None:
    value = _maybe_json(value, what)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{what}: teacher tools must be a list of tool names")


def _ground_truth(value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return str(value)


def label_fields(label: Any) -> dict[str, Any]:
    """Read a label that may carry the whole reference (verl's `ground_truth`, OpenRLHF's
    `labels[i]`).

    A dict, or a string holding a JSON object, with any of `ground_truth`, `reference`,
    `teacher_tools` (or `tool_calls_used`), `preset`, `toolset` is read field by field; any
    other value is the ground truth itself. A JSON object without any of those keys, or a
    string that only looks like JSON (`{1, 2}`), is a ground truth too.
    """
    value = label
    if isinstance(label, str) and label.strip().startswith("{"):
        try:
            value = json.loads(label)
        except json.JSONDecodeError:
            value = label
    if isinstance(value, Mapping) and _LABEL_KEYS.intersection(value):
        tools = value.get("teacher_tools", value.get("tool_calls_used"))
        reference = _maybe_json(value.get("reference"), "label.reference")
        return {
            "ground_truth": _ground_truth(value.get("ground_truth")),
            "reference": to_jsonable(reference) if reference is not None else None,
            "teacher_tools": _teacher_tools(tools, "label.teacher_tools"),
            "preset": value.get("preset"),
            "toolset": value.get("toolset"),
        }
    return {"ground_truth": _ground_truth(label)}


def build_item(
    completion: Any,
    *,
    ground_truth: Any = None,
    reference: Any = None,
    teacher_tools: Any = None,
    finished: bool | None = None,
    where: str = "item",
) -> ScoreItem:
    """One wire item from loosely typed column values; malformed references raise ValueError
    naming `where` (a dataset bug to fix, not a model output to score)."""
    reference = _maybe_json(reference, f"{where}: reference")
    if reference is not None and not isinstance(reference, Mapping):
        raise ValueError(f"{where}: reference must be an object with 'calls' and 'answer'")
    data: dict[str, Any] = {
        "completion": completion_payload(completion),
        "ground_truth": _ground_truth(ground_truth),
        "reference": to_jsonable(reference) if reference is not None else None,
        "teacher_tools": _teacher_tools(teacher_tools, f"{where}: teacher_tools"),
        "finished": finished,
    }
    try:
        return ScoreItem.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"{where}: {exc}") from exc


# ---------------------------------------------------------------------------- environment
@dataclass(frozen=True, slots=True)
class EnvSettings:
    """The adapters' settings from the environment (verl and OpenRLHF are configured there).

    MENTOR_REWARD_URL (comma-separated replicas), MENTOR_REWARD_API_KEY,
    MENTOR_REWARD_TIMEOUT (seconds), MENTOR_REWARD_PRESET, MENTOR_REWARD_SPEC (a JSON object
    or the path of a JSON file; replaces the preset), MENTOR_REWARD_TOOLSET,
    MENTOR_REWARD_LOCAL=1 (score in this process, no service),
    MENTOR_REWARD_ON_ERROR (a number: the score given to an item the service cannot score;
    unset: raise `ItemScoringError`), MENTOR_REWARD_FINISHED (`assume`: the response ended
    with EOS unless told otherwise; `detect`: let the service look for the EOS token in the
    text).
    """

    base_urls: tuple[str, ...] | None
    api_key: str | None
    timeout: float | None
    preset: str | None
    spec: str | None
    toolset: str | None
    local: bool
    on_error: float | None
    finished: Literal["assume", "detect"] | None

    @classmethod
    def from_env(cls, *, finished_default: Literal["assume", "detect"] | None = None) -> EnvSettings:
        env = os.environ
        url = env.get(ENV_URL, "").strip()
        timeout = env.get(ENV_TIMEOUT, "").strip()
        on_error = env.get(ENV_ON_ERROR, "").strip()
        finished = env.get(ENV_FINISHED, "").strip().lower() or finished_default
        if finished not in (None, "assume", "detect"):
            raise ValueError(f"{ENV_FINISHED} must be 'assume' or 'detect', got {finished!r}")
        try:
            on_error_value = float(on_error) if on_error else None
            timeout_value = float(timeout) if timeout else None
        except ValueError as exc:
            raise ValueError(f"{ENV_ON_ERROR} and {ENV_TIMEOUT} must be numbers: {exc}") from exc
        return cls(
            base_urls=tuple(u.strip() for u in url.split(",") if u.strip()) or None,
            api_key=env.get(ENV_API_KEY, "").strip() or None,
            timeout=timeout_value,
            preset=env.get(ENV_PRESET, "").strip() or None,
            spec=env.get(ENV_SPEC, "").strip() or None,
            toolset=env.get(ENV_TOOLSET, "").strip() or None,
            local=env.get(ENV_LOCAL, "").strip().lower() in ("1", "true", "yes"),
            on_error=on_error_value,
            finished=finished,  # type: ignore[arg-type]
        )

    def spec_dict(self) -> dict[str, Any] | None:
        """MENTOR_REWARD_SPEC read as a JSON object (inline or from a file)."""
        if self.spec is None:
            return None
        text = self.spec
        if not text.startswith("{"):
            with open(text, encoding="utf-8") as handle:
                text = handle.read()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{ENV_SPEC} must hold one JSON object")
        return data


# ---------------------------------------------------------------------------- per event loop
class PerLoop(Generic[T]):
    """One value per running event loop, made on first use by `factory`.

    An httpx.AsyncClient belongs to the loop it first ran on; trainers call reward functions
    from their own long-lived loops (TRL) or from several (tests, notebooks). Keys are weak
    references to the loops, so a finished loop's value is dropped with it and a new loop that
    happens to reuse an old loop's id() never gets a stale client.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            value = self._values.get(loop)
            if value is None:
                value = self._factory()
                self._values[loop] = value
            return value

    def pop_current(self) -> T | None:
        """Forget (and return) the current loop's value."""
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._values.pop(loop, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)
