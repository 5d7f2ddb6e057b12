"""Trainer adapters: the reward service as each RL trainer expects a reward function.

- `trl`: `trl_reward_func`, `trl_component_reward_funcs` (TRL GRPOTrainer / RLOOTrainer);
- `verl`: `compute_score` / `compute_score_sync` (verl's `custom_reward_function`);
- `openrlhf_reward_func`: a file for OpenRLHF's `--reward.remote_url` (`reward_func`).

None of them imports its trainer: they only speak the trainer's calling convention.
"""

from .trl import MentorReward, trl_component_reward_funcs, trl_reward_func

__all__ = ["MentorReward", "trl_component_reward_funcs", "trl_reward_func"]
