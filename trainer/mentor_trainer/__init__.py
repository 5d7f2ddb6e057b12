"""The MENTOR training stack: an executable-tool benchmark, tiny local models, SFT, GRPO and evaluation.

The trainer depends on the reward service only through the client SDK (`mentor_client`): rewards
come from its TRL adapter and rollout tools execute through its tool endpoint (or, with `local`,
the in-process engine and toolsets). Everything runs offline. The command line is `mentor-train`
(`mentor_trainer.cli`); the modules are importable for scripts and tests:

- `benchmark`: task families, the programmatic teacher, splits, loading and verification;
- `tiny`: a locally trained tokenizer and a small Qwen2 decoder;
- `sft`: TRL's SFTTrainer on teacher traces and a plain-torch warm start;
- `grpo`: TRL's GRPOTrainer with the service's reward and tools;
- `evaluate`: tool-executing rollouts, scoring and the metrics table;
- `chat`, `tools`, `runtime`: the shared chat format, TRL tool callables, process setup.

Importing this package loads no ML library; the modules import torch/transformers/TRL lazily.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
