"""The reward service as a TRL reward function (GRPOTrainer, RLOOTrainer).

`trl_reward_func(...)` returns a `MentorReward`: a picklable callable whose `__call__` is a
real `async def`, so TRL runs it on its reward event loop concurrently with other async
rewards, and whose `__name__` names the metric (`rewards/mentor/mean`). What it guarantees:

- exactly `len(prompts)` values; `None` only where the item is "not applicable" (the service
  could not score it, or the requested component does not apply); a service that cannot be
  reached raises after retries — a failure is never turned into a 0.0 reward;
- only the dataset columns it is told about are read (`reference`, `ground_truth`,
  `teacher_tools`), as dicts or JSON text (an Arrow-filled null key is read as absent);
  TRL's `trainer_state` gives the step for score records, and `log_metric` receives the batch
  mean of every reward component; nothing else from `kwargs` is sent;
- the tools the reward checks against are the ones the model was given: a registered
  `toolset`, or the user's own `tools` (JSON schemas or the same callables passed to
  `GRPOTrainer(tools=...)`); `trl_tools(toolset)` builds the callables for a toolset;
- termination comes from the token ids (`tokenizer=` or `eos_token_id=`), since TRL strips
  special tokens from the text the service sees;
- the HTTP client is made lazily, one per event loop; pickling keeps only the configuration.

`trl_component_reward_funcs(...)` returns one function per reward component, for weighting
components with `GRPOConfig.reward_weights`; the functions of one group share a single request
per batch. By default each returns its raw component score and ignores the preset's gates and
wrong-answer scaling (logging and custom shaping). With `gated=True` each returns its
contribution to the preset's reward (weight × score × wrong-answer scale, 0.0 when a gate
decided the reward) and one more function, `<name>_gate`, returns the gate's reward (or the
spec's bias): with `reward_weights` all 1.0 their sum is the preset's reward.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._base import ClientConfig
from .._client import AsyncRewardClient, RewardClient
from ..exceptions import ResponseValidationError
from ..local import LocalBackend
from ..protocol import ScoreItem, ScoreResponse
from ._common import PerLoop, build_item
from .trl_tools import tool_schemas, trl_tools

_GATE = "__gate__"  # the pseudo-component of the gate function of a gated group

__all__ = ["MentorReward", "trl_component_reward_funcs", "trl_reward_func", "trl_tools"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything a `MentorReward` is, and all that it pickles."""

    base_urls: tuple[str, ...] | None
    api_key: str | None
    config: ClientConfig | None
    preset: str | None
    spec: Mapping[str, Any] | None
    overrides: Mapping[str, Any] | None
    toolset: str | None
    tools: tuple[Mapping[str, Any], ...] | None
    parser: str
    reference_column: str
    ground_truth_column: str
    teacher_tools_column: str
    eos_token_ids: tuple[int, ...] | None
    eos_tokens: tuple[str, ...] | None
    local: bool
    name: str
    component: str | None
    run_id: str | None
    group: str | None
    gates: _GatedSpec | None


@dataclass(frozen=True, slots=True)
class _GatedSpec:
    """What a gated component function needs of the spec to give its share of the reward."""

    weights: Mapping[str, float]
    scales: Mapping[str, float]
    renormalize: bool
    bias: float

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> _GatedSpec:
        components = spec.get("components") or {}
        weights = {str(n): float(c.get("weight", 0.0)) for n, c in components.items()}
        scales = {str(n): float(c.get("wrong_answer_scale", 1.0)) for n, c in components.items()}
        if spec.get("clip") is not None:
            raise ValueError("gated=True: a spec with 'clip' cannot be split into per-component rewards")
        if "outcome" not in components and any(s != 1.0 for s in scales.values()):
            raise ValueError("gated=True: wrong-answer scaling needs the 'outcome' component in the spec")
        return cls(weights, scales, spec.get("none_policy") == "renormalize", float(spec.get("bias") or 0.0))

    def share(self, component: str, components: Mapping[str, float | None]) -> float | None:
        """`component`'s contribution to the reward of an item no gate decided (None: n/a)."""
        if component == _GATE:
            return self.bias
        value = components.get(component)
        weight = self.weights.get(component, 0.0)
        if value is None:
            return None
        if weight == 0.0:
            return 0.0
        scale = self.scales.get(component, 1.0) if components.get("outcome") == 0.0 else 1.0
        factor = 1.0
        if self.renormalize:
            total = sum(w for w in self.weights.values() if w > 0)
            applicable = sum(w for n, w in self.weights.items() if w > 0 and components.get(n) is not None)
            if 0 < applicable < total:
                factor = total / applicable
        return weight * value * scale * factor


# Functions of one component group score each batch once: the first to run starts the request,
# the others await the same task. Keyed per event loop, by group and by the batch's list objects
# (TRL passes the same `prompts` / `completions` lists to every reward function of a step); an
# entry lives only while its request runs.
_IN_FLIGHT: PerLoop[dict[tuple[Any, ...], asyncio.Task[ScoreResponse]]] = PerLoop(dict)


class MentorReward:
    """A TRL reward function backed by the reward service (or the in-process engine).

    Build it with `trl_reward_func` / `trl_component_reward_funcs`. Call signature (TRL's):
    `await reward(prompts=..., completions=..., completion_ids=..., **columns_and_trl_kwargs)`.
    """

    # TRL names metrics after `__name__`; the class default covers the plain full reward and
    # each instance sets its own (`mentor_outcome`, ...).
    __name__ = "mentor"

    def __init__(self, settings: _Settings) -> None:
        self._setup(settings)

    def _setup(self, settings: _Settings) -> None:
        self._settings = settings
        self.__name__ = settings.name
        self._clients: PerLoop[AsyncRewardClient] = PerLoop(self._new_client)
        self._local_backend: LocalBackend | None = None
        self._local_lock = threading.Lock()
        self._warned_no_eos = False

    # Live clients, locks and loops stay out of the pickle: a child process (TRL's async GRPO)
    # rebuilds them lazily from the configuration.
    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self._settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["settings"])

    def __repr__(self) -> str:
        s = self._settings
        urls = s.base_urls or (s.config.base_urls if s.config is not None else None)
        where = "local" if s.local else (list(urls) if urls else "env")
        what = f"spec={s.spec.get('name', 'inline') if s.spec else None!r}" if s.spec else f"preset={s.preset!r}"
        extra = f", component={s.component!r}" if s.component else ""
        return f"MentorReward(name={s.name!r}, {what}, backend={where!r}{extra})"

    @property
    def component(self) -> str | None:
        return self._settings.component

    # ------------------------------------------------------------------ backends
    def _new_client(self) -> AsyncRewardClient:
        s = self._settings
        return AsyncRewardClient(s.base_urls, api_key=s.api_key, config=s.config)

    def _local(self) -> LocalBackend:
        with self._local_lock:
            if self._local_backend is None:
                self._local_backend = LocalBackend()
            return self._local_backend

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop (others close with their loops)."""
        client = self._clients.pop_current()
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ the call
    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """Score one batch of completions.

        Args:
            prompts: one per completion (only their number is used: the service scores the
                completion against the reference).
            completions: text, or chat messages (TRL's tool loop: assistant `tool_calls`
                with dict `arguments`, `tool` messages).
            completion_ids: token ids per completion; with `eos_token_id` they decide whether
                the completion ended with EOS (its last token is an EOS id — TRL's own test).
            **kwargs: dataset columns (one value per completion) and TRL's extras:
                `trainer_state` (its `global_step` labels score records), `log_metric`
                (receives each component's batch mean). Other keys are ignored.

        Returns:
            `len(prompts)` rewards; None where the service could not score the item, or, with
            `component=`, where that component does not apply.

        Raises:
            RetriesExhaustedError: the service could not be reached or kept failing.
            ResponseValidationError: the service answered a different number of results.
            ValueError: a malformed reference column, or `component` not in the spec.
        """
        n = len(prompts)
        if len(completions) != n:
            raise ValueError(f"got {n} prompts but {len(completions)} completions")
        items = self._items(completions, completion_ids, kwargs, n)
        step = getattr(kwargs.get("trainer_state"), "global_step", None)
        response = await self._scores(items, step, key=(id(prompts), id(completions)))
        if len(response.results) != n:
            raise ResponseValidationError(f"the reward service returned {len(response.results)} results for {n} items")
        values = self._values(response)
        log_metric = kwargs.get("log_metric")
        # Component functions report their score as the reward itself; only the full reward
        # logs the breakdown, so a group does not log each mean N times.
        if self._settings.component is None and callable(log_metric):
            for name, mean in response.stats.component_means.items():
                if mean is not None:
                    log_metric(name, mean)
        return values

    def _column(self, kwargs: Mapping[str, Any], column: str, n: int) -> Sequence[Any] | None:
        values = kwargs.get(column)
        if values is None:
            return None
        if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != n:
            raise ValueError(f"column {column!r} must hold one value per completion ({n})")
        return values

    def _finished(self, completion_ids: Sequence[Sequence[int]] | None, index: int) -> bool | None:
        eos = self._settings.eos_token_ids
        if eos is None or completion_ids is None:
            if not self._warned_no_eos:
                self._warned_no_eos = True
                logger.warning(
                    "%s: no eos_token_id/completion_ids, so the service must find the EOS token in the "
                    "text, which TRL strips; pass tokenizer=processing_class (or eos_token_id=) or EOS "
                    "gates fire for every completion",
                    self._settings.name,
                )
            return None
        ids = completion_ids[index]
        return len(ids) > 0 and int(ids[-1]) in eos

    def _items(
        self,
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None,
        kwargs: Mapping[str, Any],
        n: int,
    ) -> list[ScoreItem]:
        s = self._settings
        if completion_ids is not None and len(completion_ids) != n:
            raise ValueError(f"got {n} completions but {len(completion_ids)} completion_ids")
        references = self._column(kwargs, s.reference_column, n)
        truths = self._column(kwargs, s.ground_truth_column, n)
        tools = self._column(kwargs, s.teacher_tools_column, n)
        return [
            build_item(
                completion,
                ground_truth=truths[i] if truths is not None else None,
                reference=references[i] if references is not None else None,
                teacher_tools=tools[i] if tools is not None else None,
                finished=self._finished(completion_ids, i),
                where=f"row {i}",
            )
            for i, completion in enumerate(completions)
        ]

    async def _scores(self, items: list[ScoreItem], step: int | None, *, key: tuple[int, int]) -> ScoreResponse:
        group = self._settings.group
        if group is None:
            return await self._request(items, step)
        in_flight = _IN_FLIGHT.get()
        full_key = (group, step, *key)
        task = in_flight.get(full_key)
        if task is None:
            task = asyncio.ensure_future(self._request(items, step))
            in_flight[full_key] = task
            task.add_done_callback(lambda _: in_flight.pop(full_key, None))
        # shield: one cancelled reward function must not cancel its siblings' shared request.
        return await asyncio.shield(task)

    async def _request(self, items: list[ScoreItem], step: int | None) -> ScoreResponse:
        s = self._settings
        params: dict[str, Any] = {
            "preset": s.preset,
            "spec": s.spec,
            "overrides": s.overrides,
            "toolset": None if s.tools is not None else s.toolset,
            "tools": [dict(t) for t in s.tools] if s.tools is not None else None,
            "parser": s.parser,
            "run_id": s.run_id,
            "step": step,
        }
        if s.eos_tokens:
            params["eos_tokens"] = list(s.eos_tokens)
        if s.local:
            backend = self._local()
            return await asyncio.to_thread(functools.partial(backend.score, items, **params))
        return await self._clients.get().score(items, **params)

    def _values(self, response: ScoreResponse) -> list[float | None]:
        component = self._settings.component
        gates = self._settings.gates
        if component is None:
            return [r.reward for r in response.results]
        scored = [r for r in response.results if r.error is None]
        if component != _GATE and scored and all(component not in r.components for r in scored):
            known = ", ".join(scored[0].components) or "none"
            raise ValueError(f"component {component!r} is not part of this reward spec; its components: {known}")
        if gates is None:
            return [r.components.get(component) if r.error is None else None for r in response.results]
        values: list[float | None] = []
        for r in response.results:
            if r.error is not None or r.reward is None:
                values.append(None)
            elif _gated(r.reason):
                # A gate decided the reward: the gate function carries all of it.
                values.append(float(r.reward) if component == _GATE else 0.0)
            else:
                values.append(gates.share(component, r.components))
        return values


def _gated(reason: str) -> bool:
    """Whether the engine's reason says a gate decided the reward (`gate not_finished → 0`)."""
    return reason.startswith("gate ")


# ---------------------------------------------------------------------------- factories
ToolLike = Mapping[str, Any] | Callable[..., Any]


def _eos(
    tokenizer: Any, eos_token_id: int | Sequence[int] | None, eos_token: str | Sequence[str] | None
) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    """EOS ids (for the finish state from `completion_ids`) and EOS texts (sent as `eos_tokens`)."""
    ids: list[int] = []
    texts: list[str] = []
    if tokenizer is not None:
        tid = getattr(tokenizer, "eos_token_id", None)
        text = getattr(tokenizer, "eos_token", None)
        if tid is None or not isinstance(text, str):
            raise ValueError("tokenizer= has no eos_token/eos_token_id; pass eos_token_id= and eos_token=")
        ids.append(int(tid))
        texts.append(text)
    if eos_token_id is not None:
        ids.extend([eos_token_id] if isinstance(eos_token_id, int) else [int(t) for t in eos_token_id])
    if eos_token is not None:
        texts.extend([eos_token] if isinstance(eos_token, str) else [str(t) for t in eos_token])
    return (tuple(dict.fromkeys(ids)) or None), (tuple(dict.fromkeys(texts)) or None)


def _settings(
    base_url: str | Sequence[str] | None,
    *,
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    toolset: str | None,
    tools: Sequence[ToolLike] | None,
    parser: str,
    reference_column: str,
    ground_truth_column: str,
    teacher_tools_column: str,
    tokenizer: Any,
    eos_token_id: int | Sequence[int] | None,
    eos_token: str | Sequence[str] | None,
    api_key: str | None,
    local: bool,
    name: str,
    component: str | None,
    run_id: str | None,
    config: ClientConfig | None,
    group: str | None,
    gates: _GatedSpec | None,
) -> _Settings:
    if tools is not None and toolset is not None:
        raise ValueError("give either toolset= (a registered name) or tools= (your own), not both")
    eos_ids, eos_texts = _eos(tokenizer, eos_token_id, eos_token)
    urls = None if base_url is None else ((base_url,) if isinstance(base_url, str) else tuple(base_url))
    return _Settings(
        base_urls=urls,
        api_key=api_key,
        config=config,
        # An inline spec replaces the preset (the service rejects both at once).
        preset=None if spec is not None else preset,
        spec=dict(spec) if spec is not None else None,
        overrides=dict(overrides) if overrides is not None else None,
        toolset=toolset,
        tools=tuple(tool_schemas(tools)) if tools is not None else None,
        parser=parser,
        reference_column=reference_column,
        ground_truth_column=ground_truth_column,
        teacher_tools_column=teacher_tools_column,
        eos_token_ids=eos_ids,
        eos_tokens=eos_texts,
        local=local,
        name=name,
        component=component,
        run_id=run_id,
        group=group,
        gates=gates,
    )


def trl_reward_func(
    base_url: str | Sequence[str] | None = None,
    *,
    preset: str | None = "mentor",
    spec: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    toolset: str | None = None,
    tools: Sequence[ToolLike] | None = None,
    parser: str = "auto",
    reference_column: str = "reference",
    ground_truth_column: str = "ground_truth",
    teacher_tools_column: str = "teacher_tools",
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    eos_token: str | Sequence[str] | None = None,
    api_key: str | None = None,
    local: bool = False,
    name: str | None = None,
    component: str | None = None,
    run_id: str | None = None,
    config: ClientConfig | None = None,
) -> MentorReward:
    """A TRL reward function that scores completions with the reward service.

    Args:
        base_url: the service or a list of replicas; default MENTOR_REWARD_URL, else
            http://127.0.0.1:8000. Ignored with `local=True`.
        preset: the reward preset (`mentor`, `sparse`, ...). `spec` (an inline reward spec)
            replaces it; `overrides` are merged into either.
        toolset: the registered toolset the model calls; None: the spec's own (the paper's
            presets: `calculator`).
        tools: your own tools instead of a toolset: OpenAI-format JSON schemas, or the callables
            you pass to `GRPOTrainer(tools=...)` (their schemas are read as TRL reads them).
            Tool names and argument schemas are checked against these.
        parser: tool-call parser name, or "auto".
        reference_column, ground_truth_column, teacher_tools_column: dataset columns with
            the teacher's trace (JSON text or dict), the acceptable answer(s), and the
            names-only teacher tool list; a missing column means "not given".
        tokenizer: the model's tokenizer (`processing_class`): its `eos_token_id` decides from
            `completion_ids` whether a completion ended with EOS (TRL strips special tokens from
            the text), and its `eos_token` is sent as the model's EOS token.
        eos_token_id, eos_token: the same, given directly (added to the tokenizer's).
        api_key: Bearer token; default MENTOR_REWARD_API_KEY.
        local: score in this process with the engine instead of over HTTP.
        name: metric name (`rewards/<name>/mean`); default `mentor`, or `mentor_<component>`.
        component: return this component's raw score instead of the weighted reward.
        run_id: labels the service's score records (the step comes from `trainer_state`).
        config: a `ClientConfig` for timeouts, retries, chunking (base_url/api_key override it).

    Returns:
        A picklable `MentorReward`, to pass in `GRPOTrainer(reward_funcs=[...])`.

    Example:
        >>> reward = trl_reward_func("http://reward:8000", eos_token_id=151645)
        >>> reward.__name__
        'mentor'
        >>> trl_reward_func(component="outcome").__name__
        'mentor_outcome'
    """
    return MentorReward(
        _settings(
            base_url,
            preset=preset,
            spec=spec,
            overrides=overrides,
            toolset=toolset,
            tools=tools,
            parser=parser,
            reference_column=reference_column,
            ground_truth_column=ground_truth_column,
            teacher_tools_column=teacher_tools_column,
            tokenizer=tokenizer,
            eos_token_id=eos_token_id,
            eos_token=eos_token,
            api_key=api_key,
            local=local,
            name=name or (f"mentor_{component}" if component else "mentor"),
            component=component,
            run_id=run_id,
            config=config,
            group=None,
            gates=None,
        )
    )


def trl_component_reward_funcs(
    base_url: str | Sequence[str] | None = None,
    *,
    components: Sequence[str] | None = None,
    gated: bool = False,
    preset: str | None = "mentor",
    spec: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    toolset: str | None = None,
    tools: Sequence[ToolLike] | None = None,
    parser: str = "auto",
    reference_column: str = "reference",
    ground_truth_column: str = "ground_truth",
    teacher_tools_column: str = "teacher_tools",
    tokenizer: Any = None,
    eos_token_id: int | Sequence[int] | None = None,
    eos_token: str | Sequence[str] | None = None,
    api_key: str | None = None,
    local: bool = False,
    name: str | None = None,
    run_id: str | None = None,
    config: ClientConfig | None = None,
) -> list[MentorReward]:
    """One TRL reward function per reward component; the functions share one request per batch.

    Args:
        components: which components (default: every component of the resolved spec, asked of
            the service or the local engine once, here; with `gated=True`, those with a weight).
        gated: False (default): each function returns its component's raw score, whatever the
            preset's gates and wrong-answer scaling say — for logging or your own weighting with
            `GRPOConfig(reward_weights=[...])`; the sum does NOT rebuild the preset's reward.
            True: each returns its share of the preset's reward (weight × score × wrong-answer
            scale, renormalised as the spec says; 0.0 when a gate decided the reward), followed
            by a `<name>_gate` function giving the gate's reward (else the spec's bias); with
            `reward_weights` all 1.0 (TRL's default) they sum to the preset's reward. A spec with
            `clip` cannot be split this way (ValueError).
        The other arguments are those of `trl_reward_func`.

    Returns:
        The functions, named `<name>_<component>` (`mentor_outcome`, ...), in order.
    """
    gates: _GatedSpec | None = None
    if components is None or gated:
        resolved = _resolved_spec(base_url, preset, spec, overrides, api_key, local, config)
        listed = resolved.get("components")
        if not isinstance(listed, Mapping) or not listed:
            raise ResponseValidationError("the resolved spec lists no components")
        if gated:
            gates = _GatedSpec.of(resolved)
            if components is None:
                components = [str(c) for c in listed if gates.weights.get(str(c), 0.0) != 0.0]
            components = [*components, _GATE]
        elif components is None:
            components = [str(c) for c in listed]
    group = uuid.uuid4().hex
    base = name or "mentor"
    return [
        MentorReward(
            _settings(
                base_url,
                preset=preset,
                spec=spec,
                overrides=overrides,
                toolset=toolset,
                tools=tools,
                parser=parser,
                reference_column=reference_column,
                ground_truth_column=ground_truth_column,
                teacher_tools_column=teacher_tools_column,
                tokenizer=tokenizer,
                eos_token_id=eos_token_id,
                eos_token=eos_token,
                api_key=api_key,
                local=local,
                name=f"{base}_gate" if component == _GATE else f"{base}_{component}",
                component=component,
                run_id=run_id,
                config=config,
                group=group,
                gates=gates,
            )
        )
        for component in components
    ]


def _resolved_spec(
    base_url: str | Sequence[str] | None,
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    api_key: str | None,
    local: bool,
    config: ClientConfig | None,
) -> dict[str, Any]:
    preset = None if spec is not None else preset
    if local:
        resolved = LocalBackend().validate_spec(preset=preset, spec=spec, overrides=overrides)
    else:
        with RewardClient(base_url, api_key=api_key, config=config) as client:
            resolved = client.validate_spec(preset=preset, spec=spec, overrides=overrides)
    return resolved.spec
