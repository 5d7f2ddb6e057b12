"""The default retry policy outlasts a service restart: its waits add up to at least 15 s.

Across a ~6 s restart, full jitter (waits drawn from [0, bound]) let 2 of 947 requests use up
their retries; waits drawn from [bound/2, bound] keep the spread and guarantee the total.
"""

from __future__ import annotations

import random

from mentor_client import RetryPolicy


def test_the_default_waits_add_up_to_a_restart_and_stay_jittered() -> None:
    policy = RetryPolicy()
    random.seed(3)
    totals = [sum(policy.delay(n) for n in range(policy.max_retries)) for _ in range(2000)]
    assert min(totals) >= 15.0
    assert max(totals) <= 31.5
    assert len({round(t, 6) for t in totals}) > 1000  # still jittered: no lockstep after an outage


def test_without_jitter_the_waits_are_the_bounds() -> None:
    policy = RetryPolicy(jitter=False)
    assert [policy.delay(n) for n in range(policy.max_retries)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
