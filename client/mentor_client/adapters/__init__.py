"""Trainer adapters: the reward service as each RL trainer expects a reward function.

- `trl`: `trl_reward_func`, `trl_component_reward_funcs` (TRL GRPOTrainer / RLOOTrainer), and
  `trl_tools` / `tool_schemas` (`trl_tools.py`) for `GRPOTrainer(tools=...)`;
- `verl`: `compute_score` / `compute_score_sync` (verl's `custom_reward_function`), and
  `verl_manager.MentorRewardManager` (verl's reward manager: one request per batch);
- `openrlhf_reward_func`: a file for OpenRLHF's `--reward.remote_url` (`reward_func`).

Only `verl_manager` imports its trainer (it subclasses verl's reward-manager base when verl is
installed); the others only speak their trainer's calling convention.
"""

from .trl import MentorReward, trl_component_reward_funcs, trl_reward_func
from .trl_tools import tool_schemas, trl_tools

__all__ = ["MentorReward", "tool_schemas", "trl_component_reward_funcs", "trl_reward_func", "trl_tools"]
