"""The reward service as a TRL reward function (GRPOTrainer, RLOOTrainer).

`trl_reward_func(...)` returns a `MentorReward`: a picklable callable whose `__call__` is a
real `async def`, so TRL runs it on its reward event loop concurrently with other async
rewards, and whose `__name__` names the metric (`rewards/mentor/mean`). What it guarantees:

- exactly `len(prompts)` values; `None` only where the item is "not applicable" (the service
  could not score it, or the requested component does not apply); a service that cannot be
  reached raises after retries — a failure is never turned into a 0.0 reward;
- only the dataset columns it is told about are read (`reference`, `ground_truth`,
  `teacher_tools`); TRL's `trainer_state` gives the step for score records, and `log_metric`
  receives the batch mean of every reward component; nothing else from `kwargs` is sent;
- termination comes from the token ids (`eos_token_id`), since TRL strips special tokens from
  the text the service sees;
- the HTTP client is made lazily, one per event loop; pickling keeps only the configuration.

`trl_component_reward_funcs(...)` returns one function per reward component (raw component
score as the reward), for weighting components with `GRPOConfig.reward_weights`; the functions
of one group share a single request per batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._base import ClientConfig
from .._client import AsyncRewardClient, RewardClient
from ..exceptions import ResponseValidationError
from ..local import LocalBackend
from ..protocol import ScoreItem, ScoreResponse
from ._common import PerLoop, build_item

__all__ = ["MentorReward", "trl_component_reward_funcs", "trl_reward_func"]

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
    parser: str
    reference_column: str
    ground_truth_column: str
    teacher_tools_column: str
    eos_token_ids: tuple[int, ...] | None
    local: bool
    name: str
    component: str | None
    run_id: str | None
    group: str | None


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
                    "text, which TRL strips; pass eos_token_id=tokenizer.eos_token_id or EOS gates fire "
                    "for every completion",
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
            "toolset": s.toolset,
            "parser": s.parser,
            "run_id": s.run_id,
            "step": step,
        }
        if s.local:
            backend = self._local()
            return await asyncio.to_thread(functools.partial(backend.score, items, **params))
        return await self._clients.get().score(items, **params)

    def _values(self, response: ScoreResponse) -> list[float | None]:
        component = self._settings.component
        if component is None:
            return [r.reward for r in response.results]
        scored = [r for r in response.results if r.error is None]
        if scored and all(component not in r.components for r in scored):
            known = ", ".join(scored[0].components) or "none"
            raise ValueError(f"component {component!r} is not part of this reward spec; its components: {known}")
        return [r.components.get(component) if r.error is None else None for r in response.results]


# ---------------------------------------------------------------------------- factories
def _settings(
    base_url: str | Sequence[str] | None,
    *,
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    toolset: str | None,
    parser: str,
    reference_column: str,
    ground_truth_column: str,
    teacher_tools_column: str,
    eos_token_id: int | Sequence[int] | None,
    api_key: str | None,
    local: bool,
    name: str,
    component: str | None,
    run_id: str | None,
    config: ClientConfig | None,
    group: str | None,
) -> _Settings:
    if isinstance(eos_token_id, int):
        eos: tuple[int, ...] | None = (eos_token_id,)
    elif eos_token_id is None:
        eos = None
    else:
        eos = tuple(int(t) for t in eos_token_id)
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
        parser=parser,
        reference_column=reference_column,
        ground_truth_column=ground_truth_column,
        teacher_tools_column=teacher_tools_column,
        eos_token_ids=eos,
        local=local,
        name=name,
        component=component,
        run_id=run_id,
        group=group,
    )


def trl_reward_func(
    base_url: str | Sequence[str] | None = None,
    *,
    preset: str | None = "mentor",
    spec: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    toolset: str | None = "calculator",
    parser: str = "auto",
    reference_column: str = "reference",
    ground_truth_column: str = "ground_truth",
    teacher_tools_column: str = "teacher_tools",
    eos_token_id: int | Sequence[int] | None = None,
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
        toolset: the registered toolset the completions call (None: the spec's own).
        parser: tool-call parser name, or "auto".
        reference_column, ground_truth_column, teacher_tools_column: dataset columns with
            the teacher's trace (dict or JSON string), the acceptable answer(s), and the
            names-only teacher tool list; a missing column means "not given".
        eos_token_id: EOS id(s) (`tokenizer.eos_token_id`); needed for EOS gates, since TRL
            strips special tokens from the text.
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
            parser=parser,
            reference_column=reference_column,
            ground_truth_column=ground_truth_column,
            teacher_tools_column=teacher_tools_column,
            eos_token_id=eos_token_id,
            api_key=api_key,
            local=local,
            name=name or (f"mentor_{component}" if component else "mentor"),
            component=component,
            run_id=run_id,
            config=config,
            group=None,
        )
    )


def trl_component_reward_funcs(
    base_url: str | Sequence[str] | None = None,
    *,
    components: Sequence[str] | None = None,
    preset: str | None = "mentor",
    spec: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    toolset: str | None = "calculator",
    parser: str = "auto",
    reference_column: str = "reference",
    ground_truth_column: str = "ground_truth",
    teacher_tools_column: str = "teacher_tools",
    eos_token_id: int | Sequence[int] | None = None,
    api_key: str | None = None,
    local: bool = False,
    name: str | None = None,
    run_id: str | None = None,
    config: ClientConfig | None = None,
) -> list[MentorReward]:
    """One TRL reward function per reward component, each returning that component's raw score.

    Weight them with `GRPOConfig(reward_weights=[...])` (one weight per function, in the order
    returned). The functions share one service request per batch. Arguments are those of
    `trl_reward_func`; `components` defaults to every component of the resolved spec, which is
    asked of the service (or the local engine) once, here. Names are `<name>_<component>`
    (`mentor_outcome`, ...).
    """
    if components is None:
        components = _spec_components(base_url, preset, spec, overrides, api_key, local, config)
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
                parser=parser,
                reference_column=reference_column,
                ground_truth_column=ground_truth_column,
                teacher_tools_column=teacher_tools_column,
                eos_token_id=eos_token_id,
                api_key=api_key,
                local=local,
                name=f"{base}_{component}",
                component=component,
                run_id=run_id,
                config=config,
                group=group,
            )
        )
        for component in components
    ]


def _spec_components(
    base_url: str | Sequence[str] | None,
    preset: str | None,
    spec: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    api_key: str | None,
    local: bool,
    config: ClientConfig | None,
) -> list[str]:
    preset = None if spec is not None else preset
    if local:
        resolved = LocalBackend().validate_spec(preset=preset, spec=spec, overrides=overrides)
    else:
        with RewardClient(base_url, api_key=api_key, config=config) as client:
            resolved = client.validate_spec(preset=preset, spec=spec, overrides=overrides)
    components = resolved.spec.get("components")
    if not isinstance(components, Mapping) or not components:
        raise ResponseValidationError("the resolved spec lists no components")
    return [str(c) for c in components]
