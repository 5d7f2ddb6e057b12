"""What the trainer adapters share: reading references out of dataset columns and labels,
making trainer values JSON-safe, environment settings, and one async client per event loop.

Trainers hand reward functions whatever their datasets hold: a reference trace as a dict or
as a JSON string, a names-only teacher tool list, a ground truth that is sometimes a JSON
object carrying all of these. The readers here accept each form and produce the wire
`ScoreItem`, so that every adapter reads the same data the same way.

Arrow-backed datasets (verl's parquet files, TRL's `datasets.Dataset`) store a column of dicts
as one struct type holding the union of every row's keys, and fill a row's missing keys with
null; lists come back as numpy arrays from pandas. The readers undo that: numpy values become
lists, and a null key of the reference or of one of its calls is dropped (the wire default
applies). A null *argument* value is kept as sent: the engine reads it as an absent argument,
so `{"a": 2, "b": 3, "x": null}` scores as `{"a": 2, "b": 3}`. A reference stored as JSON text
needs none of this and keeps mixed value types that Arrow cannot hold in one column.
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

from ..exceptions import ItemScoringError
from ..protocol import ErrorInfo, ScoreItem

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
ENV_EOS_TOKENS = "MENTOR_REWARD_EOS_TOKENS"

# Keys a label / ground-truth object may carry. `tool_calls_used` is the paper's name for the
# names-only teacher trace.
_LABEL_KEYS = frozenset(
    {"ground_truth", "reference", "teacher_tools", "tool_calls_used", "preset", "toolset", "finished", "eos_tokens"}
)
# Keys of a reference call whose null means "not given" (Arrow's filler); `arguments` values are
# left alone, since a null argument is the engine's to read (as absent).
_REFERENCE_KEYS = ("calls", "answer", "possible_answers")
_CALL_KEYS = ("name", "arguments", "result")
_MAX_DEPTH = 64


# ---------------------------------------------------------------------------- JSON safety
def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-encodable copy of a trainer value: containers are copied, anything else that
    JSON cannot hold (images in multimodal tool messages, tensors, objects) becomes its `str`.
    Non-finite floats become None, since JSON has no NaN."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict and _depth < _MAX_DEPTH:
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if kind is list and _depth < _MAX_DEPTH:
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, str | bool | int):
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


_SCALARS = (str, int, float, bool, type(None), bytes)


def plain(value: Any) -> Any:
    """A dataset value with numpy arrays and scalars turned into Python lists and numbers
    (pandas reads parquet list columns as numpy arrays), containers copied."""
    # Exact-type checks first: a reward step reads thousands of labels, and isinstance against
    # the collections ABCs is the slow part of this walk.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return plain(tolist())
    return value


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
    value = _maybe_json(plain(value), what)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{what}: teacher tools must be a list of tool names")


def _ground_truth(value: Any) -> Any:
    # Passed on as the dataset holds it (numpy values made plain): the engine is the one reader
    # of a ground truth, so numbers score and a boolean or an object is the item's error there,
    # exactly as when the same item is sent to the service directly.
    return plain(value)


def clean_reference(reference: Any, what: str) -> dict[str, Any] | None:
    """A reference trace from a dataset (dict or JSON text) as the wire takes it.

    Null keys of the reference and of its calls are dropped (Arrow fills keys that other rows
    have with null); null argument values stay, for the engine to read as absent arguments.
    """
    reference = _maybe_json(plain(reference), what)
    if reference is None:
        return None
    if not isinstance(reference, Mapping):
        raise ValueError(f"{what}: must be an object with 'calls' and 'answer', got {type(reference).__name__}")
    out = {k: v for k, v in reference.items() if not (k in _REFERENCE_KEYS and v is None)}
    calls = out.get("calls")
    if isinstance(calls, list):
        out["calls"] = [
            {k: v for k, v in call.items() if not (k in _CALL_KEYS and v is None)}
            if isinstance(call, Mapping)
            else call
            for call in calls
        ]
    cleaned: dict[str, Any] = to_jsonable(out)
    return cleaned


def _eos_tokens(value: Any, what: str) -> list[str] | None:
    value = _maybe_json(plain(value), what)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise ValueError(f"{what}: must be a non-empty list of token strings")


def label_fields(label: Any, where: str = "label") -> dict[str, Any]:
    """Read a label that may carry the whole reference (verl's `ground_truth`, OpenRLHF's
    `labels[i]`).

    A dict, or a string holding a JSON object, with any of `ground_truth`, `reference`,
    `teacher_tools` (or `tool_calls_used`), `preset`, `toolset`, `finished`, `eos_tokens` is
    read field by field; any other value is the ground truth itself. A JSON object without any
    of those keys, or a string that only looks like JSON (`{1, 2}`), is a ground truth too.
    Errors name `where` (the row) and the field.
    """
    value = plain(label)
    if isinstance(label, str) and label.strip().startswith("{"):
        try:
            value = json.loads(label)
        except json.JSONDecodeError:
            value = label
    if isinstance(value, Mapping) and _LABEL_KEYS.intersection(value):
        tools = value.get("teacher_tools")
        if tools is None:
            tools = value.get("tool_calls_used")
        finished = value.get("finished")
        if finished is not None and not isinstance(finished, bool):
            raise ValueError(f"{where}.finished: must be true, false or null, got {finished!r}")
        for key in ("preset", "toolset"):
            if value.get(key) is not None and not isinstance(value.get(key), str):
                raise ValueError(f"{where}.{key}: must be a name (a string), got {value.get(key)!r}")
        return {
            "ground_truth": _ground_truth(value.get("ground_truth")),
            "reference": clean_reference(value.get("reference"), f"{where}.reference"),
            "teacher_tools": _teacher_tools(tools, f"{where}.teacher_tools"),
            "preset": value.get("preset"),
            "toolset": value.get("toolset"),
            "finished": finished,
            "eos_tokens": _eos_tokens(value.get("eos_tokens"), f"{where}.eos_tokens"),
        }
    return {"ground_truth": _ground_truth(value)}


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
    try:
        payload = completion_payload(completion)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from exc
    data: dict[str, Any] = {
        "completion": payload,
        "ground_truth": _ground_truth(ground_truth),
        "reference": clean_reference(reference, f"{where}: reference"),
        "teacher_tools": _teacher_tools(teacher_tools, f"{where}: teacher_tools"),
        "finished": finished,
    }
    try:
        return ScoreItem.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"{where}: {_first_error(exc)}") from exc


def _first_error(exc: ValueError) -> str:
    """pydantic's first complaint as `field.path: message` (its full text spans many lines)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg', '')}" if loc else str(first.get("msg", exc))
    return str(exc)


class RowScoringError(ItemScoringError):
    """`ItemScoringError` whose message names the trainer's row (`where`), not only its index in
    the request: trainers that swallow exceptions still log the message, and the row is what
    the user has to find in the dataset."""

    def __init__(self, index: int, error: ErrorInfo, where: str) -> None:
        super().__init__(index, error)
        param = f" (param: {error.param})" if error.param else ""
        self.args = (f"{where} could not be scored: {error.type}: {error.message}{param}",)
        self.where = where


# ---------------------------------------------------------------------------- environment
@dataclass(frozen=True, slots=True)
class EnvSettings:
    """The adapters' settings from the environment (verl and OpenRLHF are configured there).

    MENTOR_REWARD_URL (comma-separated replicas), MENTOR_REWARD_API_KEY,
    MENTOR_REWARD_TIMEOUT (seconds), MENTOR_REWARD_PRESET (default `mentor`), MENTOR_REWARD_SPEC (a JSON object
    or the path of a JSON file; replaces the preset), MENTOR_REWARD_TOOLSET,
    MENTOR_REWARD_LOCAL=1 (score in this process, no service),
    MENTOR_REWARD_ON_ERROR (a number: the score given to an item the service cannot score;
    unset: raise `ItemScoringError`), MENTOR_REWARD_FINISHED (`assume`: the response ended
    with EOS unless told otherwise; `detect`: let the service look for the EOS token in the
    text), MENTOR_REWARD_EOS_TOKENS (the model's end-of-sequence token(s): one token, or a JSON
    list; sent as `eos_tokens` where the text keeps special tokens).
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
    eos_tokens: tuple[str, ...] | None = None

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
        eos_text = env.get(ENV_EOS_TOKENS, "").strip()
        eos = _eos_tokens(eos_text, ENV_EOS_TOKENS) if eos_text else None
        return cls(
            eos_tokens=tuple(eos) if eos else None,
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
