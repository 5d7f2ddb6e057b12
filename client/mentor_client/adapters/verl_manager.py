"""A verl (0.9) reward manager backed by the reward service: `MentorRewardManager`.

verl's reward loop calls `run_single` once per sample: all samples of a worker's share of the
step at once (`RewardLoopManager.compute_rm_score` → `RewardLoopWorker.compute_score_batch`,
one-row slices of the step, all started in the same event-loop tick), or one by one as
rollouts finish (the agent loop's streaming reward, verl 0.9's path when no reward model is
configured; one `DataProto` per trajectory). This manager scores a batch of calls in one
request instead of one HTTP call per sample: the samples that arrive within `batch_window_s`
of the first one (default 0.05 s), or at once when several arrive in the same tick (a
worker's share of a step: waiting out the window would only lengthen the step).
verl 0.9.1 calls no batched entry point of a reward manager (the legacy `__call__(data,
return_dict)` of `verl.workers.reward_manager` is not called by its trainers), so `run_single`
is the interface; the step's tensors are still read once per batch (`_verl_decode.read_rows`).

What it reads from each sample, unlike a `compute_score` function:
- the finish state from the token ids: a response whose last valid token is an EOS id
  (`tokenizer.eos_token_id`, plus `eos_token_ids` from the config) finished; any other stopped
  without EOS — truncated at the length limit, or cut off in a multi-turn loop — and the
  spec's `not_finished` gate applies. The EOS token text goes to the service as `eos_tokens`.
- the reference from `reward_model.ground_truth` (the answer, or an object — JSON text is the
  robust form in parquet — with `ground_truth`, `teacher_tools` or `reference`, `preset`,
  `toolset`, `finished`), and `extra_info.reference` / `extra_info.teacher_tools`.

What it returns per sample: `reward_score` and `reward_extra_info` with the same keys every
time: `score`, one key per component of the configured spec (`None` where the component does
not apply: verl's metric code drops `None`), `finished` (1.0 / 0.0: the finish state the reward
was given), `tool_call` (1.0 when the response made a tool call: its mean is the step's tool-call
rate) and `invalid_tool_rate` (the
response's invalid calls over its calls; `None` without calls). verl 0.9 reduces these keys
into metrics for validation (`val-aux/<source>/<key>/mean@N`) and dumps them with the rollouts;
each batch's service-side rates are also logged here at INFO.

Registered as `mentor` in verl's reward-manager registry when this module is imported. verl
resolves registered names before it could import a third-party module, so select it by
module path:

    reward.reward_manager.source=importlib
    reward.reward_manager.name=MentorRewardManager
    reward.reward_manager.module.path=pkg://mentor_client.adapters.verl_manager
    +reward.reward_kwargs.preset=mentor               # or spec (an object), toolset, parser,
    +reward.reward_kwargs.url=http://reward:8000      # api_key, timeout, run_id, eos_token_ids,
                                                      # batch_window_s, max_batch, local, on_error

Settings missing from `reward.reward_kwargs` come from the environment (`EnvSettings`:
MENTOR_REWARD_URL, ...). With `run_id` set, every request carries the run id and verl's
`global_steps`, so a service that records scores keeps each scored item with its step
(`GET /v1/records?run_id=...&step=...`).

An item the service cannot score raises `RowScoringError` naming the sample (data source and
`extra_info.index`), unless `on_error` gives the score to use; a service that cannot be
reached raises after the client's retries. Nothing is ever turned into a 0.0 reward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mentor_client._client import AsyncRewardClient
from mentor_client.adapters._common import PerLoop, RowScoringError, build_item, label_fields
from mentor_client.adapters._verl_decode import batch_decoder, read_rows, sample_row
from mentor_client.adapters._verl_settings import ManagerSettings, Pending
from mentor_client.adapters.verl import sample_name
from mentor_client.exceptions import ResponseValidationError
from mentor_client.local import LocalBackend
from mentor_client.protocol import ErrorInfo, ItemResult, ScoreResponse

if TYPE_CHECKING:
    _ManagerBase = object
else:
    try:
        from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase as _ManagerBase
    except ImportError:  # verl not installed: the class still works for tests and direct use
        _ManagerBase = object

__all__ = ["ManagerSettings", "MentorRewardManager"]

logger = logging.getLogger(__name__)

EXTRA_KEYS = ("finished", "tool_call", "invalid_tool_rate")
_NON_TENSOR_KEYS = ("reward_model", "extra_info", "data_source")
_GroupKey = tuple[str | None, str | None, tuple[str, ...] | None]  # one request each: preset, toolset, EOS


class MentorRewardManager(_ManagerBase):
    """verl's reward manager for the reward service; see the module docstring."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if _ManagerBase is object:
            self.config, self.tokenizer, self.compute_score = config, tokenizer, compute_score
        else:
            super().__init__(config, tokenizer, compute_score)  # type: ignore[call-arg]
        reward_cfg = _get(config, "reward")
        self.settings = ManagerSettings.from_config(_get(reward_cfg, "reward_kwargs") or {})
        ids = {int(t) for t in self.settings.eos_token_ids}
        eos_id = getattr(tokenizer, "eos_token_id", None)
        if isinstance(eos_id, int):
            ids.add(eos_id)
        if not ids:
            raise ValueError("MentorRewardManager: the tokenizer has no eos_token_id; set reward_kwargs.eos_token_ids")
        self.eos_ids = frozenset(ids)
        eos_text = getattr(tokenizer, "eos_token", None)
        self.eos_tokens = [eos_text] if isinstance(eos_text, str) and eos_text else None
        self._decode = batch_decoder(tokenizer, skip_special_tokens=self.settings.skip_special_tokens)
        self._clients: PerLoop[AsyncRewardClient] = PerLoop(self._new_client)
        self._local: LocalBackend | None = None
        self._components: list[str] | None = None
        self._pending: list[Pending] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tick_handle: asyncio.Handle | None = None
        self._arrived_this_tick = 0
        self.requests_sent = 0  # one per batch: tests and benchmarks read it

    # ------------------------------------------------------------------ verl's entry point
    async def run_single(self, data: Any) -> dict[str, Any]:
        """Score one sample (verl's call); resolves when its batch has been scored."""
        row = sample_row(data)
        response_ids: list[int] = []
        if row is not None:
            # A DataProto: its ids are read with the batch's other samples (`read_rows`), and
            # its labels from the last row of its columns, without building `data[-1]`.
            columns = data.non_tensor_batch
            reward_model, extra_info, data_source = (_last(columns.get(key)) for key in _NON_TENSOR_KEYS)
        else:
            item = data[-1]  # multi-sequence outputs: the last sequence is scored, as verl's own managers do
            ids = item.batch["responses"]
            length = int(ids.shape[-1])
            valid = int(item.batch["attention_mask"][-length:].sum())
            response_ids = ids[:valid].tolist()
            reward_model, extra_info, data_source = (item.non_tensor_batch.get(key) for key in _NON_TENSOR_KEYS)
        reward_model = reward_model or {}
        extra_info = extra_info or {}
        if not isinstance(extra_info, dict):
            extra_info = dict(extra_info)
        step = (getattr(data, "meta_info", None) or {}).get("global_steps")
        loop = asyncio.get_running_loop()
        pending = Pending(
            response_ids=response_ids,
            ground_truth=reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None,
            extra_info=extra_info,
            data_source=data_source,
            step=int(step) if step is not None and int(step) >= 0 else None,
            future=loop.create_future(),
            row=row,
        )
        self._pending.append(pending)
        self._arrived_this_tick += 1
        if len(self._pending) >= self.settings.max_batch:
            self._flush_now()
            self._arrived_this_tick = 0  # counted towards the batch just sent
            return await pending.future
        if self._tick_handle is None:
            self._tick_handle = loop.call_soon(self._end_of_tick)
        if self._flush_handle is None:
            self._flush_handle = loop.call_later(self.settings.batch_window_s, self._flush_now)
        return await pending.future

    def _end_of_tick(self) -> None:
        # `compute_score_batch` starts every sample of a worker's share in the same event-loop
        # tick: several arrivals in one tick are a whole batch, sent now rather than after the
        # window. A single arrival (the agent loop streams trajectories one call at a time)
        # waits for the window to gather its neighbours.
        self._tick_handle = None
        arrived, self._arrived_this_tick = self._arrived_this_tick, 0
        if arrived > 1:
            self._flush_now()

    def _flush_now(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.ensure_future(self._score_batch(batch))
            task.add_done_callback(lambda t: _fail_all(batch, t))

    # ------------------------------------------------------------------ one batch
    async def _score_batch(self, batch: list[Pending]) -> None:
        texts = await asyncio.get_running_loop().run_in_executor(None, self._read_and_decode, batch)
        groups: dict[_GroupKey, list[tuple[int, dict[str, Any]]]] = {}
        # GRPO repeats each prompt's label for every rollout (verl repeats the same objects): read
        # and validate each distinct label once per batch, keep it as the wire JSON it becomes,
        # and give each rollout a copy with its own completion and finish state. The items go
        # out as plain dicts: the service validates them once, as it does every item.
        read: dict[Any, tuple[dict[str, Any], _GroupKey, Any]] = {}
        for i, (pending, text) in enumerate(zip(batch, texts, strict=True)):
            extra = pending.extra_info
            gt = pending.ground_truth
            memo_key = (
                gt if isinstance(gt, str) else id(gt),
                id(extra.get("reference")),
                id(extra.get("teacher_tools")),
            )
            known = read.get(memo_key)
            if known is None:
                where = sample_name(pending.data_source, extra)
                fields = label_fields(gt, f"{where}: ground_truth")
                template = build_item(
                    "",
                    ground_truth=fields.get("ground_truth"),
                    reference=fields["reference"] if fields.get("reference") is not None else extra.get("reference"),
                    teacher_tools=(
                        fields["teacher_tools"]
                        if fields.get("teacher_tools") is not None
                        else extra.get("teacher_tools")
                    ),
                    where=where,
                )
                eos = fields.get("eos_tokens")
                key = (fields.get("preset"), fields.get("toolset"), tuple(eos) if eos else None)
                payload = template.model_dump(mode="json", exclude_none=True)
                known = read[memo_key] = (payload, key, fields.get("finished"))
            payload, key, label_finished = known
            finished = extra.get("finished")
            if not isinstance(finished, bool):
                finished = label_finished
            if not isinstance(finished, bool):
                finished = bool(pending.response_ids) and pending.response_ids[-1] in self.eos_ids
            pending.finished = finished
            groups.setdefault(key, []).append((i, {**payload, "completion": text, "finished": finished}))
        components = await self._spec_components()
        step = next((p.step for p in batch if p.step is not None), None)
        results: list[ItemResult | None] = [None] * len(batch)
        for (preset, toolset, eos), members in groups.items():
            response = await self._score([item for _, item in members], preset, toolset, eos, step)
            if len(response.results) != len(members):
                raise ResponseValidationError(f"sent {len(members)} items, got {len(response.results)} results")
            for (i, _), result in zip(members, response.results, strict=True):
                results[i] = result
            stats = response.stats
            logger.info(
                "mentor reward: %d items, mean reward %s, tool-call rate %s, invalid-tool rate %s",
                stats.n_items,
                stats.mean_reward,
                stats.tool_call_rate,
                stats.invalid_tool_rate,
            )
        for pending, maybe in zip(batch, results, strict=True):
            if not pending.future.done() and maybe is not None:
                try:
                    pending.future.set_result(self._answer(pending, maybe, components))
                except RowScoringError as exc:
                    pending.future.set_exception(exc)

    def _read_and_decode(self, batch: list[Pending]) -> list[str]:
        read_rows(batch)
        return self._decode([p.response_ids for p in batch])

    def _answer(self, pending: Pending, result: ItemResult, components: list[str]) -> dict[str, Any]:
        finished = 1.0 if pending.finished else 0.0  # the finish state the reward was given
        if result.error is not None or result.reward is None:
            where = sample_name(pending.data_source, pending.extra_info)
            error = result.error or ErrorInfo(type="no_reward", message="the service returned no reward and no error")
            if self.settings.on_error is None or result.error is None:
                logger.error("%s could not be scored: %s", where, error.message)
                raise RowScoringError(0, error, where)
            logger.warning("%s could not be scored (%s); giving it %s", where, error.message, self.settings.on_error)
            info: dict[str, Any] = {"score": self.settings.on_error, **dict.fromkeys(components)}
            info.update(finished=finished, tool_call=None, invalid_tool_rate=None)
            return {"reward_score": self.settings.on_error, "reward_extra_info": info}
        reward = float(result.reward)
        info = {"score": reward}
        for name in components:
            value = result.components.get(name)
            info[name] = None if value is None else float(value)
        calls = result.n_tool_calls
        invalid = result.n_invalid_tools
        info["finished"] = finished
        info["tool_call"] = None if calls is None else (1.0 if calls > 0 else 0.0)
        info["invalid_tool_rate"] = None if not calls or invalid is None else invalid / calls
        return {"reward_score": reward, "reward_extra_info": info}

    # ------------------------------------------------------------------ backends
    def _new_client(self) -> AsyncRewardClient:
        s = self.settings
        # One request per batch: chunks as large as the batch (the service's default item limit).
        return AsyncRewardClient(s.base_urls, api_key=s.api_key, timeout=s.timeout, chunk_size=s.max_batch)

    def _local_backend(self) -> LocalBackend:
        if self._local is None:
            self._local = LocalBackend()
        return self._local

    async def _score(
        self,
        items: list[dict[str, Any]],
        preset: str | None,
        toolset: str | None,
        eos: tuple[str, ...] | None,
        step: int | None,
    ) -> ScoreResponse:
        s = self.settings
        params: dict[str, Any] = {
            # A per-sample preset (in the label) wins; the keys come from the configured spec,
            # so a per-sample preset must share its components.
            "preset": preset if preset is not None else s.preset,
            "spec": None if preset is not None else s.spec,
            "toolset": toolset if toolset is not None else s.toolset,
            "parser": s.parser,
            "run_id": s.run_id,
            "step": step if s.run_id is not None else None,
            # The manager reads no reason text: the answer leaves it out (most of its bytes).
            # Errors keep their messages, and a recording service keeps the reasons.
            "reasons": False,
        }
        eos_tokens = list(eos) if eos else self.eos_tokens
        if eos_tokens:
            params["eos_tokens"] = eos_tokens
        self.requests_sent += 1
        if s.local:
            backend = self._local_backend()
            return await asyncio.to_thread(lambda: backend.score(items, **params))
        return await self._clients.get().score(items, **params)

    async def _spec_components(self) -> list[str]:
        if self._components is None:
            s = self.settings
            if s.local:
                backend = self._local_backend()
                resolved = await asyncio.to_thread(lambda: backend.validate_spec(preset=s.preset, spec=s.spec))
            else:
                resolved = await self._clients.get().validate_spec(preset=s.preset, spec=s.spec)
            components = resolved.spec.get("components")
            if not isinstance(components, Mapping) or not components:
                raise ResponseValidationError("the resolved spec lists no components")
            clash = set(components) & {"score", *EXTRA_KEYS}
            if clash:
                raise ValueError(f"component names {sorted(clash)} clash with the manager's own keys")
            self._components = [str(c) for c in components]
        return self._components


def _fail_all(batch: list[Pending], task: asyncio.Future[None]) -> None:
    """A batch that failed as a whole (service unreachable, malformed reference) fails every
    sample waiting on it with the same exception, so verl sees it instead of hanging."""
    if task.cancelled():
        for pending in batch:
            if not pending.future.done():
                pending.future.cancel()
        return
    error = task.exception()
    if error is not None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)


def _last(column: Any) -> Any:
    # A one-row step's non-tensor column (a numpy object array): its value, or None.
    return None if column is None else column[-1]


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping) or hasattr(config, "get"):
        return config.get(key)
    return getattr(config, key, None)


# verl's registry: importing this module registers the manager as "mentor" (when verl is there).
# Loaded a second time by file path (verl's `load_module` runs the file under a new name), the
# module must not register a second class under the same name: verl's registry refuses that.
if not TYPE_CHECKING:
    try:
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER as _REGISTERED
        from verl.experimental.reward_loop.reward_manager.registry import register as _register
    except ImportError:  # pragma: no cover - verl missing: the module is still importable for docs and tests
        pass
    else:
        if "mentor" not in _REGISTERED:
            _register("mentor")(MentorRewardManager)
