"""The structural types every reward backend satisfies.

`RewardClient` (HTTP) and `LocalBackend` (in-process engine) are both a `RewardBackend`;
`AsyncRewardClient` is an `AsyncRewardBackend`. Code that only scores — a trainer loop, an
evaluation script — can be written against these and run against either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ._base import ItemLike
from .protocol import ExecuteToolResponse, PresetList, ScoreResponse, ToolsetList, ValidateSpecResponse


@runtime_checkable
class RewardBackend(Protocol):
    """Blocking scoring, discovery and tool execution."""

    def score(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        reasons: bool = True,
    ) -> ScoreResponse: ...

    def presets(self) -> PresetList: ...

    def toolsets(self) -> ToolsetList: ...

    def validate_spec(
        self,
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ValidateSpecResponse: ...

    def execute_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, toolset: str = "calculator"
    ) -> ExecuteToolResponse: ...


@runtime_checkable
class AsyncRewardBackend(Protocol):
    """The same operations, awaited."""

    async def score(
        self,
        items: Sequence[ItemLike],
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str = "auto",
        eos_tokens: Sequence[str] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        reasons: bool = True,
    ) -> ScoreResponse: ...

    async def presets(self) -> PresetList: ...

    async def toolsets(self) -> ToolsetList: ...

    async def validate_spec(
        self,
        *,
        preset: str | None = None,
        spec: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ValidateSpecResponse: ...

    async def execute_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, toolset: str = "calculator"
    ) -> ExecuteToolResponse: ...
