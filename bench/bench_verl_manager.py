"""verl reward manager overhead: one 1024-item step through `MentorRewardManager` and a live
service, as a ratio to scoring the same items with the in-process engine.

The step is the shared trainer catalogue (tests/trainers/trainers_catalogue.py) repeated to N items.
The manager is driven as verl's reward loop drives it: `run_single` once per sample, all at once
on one event loop (token ids in, a tiny local tokenizer decodes them); it sends one request per
step. The service runs with one scoring worker, so the ratio measures what the manager and
the HTTP path add (decoding, JSON both ways, the process hop), not parallel speed-up. The floor
is `LocalBackend.score` on the decoded texts in this process (the engine alone). Each run times
both; the median ratio of the runs is reported. A second ratio compares the manager over HTTP
with the same manager scoring in-process (`local=True`: the same decoding and label reading),
which isolates what the service path adds.

    .venv/bin/python bench/bench_verl_manager.py            # 1024 items, 5 runs
    .venv/bin/python bench/bench_verl_manager.py --items 256 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "trainers"))

from service_process import ServiceProcess, free_port, service_env  # noqa: E402
from trainers_catalogue import CASES, corpus  # noqa: E402

from mentor_client import LocalBackend  # noqa: E402
from mentor_client.adapters.verl_manager import MentorRewardManager  # noqa: E402

PRESET = "flexible"


class _Item:
    """The slice of a verl `DataProto` item that a reward manager reads."""

    def __init__(self, ids: list[int], length: int, label: dict[str, Any], index: int) -> None:
        import torch

        self.batch = {
            "responses": torch.tensor(ids + [0] * (length - len(ids))),
            "attention_mask": torch.tensor([1] * len(ids) + [0] * (length - len(ids))),
        }
        self.non_tensor_batch = {
            "data_source": "bench",
            "reward_model": {"ground_truth": label},
            "extra_info": {"index": index},
        }


class _Data(list[_Item]):
    """A one-sample batch, as verl hands it to `run_single`."""

    def __init__(self, items: list[_Item]) -> None:
        super().__init__(items)
        self.meta_info: dict[str, Any] = {}


def _step(tokenizer: Any, n: int) -> tuple[list[_Data], list[dict[str, Any]]]:
    samples, items = [], []
    for i in range(n):
        case = CASES[i % len(CASES)]
        ids = tokenizer(case.text, add_special_tokens=False)["input_ids"]
        ids = [*ids, tokenizer.eos_token_id] if case.finished else ids
        samples.append(_Data([_Item(ids, 128, case.label, i)]))
        items.append({"completion": case.text, **case.label, "finished": case.finished})
    return samples, items


async def _manager_step(manager: MentorRewardManager, samples: list[_Data]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(manager.run_single(s) for s in samples)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from mentor_trainer.tiny import build_tokenizer

    tokenizer = build_tokenizer(corpus(), vocab_size=400)
    samples, items = _step(tokenizer, args.items)
    engine = LocalBackend()
    with tempfile.TemporaryDirectory() as tmp:
        service = ServiceProcess(free_port(), service_env(workers="1"), Path(tmp) / "service.log").start()
        try:
            config = SimpleNamespace(reward={"reward_kwargs": {"url": service.base_url, "preset": PRESET}})
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            manager = MentorRewardManager(config, tokenizer)
            local_config = SimpleNamespace(reward={"reward_kwargs": {"local": True, "preset": PRESET}})
            local_manager = MentorRewardManager(local_config, tokenizer)
            loop.run_until_complete(_manager_step(local_manager, samples))
            # Warm both paths (engine caches, the service's worker, the HTTP connection).
            expected = engine.score(items, preset=PRESET, eos_tokens=[tokenizer.eos_token])
            loop.run_until_complete(_manager_step(manager, samples))
            ratios, engine_s, manager_s, local_s, http_ratios = [], [], [], [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                engine.score(items, preset=PRESET, eos_tokens=[tokenizer.eos_token])
                t1 = time.perf_counter()
                sent = manager.requests_sent
                out = loop.run_until_complete(_manager_step(manager, samples))
                t2 = time.perf_counter()
                assert manager.requests_sent - sent == 1, "the step must go out as one request"
                assert [o["reward_score"] for o in out] == [r.reward for r in expected.results]
                loop.run_until_complete(_manager_step(local_manager, samples))
                t3 = time.perf_counter()
                engine_s.append(t1 - t0)
                manager_s.append(t2 - t1)
                local_s.append(t3 - t2)
                ratios.append((t2 - t1) / (t1 - t0))
                http_ratios.append((t2 - t1) / (t3 - t2))
            loop.close()
        finally:
            service.stop()
    print(f"{args.items} items, preset {PRESET}, {args.runs} runs (median)")
    print(f"  in-process engine (LocalBackend.score): {statistics.median(engine_s) * 1000:.0f} ms")
    print(f"  MentorRewardManager over HTTP, 1 request: {statistics.median(manager_s) * 1000:.0f} ms")
    print(f"  MentorRewardManager in-process (local=True): {statistics.median(local_s) * 1000:.0f} ms")
    print(f"  ratio manager / engine: {statistics.median(ratios):.2f}x (runs: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(
        f"  ratio manager over HTTP / manager in-process: {statistics.median(http_ratios):.2f}x "
        f"(runs: {', '.join(f'{r:.2f}' for r in http_ratios)})"
    )


if __name__ == "__main__":
    main()
