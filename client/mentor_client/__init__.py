"""Client SDK of the MENTOR reward service: teacher-guided tool-use rewards for RL training.

    from mentor_client import RewardClient
    with RewardClient("http://localhost:8000") as client:
        response = client.score([{"completion": text, "ground_truth": "5", "teacher_tools": ["add"]}])

`RewardClient` / `AsyncRewardClient` speak the HTTP API; `LocalBackend` computes the same
answers in-process (needs `mentor-reward[server]`). `trl_reward_func` plugs either into TRL;
`mentor_client.adapters` has verl and OpenRLHF adapters. Wire models are in
`mentor_client.protocol`, exceptions in `mentor_client.exceptions`.
"""

from ._backends import AsyncRewardBackend, RewardBackend
from ._base import ClientConfig, RetryPolicy
from ._client import AsyncRewardClient, RewardClient
from ._version import __version__
from .adapters.trl import MentorReward, trl_component_reward_funcs, trl_reward_func
from .exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    ItemScoringError,
    MentorClientError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseValidationError,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from .local import LocalBackend
from .protocol import ItemResult, ScoreItem, ScoreRequest, ScoreResponse

__all__ = [
    "APIError",
    "AsyncRewardBackend",
    "AsyncRewardClient",
    "AuthenticationError",
    "BadRequestError",
    "ClientConfig",
    "ConnectError",
    "ItemResult",
    "ItemScoringError",
    "LocalBackend",
    "MentorClientError",
    "MentorReward",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "RewardBackend",
    "RewardClient",
    "ScoreItem",
    "ScoreRequest",
    "ScoreResponse",
    "ServerError",
    "TransportError",
    "__version__",
    "trl_component_reward_funcs",
    "trl_reward_func",
]
