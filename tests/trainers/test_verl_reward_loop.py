"""verl 0.9.1's own reward loop, on parquet files written by pandas and by `datasets`, against a live service.

The path is verl's: `RLHFDataset` reads the parquet file (Arrow merges the label dicts into one
struct and fills missing keys with null) and `collate_fn` batches it; `RewardLoopWorker` loads the
reward manager from verl's config (`load_reward_manager`: our `compute_score` under verl's
`NaiveRewardManager`, or our `MentorRewardManager` by module path); `RewardLoopManager.compute_rm_score`
chunks the batch over workers and assembles `rm_scores` and `reward_extra_info`; verl's
validation metrics (`process_validation_metrics`) reduce the extra info. Only Ray's scheduling is
replaced (the worker runs in this process), since Ray would start a cluster for no part of the
contract.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from trainers_catalogue import CASES, PRESETS, label_column, service_answers
from trainers_support import require

from mentor_client import RewardClient

pytestmark = [pytest.mark.e2e]

RESPONSE_LENGTH = 96
RUN_ID = "verl-test"


def write_parquet(path: Path, writer: str, form: str) -> Path:
    rows = {
        "data_source": ["mentor-catalogue"] * len(CASES),
        "prompt": [[{"role": "user", "content": "What is 2 + 3?"}] for _ in CASES],
        "reward_model": [{"style": "rule", "ground_truth": label} for label in label_column(form)],
        "extra_info": [{"index": i, "split": "test"} for i in range(len(CASES))],
    }
    if writer == "pandas":
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
    else:
        import datasets

        datasets.Dataset.from_dict(rows).to_parquet(str(path))
    return path


def verl_config(tokenizer_dir: Path, tmp: Path, manager: str, preset: str, url: str, workers: int) -> Any:
    from omegaconf import OmegaConf

    if manager == "naive":
        reward_manager = {"source": "register", "name": "naive", "module": {"path": None, "name": None}}
        custom = {"path": "pkg://mentor_client.adapters.verl", "name": "compute_score", "reward_kwargs": {}}
    else:
        reward_manager = {
            "source": "importlib",
            "name": "MentorRewardManager",
            "module": {"path": "pkg://mentor_client.adapters.verl_manager", "name": None},
        }
        custom = {"path": None, "name": "compute_score"}
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": str(tokenizer_dir), "tokenizer_path": None}},
            "data": {"prompt_key": "prompt", "max_prompt_length": 64, "filter_overlong_prompts": False},
            "reward": {
                "num_workers": workers,
                "custom_reward_function": custom,
                "reward_manager": reward_manager,
                "reward_kwargs": {"url": url, "preset": preset, "run_id": RUN_ID},
                "reward_model": {"enable": False, "enable_resource_pool": False},
                "sandbox_fusion": None,
            },
        }
    )


def rollout_batch(parquet: Path, tokenizer: Any, config: Any, tmp: Path) -> Any:
    """What the trainer hands the reward loop after generation: verl's dataset rows plus token ids."""
    import torch
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    data_config = dict(config.data)
    data_config["cache_dir"] = str(tmp / "cache")
    dataset = RLHFDataset(str(parquet), tokenizer, data_config)
    rows = collate_fn([dataset[i] for i in range(len(dataset))])
    first = rows["reward_model"][0]["ground_truth"]
    if isinstance(first, dict):  # the dict form came back through Arrow: the other rows' keys, as null
        assert first["reference"] is None
        trace = rows["reward_model"][4]["ground_truth"]
        assert trace["teacher_tools"] is None and trace["reference"]["calls"][0]["arguments"]["x"] is None
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompts, responses, masks = [], [], []
    for case in CASES:
        ids = tokenizer(case.text, add_special_tokens=False)["input_ids"] + ([eos] if case.finished else [])
        assert len(ids) <= RESPONSE_LENGTH
        prompt = tokenizer("What is 2 + 3?", add_special_tokens=False)["input_ids"][-8:]
        prompt = [pad] * (8 - len(prompt)) + prompt
        prompts.append(prompt)
        responses.append(ids + [pad] * (RESPONSE_LENGTH - len(ids)))
        masks.append([int(t != pad) for t in prompt] + [1] * len(ids) + [0] * (RESPONSE_LENGTH - len(ids)))
    tensors = {
        "prompts": torch.tensor(prompts),
        "responses": torch.tensor(responses),
        "attention_mask": torch.tensor(masks),
        "input_ids": torch.cat([torch.tensor(prompts), torch.tensor(responses)], dim=1),
    }
    non_tensors = {k: v for k, v in rows.items() if not isinstance(v, torch.Tensor)}
    batch = DataProto.from_single_dict({**tensors, **non_tensors})
    batch.meta_info["global_steps"] = 3
    return batch


def run_reward_loop(config: Any, batch: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """`RewardLoopManager.compute_rm_score` with its workers in this process instead of Ray actors."""
    from verl.experimental.reward_loop import reward_loop
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    workers = []
    for _ in range(config.reward.num_workers):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        worker = reward_loop.RewardLoopWorker(config)
        call = (lambda w: lambda chunk: w.loop.run_until_complete(w.compute_score_batch(chunk)))(worker)
        workers.append(SimpleNamespace(worker=worker, compute_score_batch=SimpleNamespace(remote=call)))
    monkeypatch.setattr(reward_loop, "ray", SimpleNamespace(get=lambda results: results))
    manager = object.__new__(reward_loop.RewardLoopManager)
    manager.config = config
    manager.reward_model_manager = None
    manager.reward_loop_workers = workers
    manager.reward_manager_cls = resolve_reward_manager_cls(config)
    try:
        return manager.compute_rm_score(batch), [w.worker for w in workers]
    finally:
        for w in workers:
            w.worker.loop.close()
        asyncio.set_event_loop(None)


def validation_metrics(out: Any) -> dict[str, Any]:
    """verl's `_validate` reduction of the reward outputs (rewards plus every extra-info key)."""
    from verl.trainer.ppo.metric_utils import process_validation_metrics
    from verl.trainer.ppo.reward import extract_reward

    reward_tensor, extra = extract_reward(out)
    infos: dict[str, list[Any]] = {"reward": reward_tensor.sum(-1).tolist()}
    for key, values in extra.items():
        infos[key] = list(values.tolist())
    n = len(infos["reward"])
    metrics: dict[str, Any] = process_validation_metrics(["mentor-catalogue"] * n, ["uid"] * n, infos)
    return metrics


@pytest.fixture(scope="module")
def verl_modules() -> None:
    require("verl")
    require("verl.experimental.reward_loop.reward_loop")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("form", ["json", "dict"])
@pytest.mark.parametrize("writer", ["pandas", "datasets"])
def test_mentor_reward_manager_matches_the_service(
    verl_modules: None,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    form: str,
    preset: str,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    config = verl_config(tokenizer_dirs["chatml"], tmp_path, "mentor", preset, service.base_url, workers=2)
    parquet = write_parquet(tmp_path / "data.parquet", writer, form)
    before = len(client.records(run_id=RUN_ID, step=3).records)
    out, workers = run_reward_loop(config, rollout_batch(parquet, tokenizer, config, tmp_path), monkeypatch)

    expected = service_answers(client, preset, eos_tokens=[tokenizer.eos_token])
    rewards = out.batch["rm_scores"].sum(-1).tolist()
    assert rewards == pytest.approx([r for r, _ in expected], abs=1e-6)
    # Truncated responses (no EOS id at the end) were gated, not given the full reward.
    truncated = [i for i, c in enumerate(CASES) if not c.finished]
    assert all(rewards[i] == 0.0 for i in truncated)
    extra = {k: out.non_tensor_batch[k].tolist() for k in out.meta_info["reward_extra_keys"]}
    for i, (_, components) in enumerate(expected):
        for name, value in components.items():
            assert extra[name][i] == (None if value is None else pytest.approx(value)), (CASES[i].id, name)
    assert extra["finished"] == [1.0 if c.finished else 0.0 for c in CASES]
    assert extra["tool_call"] == [1.0 if "<tool_call>" in c.text else 0.0 for c in CASES]
    # One request per worker for the whole step (2 workers), every item recorded with the step.
    assert [w.reward_manager.requests_sent for w in workers] == [1, 1]
    assert len(client.records(run_id=RUN_ID, step=3).records) - before == len(CASES)
    # verl's validation reduction: every metric finite (None for not-applicable is dropped).
    metrics = validation_metrics(out)["mentor-catalogue"]
    values = [v for per_key in metrics.values() for v in per_key.values()]
    assert values and all(math.isfinite(v) for v in values)
    assert metrics["tool_call"]["mean@8"] == pytest.approx(sum(extra["tool_call"]) / len(CASES))


@pytest.mark.parametrize("form", ["json", "dict"])
@pytest.mark.parametrize("writer", ["pandas", "datasets"])
def test_compute_score_under_verls_naive_manager(
    verl_modules: None,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    form: str,
) -> None:
    from transformers import AutoTokenizer

    monkeypatch.setenv("MENTOR_REWARD_URL", service.base_url)
    monkeypatch.setenv("MENTOR_REWARD_PRESET", "flexible")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    config = verl_config(tokenizer_dirs["chatml"], tmp_path, "naive", "flexible", service.base_url, workers=1)
    parquet = write_parquet(tmp_path / "data.parquet", writer, form)
    out, _ = run_reward_loop(config, rollout_batch(parquet, tokenizer, config, tmp_path), monkeypatch)
    # compute_score sees text only (verl strips special tokens): every response counts as finished.
    expected = service_answers(client, "flexible", finished=True)
    assert out.batch["rm_scores"].sum(-1).tolist() == pytest.approx([r for r, _ in expected], abs=1e-6)
    metrics = validation_metrics(out)["mentor-catalogue"]
    assert all(math.isfinite(v) for per_key in metrics.values() for v in per_key.values())


def test_non_chatml_eos_is_read_from_the_tokenizer(
    verl_modules: None,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["llama"])
    assert tokenizer.eos_token == "</s>"
    config = verl_config(tokenizer_dirs["llama"], tmp_path, "mentor", "strict", service.base_url, workers=1)
    parquet = write_parquet(tmp_path / "data.parquet", "pandas", "dict")
    out, _ = run_reward_loop(config, rollout_batch(parquet, tokenizer, config, tmp_path), monkeypatch)
    expected = service_answers(client, "strict", eos_tokens=["</s>"])
    assert out.batch["rm_scores"].sum(-1).tolist() == pytest.approx([r for r, _ in expected], abs=1e-6)
    assert max(r for r, _ in expected if r is not None) > 1.0  # finished and right: full reward, not gated


def test_a_malformed_label_fails_the_step_naming_the_sample(
    verl_modules: None,
    service: Any,
    tokenizer_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pandas as pd
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    config = verl_config(tokenizer_dirs["chatml"], tmp_path, "mentor", "flexible", service.base_url, workers=1)
    path = write_parquet(tmp_path / "data.parquet", "pandas", "json")
    frame = pd.read_parquet(path)
    frame.at[5, "reward_model"] = {"style": "rule", "ground_truth": json.dumps({"teacher_tools": [1]})}
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"verl sample 5 \(mentor-catalogue\): ground_truth.teacher_tools"):
        run_reward_loop(config, rollout_batch(path, tokenizer, config, tmp_path), monkeypatch)


def agent_loop_samples(batch: Any) -> list[Any]:
    """The step as the agent loop's streaming reward sends it (`AgentLoopWorker._compute_score`,
    verl 0.9's path when no reward model is configured): one `DataProto` per trajectory, built
    from its own unpadded ids, its columns repeated from the agent loop's kwargs."""
    import numpy as np
    import torch
    from tensordict import TensorDict
    from verl import DataProto

    samples = []
    prompt_length = batch.batch["prompts"].shape[1]
    for i in range(len(batch)):
        length = int(batch.batch["attention_mask"][i, prompt_length:].sum())
        prompt = batch.batch["prompts"][i].clone()
        response = batch.batch["responses"][i, :length].clone()
        input_ids = torch.cat([prompt, response])
        tensors = {
            "prompts": prompt[None],
            "responses": response[None],
            "input_ids": input_ids[None],
            "attention_mask": torch.ones_like(input_ids)[None],
        }
        columns = {k: np.array([batch.non_tensor_batch[k][i]], dtype=object) for k in batch.non_tensor_batch}
        samples.append(DataProto(batch=TensorDict(tensors, batch_size=1), non_tensor_batch=columns))
    return samples


def test_the_agent_loops_streamed_samples_score_as_the_step(
    verl_modules: None,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    tmp_path: Path,
) -> None:
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop import reward_loop

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    config = verl_config(tokenizer_dirs["chatml"], tmp_path, "mentor", "flexible", service.base_url, workers=1)
    batch = rollout_batch(write_parquet(tmp_path / "data.parquet", "pandas", "json"), tokenizer, config, tmp_path)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = reward_loop.RewardLoopWorker(config)

        async def stream() -> list[Any]:
            # Each trajectory is its own call into verl's worker, as Ray delivers them.
            return list(await asyncio.gather(*(worker.compute_score(s) for s in agent_loop_samples(batch))))

        out = loop.run_until_complete(stream())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    expected = service_answers(client, "flexible", eos_tokens=[tokenizer.eos_token])
    assert [o["reward_score"] for o in out] == pytest.approx([r for r, _ in expected], abs=1e-6)
    assert [o["reward_extra_info"]["finished"] for o in out] == [1.0 if c.finished else 0.0 for c in CASES]
    assert worker.reward_manager.requests_sent == 1  # gathered within the window: one request
