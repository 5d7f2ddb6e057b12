"""Settings and per-sample state of the verl reward manager (`verl_manager.py`).

They live apart from the manager so that verl can load `verl_manager.py` by file path: verl runs
such a file without registering it in `sys.modules`, where dataclasses look up their module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._common import EnvSettings, plain

if TYPE_CHECKING:
    from ._verl_decode import RowSpot

__all__ = ["ManagerSettings", "Pending"]


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """The manager's settings: `reward.reward_kwargs` first, then the environment."""

    base_urls: tuple[str, ...] | None
    api_key: str | None
    timeout: float | None
    preset: str | None
    spec: dict[str, Any] | None
    toolset: str | None
    parser: str
    run_id: str | None
    eos_token_ids: tuple[int, ...]
    batch_window_s: float
    max_batch: int
    local: bool
    on_error: float | None
    skip_special_tokens: bool

    @classmethod
    def from_config(cls, reward_kwargs: Mapping[str, Any]) -> ManagerSettings:
        env = EnvSettings.from_env()
        kw = plain(_to_container(reward_kwargs))
        url = kw.get("url")
        urls = tuple(u.strip() for u in str(url).split(",") if u.strip()) if url else env.base_urls
        spec = kw.get("spec")
        if isinstance(spec, str):
            import json

            spec = json.loads(spec)
        if spec is None:
            spec = env.spec_dict()
        if spec is not None and not isinstance(spec, dict):
            raise ValueError("reward.reward_kwargs.spec must be a reward spec object")
        eos = kw.get("eos_token_ids") or ()
        eos = (eos,) if isinstance(eos, int) else tuple(int(t) for t in eos)
        on_error = kw.get("on_error", env.on_error)
        return cls(
            base_urls=urls,
            api_key=kw.get("api_key") or env.api_key,
            timeout=float(kw["timeout"]) if kw.get("timeout") is not None else env.timeout,
            preset=None if spec is not None else (kw.get("preset") or env.preset or "mentor"),
            spec=spec,
            toolset=kw.get("toolset") or env.toolset,
            parser=str(kw.get("parser") or "auto"),
            run_id=kw.get("run_id"),
            eos_token_ids=eos,
            batch_window_s=float(kw.get("batch_window_s", 0.05)),
            max_batch=int(kw.get("max_batch", 4096)),
            local=bool(kw.get("local", env.local)),
            on_error=float(on_error) if on_error is not None else None,
            skip_special_tokens=bool(kw.get("skip_special_tokens", True)),
        )


def _to_container(value: Any) -> dict[str, Any]:
    # verl hands its config as an OmegaConf DictConfig: read it as plain Python values.
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:
        return dict(value)
    if isinstance(value, DictConfig):
        container = OmegaConf.to_container(value, resolve=True)
        return {str(k): v for k, v in container.items()} if isinstance(container, dict) else {}
    return dict(value)


@dataclass(slots=True)
class Pending:
    """One sample waiting for its batch: what `run_single` read, and where its answer goes.

    A `DataProto` sample keeps where its token ids are in `row`; they are read with the rest of
    the batch (`_verl_decode.read_rows`), and `response_ids` stays empty until then.
    """

    response_ids: list[int]
    ground_truth: Any
    extra_info: Mapping[str, Any]
    data_source: Any
    step: int | None
    future: asyncio.Future[dict[str, Any]]
    finished: bool = False  # the finish state sent with it (the label's, else from its last token)
    row: RowSpot | None = None  # where its token ids are, until `read_rows` has read them
