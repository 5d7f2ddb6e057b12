"""The scoring engine: parse rollouts, score them against a teacher's trace, combine by a reward spec.

Pure Python: importing it pulls in no web, HTTP or ML framework (a test checks `sys.modules`).

    >>> from mentor_server.scoring import ScoringEngine, item_from_dict, resolve_spec
    >>> engine = ScoringEngine(resolve_spec("mentor"), eos_tokens=["<|im_end|>"])
    >>> item = item_from_dict({
    ...     "completion": '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'
    ...                   "<tool_response>5</tool_response> The answer is \\\\boxed{5}.<|im_end|>",
    ...     "ground_truth": "5",
    ...     "teacher_tools": ["add"],
    ... })
    >>> round(engine.score_batch([item])[0].reward, 6)
    1.1
"""

from .engine import (
    CompiledSpec,
    EngineCache,
    EngineConfig,
    ScoringEngine,
    compile_spec,
    completion_finished,
    resolve_engine_config,
    resolve_toolset,
    tools_key,
)
from .items import ITEM_FIELDS, item_from_dict
from .presets import PresetDescription, get_preset, list_presets, preset_names, register_preset, resolve_spec
from .spec import COMPONENT_NAMES, DEFAULT_EOS_TOKENS, GATE_CONDITIONS, RewardSpec
from .types import (
    ComponentResult,
    ItemError,
    ItemScore,
    ParsedRollout,
    ReferenceCall,
    ReferenceTrace,
    ScoringConfigError,
    ScoringItem,
    ToolCall,
    field_path,
)

__all__ = [
    "COMPONENT_NAMES",
    "DEFAULT_EOS_TOKENS",
    "GATE_CONDITIONS",
    "ITEM_FIELDS",
    "CompiledSpec",
    "ComponentResult",
    "EngineCache",
    "EngineConfig",
    "ItemError",
    "ItemScore",
    "ParsedRollout",
    "PresetDescription",
    "ReferenceCall",
    "ReferenceTrace",
    "RewardSpec",
    "ScoringConfigError",
    "ScoringEngine",
    "ScoringItem",
    "ToolCall",
    "compile_spec",
    "completion_finished",
    "field_path",
    "get_preset",
    "item_from_dict",
    "list_presets",
    "preset_names",
    "register_preset",
    "resolve_engine_config",
    "resolve_spec",
    "resolve_toolset",
    "tools_key",
]
