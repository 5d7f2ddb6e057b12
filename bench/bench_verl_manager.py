"""verl reward manager overhead: one 1024-item step through `MentorRewardManager` and a live
service, as a ratio to scoring the same items with the in-process engine.

The step is the shared trainer catalogue (tests/trainers/trainers_catalogue.py) repeated to N
items, held as verl holds it: one `verl.DataProto` of token ids (a tiny local fast tokenizer
decodes them). The manager is driven as verl 0.9.1 drives it, `run_single` once per sample, all
at once on one event loop, along both of verl's paths:

- step slices: `RewardLoopManager.compute_rm_score` → `RewardLoopWorker.compute_score_batch`
  hands each sample as `data[i : i + 1]`, a one-row view of the step. verl's slicing is timed
  on its own and not counted in the manager's time (any reward manager is handed the same
  slices);
- per-trajectory samples: the agent loop's streaming reward (verl's path when no reward model
  is configured) builds one `DataProto` per trajectory from its own ids. Here all of them
  arrive at once, the best case for batching; in training they arrive as rollouts finish.

verl 0.9.1 calls no batched entry point of a reward manager, so there is no batched path to
measure. The service runs with one scoring worker at the same priority as this process
(`worker_nice=0`: on a loaded machine a nicer worker would measure the scheduler, not the
code), so the ratio measures what the manager and the HTTP path add (reading and decoding,
JSON both ways, the process hop), not parallel speed-up. The floor is the engine alone:
`LocalBackend.score` in this thread (`item_timeout_s=None`, no worker process) on the decoded
texts. Each run times, back to back, in the same order: the engine alone; verl's slicing; the
manager over HTTP on the step slices (the target: at most 1.5x the floor) and on the
per-trajectory samples; the manager scoring the slices in this thread (`local=True` on the
same in-thread backend: the same reading, decoding, label reading and answers, no HTTP); and
`RewardClient.score` of the same items in one request (what the HTTP path adds). The median of
each ratio over the runs is reported, for wall and CPU time (this process's threads plus the
service's process tree, from /proc).

    .venv/bin/python bench/bench_verl_manager.py            # 1024 items, 7 runs
    .venv/bin/python bench/bench_verl_manager.py --items 256 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "trainers"))

from service_process import ServiceProcess, free_port, service_env  # noqa: E402
from trainers_catalogue import CASES, corpus  # noqa: E402

from mentor_client import LocalBackend, RewardClient  # noqa: E402
from mentor_client.adapters.verl_manager import MentorRewardManager  # noqa: E402

PRESET = "flexible"


PROMPT_LENGTH = 8
RESPONSE_LENGTH = 128


def _step(tokenizer: Any, n: int) -> tuple[Any, list[dict[str, Any]]]:
    """The step as verl holds it: one `DataProto` (right-padded responses, left-padded
    prompts, attention mask over both), and the same items as the engine's wire dicts."""
    import numpy as np
    import torch
    from verl import DataProto

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    responses, masks, labels, items = [], [], [], []
    for i in range(n):
        case = CASES[i % len(CASES)]
        ids = tokenizer(case.text, add_special_tokens=False)["input_ids"]
        ids = [*ids, tokenizer.eos_token_id] if case.finished else ids
        responses.append(ids + [pad] * (RESPONSE_LENGTH - len(ids)))
        masks.append([1] * PROMPT_LENGTH + [1] * len(ids) + [0] * (RESPONSE_LENGTH - len(ids)))
        labels.append({"ground_truth": case.label})
        items.append({"completion": case.text, **case.label, "finished": case.finished})
    data = DataProto.from_dict(
        tensors={
            "prompts": torch.full((n, PROMPT_LENGTH), 7),
            "responses": torch.tensor(responses),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array(["bench"] * n, dtype=object),
            "reward_model": np.array(labels, dtype=object),
            "extra_info": np.array([{"index": i} for i in range(n)], dtype=object),
        },
        meta_info={"global_steps": 1},
    )
    return data, items


def _slices(data: Any) -> list[Any]:
    # What verl's `RewardLoopWorker.compute_score_batch` hands `run_single`: one-row slices.
    return [data[i : i + 1] for i in range(len(data))]


def _streamed(data: Any) -> list[Any]:
    """The same samples as the agent loop's streaming reward sends them (`AgentLoopWorker.
    _compute_score`): one `DataProto` per trajectory, built from its own unpadded token ids."""
    import numpy as np
    import torch
    from tensordict import TensorDict
    from verl import DataProto

    samples = []
    for i in range(len(data)):
        length = int(data.batch["attention_mask"][i, PROMPT_LENGTH:].sum())
        prompt = data.batch["prompts"][i : i + 1].clone()
        response = data.batch["responses"][i : i + 1, :length].clone()
        batch = TensorDict(
            {
                "prompts": prompt,
                "responses": response,
                "input_ids": torch.cat([prompt, response], dim=1),
                "attention_mask": torch.ones(1, PROMPT_LENGTH + length, dtype=torch.int64),
            },
            batch_size=1,
        )
        columns = {k: np.array([data.non_tensor_batch[k][i]], dtype=object) for k in data.non_tensor_batch}
        samples.append(DataProto(batch=batch, non_tensor_batch=columns))
    return samples


async def _manager_step(manager: MentorRewardManager, samples: list[Any]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(manager.run_single(s) for s in samples)))


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by process `root` and its live descendants
    (the service, its fork server and its scoring worker), read from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in used.items():
        walk = pid
        while walk not in (root, 0, 1) and walk in parents:
            walk = parents[walk]
        if walk == root:
            total += seconds
    return total


class _Phases:
    """Wall and CPU seconds of each measured phase, per run."""

    def __init__(self, service_pid: int) -> None:
        self.service_pid = service_pid
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def run(self, name: str, fn: Callable[[], Any], *, uses_service: bool) -> Any:
        # A full collection of this process's heap (torch, transformers and verl loaded) takes
        # about a second on this machine and lands in whichever phase the allocation count
        # triggers it in: collect first, so each phase pays for its own garbage only.
        gc.collect()
        service0 = _tree_cpu_s(self.service_pid) if uses_service else 0.0
        cpu0 = time.process_time()  # every thread of this process, the tokenizer's included
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        if uses_service:
            cpu += _tree_cpu_s(self.service_pid) - service0
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)
        return out

    def ratios(self, name: str, clock: str) -> list[float]:
        values = self.wall if clock == "wall" else self.cpu
        return [t / e for t, e in zip(values[name], values["engine"], strict=True)]


def _median_line(label: str, values: list[float]) -> str:
    runs = ", ".join(f"{v:.2f}" for v in values)
    return f"  {label}: {statistics.median(values):.2f}x (runs: {runs})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from mentor_trainer.tiny import build_tokenizer

    tokenizer = build_tokenizer(corpus(), vocab_size=400)
    data, items = _step(tokenizer, args.items)
    streamed = _streamed(data)
    engine = LocalBackend(item_timeout_s=None)  # the engine in this thread: no process hop, no deadline
    eos = [tokenizer.eos_token]
    with tempfile.TemporaryDirectory() as tmp:
        env = service_env(workers="1", worker_nice="0")
        service = ServiceProcess(free_port(), env, Path(tmp) / "service.log").start()
        try:
            assert service.proc is not None
            phases = _Phases(service.proc.pid)
            config = SimpleNamespace(reward={"reward_kwargs": {"url": service.base_url, "preset": PRESET}})
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            manager = MentorRewardManager(config, tokenizer)
            local_config = SimpleNamespace(reward={"reward_kwargs": {"local": True, "preset": PRESET}})
            local_manager = MentorRewardManager(local_config, tokenizer)
            local_manager._local = engine  # the same in-thread engine as the floor
            client = RewardClient(service.base_url, chunk_size=args.items)
            samples = _slices(data)

            def run_engine() -> Any:
                return engine.score(items, preset=PRESET, eos_tokens=eos)

            def run_manager() -> list[dict[str, Any]]:
                return loop.run_until_complete(_manager_step(manager, samples))

            def run_streamed() -> list[dict[str, Any]]:
                return loop.run_until_complete(_manager_step(manager, streamed))

            def run_local() -> list[dict[str, Any]]:
                return loop.run_until_complete(_manager_step(local_manager, samples))

            def run_client() -> Any:
                return client.score(items, preset=PRESET, eos_tokens=eos)

            # Warm every path (engine caches, the service's worker, the HTTP connections).
            expected = [r.reward for r in run_engine().results]
            run_local(), run_manager(), run_streamed(), run_client()
            for _ in range(args.runs):
                phases.run("engine", run_engine, uses_service=False)
                # verl's own slicing of the step, before any manager is called: reported, not
                # counted in the manager's time (any reward manager is handed the same slices).
                samples = phases.run("slicing", lambda: _slices(data), uses_service=False)
                for name, run in (("manager", run_manager), ("streamed", run_streamed)):
                    sent = manager.requests_sent
                    out = phases.run(name, run, uses_service=True)
                    assert manager.requests_sent - sent == 1, "the step must go out as one request"
                    assert [o["reward_score"] for o in out] == expected
                local = phases.run("local", run_local, uses_service=False)
                assert [o["reward_score"] for o in local] == expected
                phases.run("client", run_client, uses_service=True)
            client.close()
            loop.close()
        finally:
            service.stop()

    ms = {name: statistics.median(values) * 1000 for name, values in phases.wall.items()}
    cpu_ms = {name: statistics.median(values) * 1000 for name, values in phases.cpu.items()}
    labels = {
        "manager": "MentorRewardManager over HTTP, step slices (compute_rm_score), 1 request",
        "streamed": "MentorRewardManager over HTTP, per-trajectory samples (agent loop), 1 request",
        "local": "MentorRewardManager in this thread (local), step slices",
        "client": "RewardClient.score, 1 request",
        "slicing": "verl's slicing of the step into samples (not counted above)",
    }
    print(f"{args.items} items, preset {PRESET}, {args.runs} runs (median wall ms / CPU ms)")
    print(f"  engine alone (LocalBackend in this thread): {ms['engine']:.0f} / {cpu_ms['engine']:.0f}")
    for name, label in labels.items():
        print(f"  {label}: {ms[name]:.0f} / {cpu_ms[name]:.0f}")
    for clock in ("wall", "cpu"):
        print(f"ratios to the engine alone, {clock} time (median of the runs' ratios):")
        for name in ("manager", "streamed", "local", "client"):
            print(_median_line(labels[name], phases.ratios(name, clock)))


if __name__ == "__main__":
    main()
