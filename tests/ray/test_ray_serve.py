"""The service on a real local Ray cluster: two Serve replicas, one killed mid-run, nothing lost.

`ray start --head` runs in a private temp folder with two CPUs and no dashboard (ray_cluster.py);
`mentor-reward serve --ray --replicas 2 --workers 1` deploys the service on it. A client scores
batches through Serve's proxy while one replica process is killed with SIGKILL: requests it
held fail, the client retries them, Serve routes them to the other replica and starts a
replacement. Every batch must come back whole, each item scored once, in the order sent (the
items alternate right and wrong answers in a pattern the rewards must reproduce).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_cluster import RayHead, ServeOnRay

from mentor_client import RewardClient
from mentor_server.ray_serve import RayServeOptions, app_builder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BATCHES = 24
BATCH = 32


def _batch(number: int) -> tuple[list[dict[str, object]], list[bool]]:
    """Items whose right/wrong pattern depends on the batch, so a reordered or mixed-up answer shows."""
    right = [(number * 7 + i * 3) % 5 < 2 for i in range(BATCH)]
    items: list[dict[str, object]] = [
        {
            "completion": f'<tool_call>{{"name": "add", "arguments": {{"a": {number}, "b": {i}}}}}</tool_call>'
            f"\\boxed{{{number + i if ok else -1}}}<|im_end|>",
            "ground_truth": str(number + i),
            "teacher_tools": ["add"],
        }
        for i, ok in enumerate(right)
    ]
    return items, right


@pytest.fixture
def ray_head() -> Iterator[RayHead]:
    head = RayHead(num_cpus=2)
    try:
        yield head.start()
    finally:
        head.close()


def test_a_replica_killed_mid_run_loses_no_item(ray_head: RayHead, tmp_path: Path) -> None:
    serve = ServeOnRay(ray_head, tmp_path / "serve.log", "--replicas", "2", "--workers", "1")
    try:
        serve.start(replicas=2)
        first = sorted(ray_head.replicas())
        killed: list[int] = []
        halfway = threading.Event()

        def kill_one() -> None:
            halfway.wait(600)
            os.kill(first[0], signal.SIGKILL)
            killed.append(first[0])

        killer = threading.Thread(target=kill_one)
        killer.start()
        with RewardClient(serve.base_url, timeout=120) as client:
            for number in range(BATCHES):
                items, right = _batch(number)
                response = client.score(items, preset="mentor", run_id="ray", step=number)
                assert len(response.results) == BATCH
                outcome = [result.components["outcome"] for result in response.results]
                assert outcome == [1.0 if ok else 0.0 for ok in right], f"batch {number}"
                if number == BATCHES // 3:
                    halfway.set()
        killer.join(60)
        assert killed == [first[0]]
        # Serve replaced the killed replica: two again, one of them new.
        serve.wait_for(replicas=2, timeout_s=300)
        now = sorted(ray_head.replicas())
        assert first[0] not in now and first[1] in now
    finally:
        serve.stop()
    assert "Traceback" not in serve.log(), serve.log()


def test_options_map_to_serve_deployment_settings() -> None:
    from mentor_server.api.settings import ServiceSettings

    settings = ServiceSettings(workers=3, graceful_shutdown_s=40)
    fixed = RayServeOptions(replicas=2).deployment_options(settings)
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"] == {"num_cpus": 3.0} and fixed["graceful_shutdown_timeout_s"] == 40
    scaled = RayServeOptions(min_replicas=1, max_replicas=6, target_ongoing_requests=3).deployment_options(settings)
    assert scaled["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 6, "target_ongoing_requests": 3}
    with pytest.raises(ValueError, match="min_replicas"):
        RayServeOptions(min_replicas=5, max_replicas=2)
    # `serve run mentor_server.ray_serve:app_builder replicas=2 workers=1` builds without a cluster.
    application = app_builder({"replicas": "2", "workers": "1"})
    assert type(application).__name__ == "Application"
