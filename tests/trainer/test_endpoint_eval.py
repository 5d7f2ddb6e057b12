"""`mentor-train eval --endpoint`: benchmark splits and BFCL's single-turn categories over a chat endpoint.

- End to end: a real `transformers serve` process serving a tiny Qwen2 built here (random weights,
  a locally trained tokenizer, TRL's Qwen 2.5 template with tools) is evaluated through the CLI on
  two benchmark splits and EVERY single-turn BFCL category in the wheel, a few cases each. Its
  numbers are near zero; what is checked is the pipeline: every category ran to completion, every
  case is judged or counted as an error, the tables and raw outputs are written, and BFCL's checker
  gave a verdict beside ours on every judged case.
- An oracle endpoint (an in-process httpx transport whose "model" answers with the ground truth:
  the benchmark's reference calls, BFCL's first acceptable values; labelled as such) checks the
  judging itself: real tool execution in the multi-turn loop gives accuracy 1, BFCL's checker and
  our engine both accept the ground truth and both reject a changed argument.
- Table tests of the pure parts (tools sent, names mapped back, Java/JavaScript values read back).

The bfcl-eval wheel is downloaded from PyPI (no dependencies) into bench/_downloads once, shared
with bench/bfcl_agreement.py; without network and without a cached wheel these tests skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from doc_blocks import block, shell_lines
from e2e.service_process import free_port
from trainer_helpers import ROOT, save_served_model

from mentor_trainer import bfcl_data
from mentor_trainer.benchmark import generate_split, load_rows, write_benchmark
from mentor_trainer.bfcl_data import openai_tools
from mentor_trainer.bfcl_judge import typed_arguments
from mentor_trainer.endpoint_eval import EndpointEvalOptions, resolve_categories, run_endpoint_eval

CACHE = ROOT / "bench" / "_downloads"
PY_AST = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple")


@pytest.fixture(scope="module")
def wheel() -> Path:
    try:
        return bfcl_data.wheel_path(CACHE)
    except RuntimeError as exc:
        pytest.skip(f"no bfcl-eval wheel (offline?): {exc}")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    splits = {
        "test": generate_split("test", "in_domain", 3, seed=5),
        "ood_units": generate_split("ood_units", "units", 2, seed=5),
    }
    write_benchmark(out, splits, seed=5, parquet=False)
    return out


# ---------------------------------------------------------------------------- pure parts
def _case(category: str, functions: list[dict[str, Any]]) -> bfcl_data.BfclCase:
    return bfcl_data.BfclCase("x_0", category, [{"role": "user", "content": "hi"}], functions, None)


def test_tools_sent_and_names_mapped_back() -> None:
    fn = {
        "name": "math.gcd",
        "description": "GCD.",
        "parameters": {
            "type": "dict",
            "properties": {
                "pair": {"type": "tuple", "items": {"type": "integer"}, "description": "two numbers"},
                "opts": {"type": "dict", "properties": {"tol": {"type": "float", "description": "t"}}},
                "what": {"type": "any", "description": "anything"},
            },
            "required": ["pair"],
        },
    }
    tools, names = openai_tools(_case("simple_python", [fn]))
    sent = tools[0]["function"]
    assert sent["name"] == "math_gcd" and names == {"math_gcd": "math.gcd"}
    props = sent["parameters"]["properties"]
    assert sent["parameters"]["type"] == "object"
    assert (props["pair"]["type"], props["pair"]["items"]["type"]) == ("array", "integer")
    assert (props["opts"]["type"], props["opts"]["properties"]["tol"]["type"]) == ("object", "number")
    assert props["what"]["type"] == "string"
    java, _ = openai_tools(_case("simple_java", [fn]))
    jprops = java[0]["function"]["parameters"]["properties"]
    assert {p["type"] for p in jprops.values()} == {"string"}
    assert "Java value of type tuple" in jprops["pair"]["description"] and "items" not in jprops["pair"]


@pytest.mark.parametrize(
    ("category", "kind", "value", "expected"),
    [
        ("simple_java", "boolean", "true", True),
        ("simple_java", "long", "42L", 42),
        ("simple_java", "double", "2.5", 2.5),
        ("simple_java", "ArrayList", '["a", "b"]', ["a", "b"]),
        ("simple_java", "ArrayList", "Arrays.asList(1)", "Arrays.asList(1)"),
        ("simple_java", "any", "mapController", "mapController"),
        ("simple_javascript", "dict", '{"a": 1}', {"a": 1}),
        ("simple_javascript", "integer", "x", "x"),
        ("simple_python", "integer", "7", "7"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_typed_arguments(category: str, kind: str, value: str, expected: Any) -> None:
    fn = {"name": "f", "parameters": {"type": "dict", "properties": {"v": {"type": kind}}}}
    assert typed_arguments(_case(category, [fn]), "f", {"v": value}) == {"v": expected}


def test_categories_resolve_against_the_wheel(wheel: Path) -> None:
    present = resolve_categories(("all",), wheel)
    assert present == list(bfcl_data.SINGLE_TURN_CATEGORIES)  # this wheel has all thirteen
    assert resolve_categories(("parallel,irrelevance",), wheel) == ["parallel", "irrelevance"]
    with pytest.raises(ValueError, match="multi_turn_base"):
        resolve_categories(("multi_turn_base",), wheel)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        EndpointEvalOptions(endpoint="http://x", model="m")


# ---------------------------------------------------------------------------- an oracle endpoint
def _first_acceptable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _first_acceptable(v[0]) for k, v in value.items() if v and v[0] != ""}
    return value


def _as_source(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class Oracle:
    """The "model" answers with the ground truth (or, `wrong`, with its first number changed)."""

    def __init__(self, bench_rows: list[dict[str, Any]], cases: list[bfcl_data.BfclCase], wrong: bool) -> None:
        self.rows = {r["prompt"][-1]["content"]: r for r in bench_rows}
        self.cases = {json.dumps(c.messages): c for c in cases}
        self.wrong = wrong
        self.tool_results: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        messages = body["messages"]
        case = self.cases.get(json.dumps(messages))
        if case is not None:
            return self._reply(self._bfcl(case, body["tools"]))
        row = self.rows[next(m["content"] for m in messages if m["role"] == "user")]
        self.tool_results += [m["content"] for m in messages if m["role"] == "tool"]
        if messages[-1]["role"] == "tool":
            return self._reply({"role": "assistant", "content": f"\\boxed{{{row['reference']['answer']}}}"})
        calls = [{"name": c["name"], "arguments": c["arguments"]} for c in row["reference"]["calls"]]
        return self._reply(self._calls(calls))

    def _bfcl(self, case: bfcl_data.BfclCase, tools: list[dict[str, Any]]) -> dict[str, Any]:
        if case.ground_truth is None:
            if "irrelevance" in case.category:
                return {"role": "assistant", "content": "None of these functions applies."}
            return self._calls([{"name": tools[0]["function"]["name"], "arguments": {}}])
        sent = {v: k for k, v in openai_tools(case)[1].items()}
        calls = []
        for call in case.ground_truth:
            ((name, params),) = call.items()
            arguments = _first_acceptable(params)
            if case.language != "python":  # Java/JavaScript values travel as source text
                arguments = {k: _as_source(v) for k, v in arguments.items()}
            if self.wrong:
                key = next(k for k, v in arguments.items() if isinstance(v, int | float) and not isinstance(v, bool))
                arguments[key] += 1000
            calls.append({"name": sent[name], "arguments": arguments})
        return self._calls(calls)

    @staticmethod
    def _calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"c{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for i, c in enumerate(calls)
            ],
        }

    @staticmethod
    def _reply(message: dict[str, Any]) -> httpx.Response:
        reason = "tool_calls" if message.get("tool_calls") else "stop"
        return httpx.Response(200, json={"choices": [{"message": message, "finish_reason": reason}]})


def _oracle_run(wheel: Path, bench: Path, categories: tuple[str, ...], wrong: bool) -> tuple[dict[str, Any], Oracle]:
    from mentor_client.adapters.trl_tools import ToolExecutor

    rows = load_rows(bench, "test") + load_rows(bench, "ood_units")
    cases = [c for cat in categories for c in bfcl_data.load_cases(wheel, cat, 3)]
    oracle = Oracle(rows, cases, wrong)
    options = EndpointEvalOptions(
        endpoint="http://oracle.test/v1",
        model="oracle",
        splits=("test", "ood_units"),
        bfcl_categories=categories,
        limit=3,
        bfcl_cache=str(CACHE),
        max_retries=0,
    )
    runner = ToolExecutor(local=True)
    try:
        result = run_endpoint_eval(
            options, runner, data_dir=bench, progress=False, transport=httpx.MockTransport(oracle)
        )
    finally:
        runner.close()
    return result, oracle


@pytest.mark.slow
def test_oracle_ground_truth_passes_both_judges(wheel: Path, bench: Path) -> None:
    categories = (
        "simple_python",
        "simple_javascript",
        "multiple",
        "parallel",
        "live_simple",
        "irrelevance",
        "live_relevance",
    )
    result, oracle = _oracle_run(wheel, bench, categories, wrong=False)
    # The benchmark loop executed the reference calls for real: the tool messages are the results.
    expected = [
        str(c["result"])
        for r in load_rows(bench, "test") + load_rows(bench, "ood_units")
        for c in r["reference"]["calls"]
    ]
    assert sorted(oracle.tool_results) == sorted(expected) and expected
    for split in ("test", "ood_units"):
        metrics = result["splits"][split]
        assert (metrics["accuracy"], metrics["tool_name_f1"], metrics["argument_score"]) == (1.0, 1.0, 1.0), split
        assert metrics["request_errors"] == 0
    table = result["bfcl"]["categories"]
    assert list(table) == [*categories, "all"]
    for category in categories:
        m = table[category]
        assert (m["n"], m["judged"], m["request_errors"], m["scoring_errors"]) == (3, 3, 0, 0), category
        assert (m["bfcl_accuracy"], m["our_accuracy"], m["agreement"]) == (1.0, 1.0, 1.0), category


@pytest.mark.slow
def test_oracle_changed_number_fails_both_judges(wheel: Path, bench: Path) -> None:
    result, _ = _oracle_run(wheel, bench, ("simple_python",), wrong=True)
    m = result["bfcl"]["categories"]["simple_python"]
    assert (m["judged"], m["bfcl_accuracy"], m["our_accuracy"], m["agreement"]) == (3, 0.0, 0.0, 1.0)
    assert 0.0 < m["arguments"] < 1.0  # partial credit: the other arguments still match


# ---------------------------------------------------------------------------- a real server
@contextlib.contextmanager
def _serve(model_dir: Path, log: Path) -> Iterator[str]:
    """`transformers serve` on a free port; killed (its whole process group) when the block ends."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    # One thread: the tiny model is latency-bound, and the test machine's other cores are busy.
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        # A generous bound only against a hang: a loaded 2-core machine starts it in well under a minute.
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"transformers serve not healthy:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.fixture(scope="module")
def tiny_served_model(bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 and its tokenizer in ONE folder, as `transformers serve` loads both from the path."""
    rows = [r for split in ("test", "ood_units") for r in load_rows(bench, split)]
    return save_served_model(rows, tmp_path_factory.mktemp("served") / "model")


@pytest.mark.e2e
@pytest.mark.slow
def test_transformers_serve_every_bfcl_category(
    wheel: Path, bench: Path, tiny_served_model: Path, tmp_path: Path
) -> None:
    from transformers.utils.import_utils import is_serve_available

    from mentor_trainer.cli import main

    if not is_serve_available():
        pytest.skip("`transformers serve` needs its serving extra (openai, fastapi, uvicorn)")
    out = tmp_path / "eval"
    # The command docs/evaluation.md shows, with this test's server, model, data and output folder.
    (command,) = shell_lines(block("eval-endpoint").body)
    program, *args = shlex.split(command)
    assert program == ".venv/bin/mentor-train" and args[0] == "eval"
    with _serve(tiny_served_model, tmp_path / "serve.log") as url:
        ours = {
            "http://127.0.0.1:8001/v1": url,
            "runs/served-model": str(tiny_served_model),
            "data/bench": str(bench),
            "runs/eval-served": str(out),
        }
        argv = [ours.get(a, a) for a in args]
        assert argv.count(url) == argv.count(str(out)) == 1, "the documented command changed shape"
        argv += ["--bfcl-cache", str(CACHE), "--max-new-tokens", "12", "--concurrency", "2", "--json"]
        assert main(argv) == 0
    report = json.loads((out / "eval.json").read_text())
    categories = report["bfcl"]["categories"]
    assert list(categories) == [*bfcl_data.SINGLE_TURN_CATEGORIES, "all"]
    for name in bfcl_data.SINGLE_TURN_CATEGORIES:
        m = categories[name]
        assert m["n"] == 2 and m["judged"] + m["request_errors"] + m["scoring_errors"] == 2, (name, m)
        # Both judges spoke on every judged case.
        assert m["judged"] == 0 or m["agreement"] is not None
    assert categories["all"]["judged"] >= 13  # most cases get an answer from the server
    raw = [json.loads(line) for line in (out / "bfcl_outputs.jsonl").read_text().splitlines()]
    assert len(raw) == 26 and len({r["id"] for r in raw}) == 26
    for r in raw:
        assert ("error" in r) or ("bfcl" in r and "ours" in r and "agree" in r), r
    table = (out / "bfcl_table.md").read_text()
    assert all(f"| {name} |" in table for name in bfcl_data.SINGLE_TURN_CATEGORIES) and "| **all** |" in table
    assert set(report["splits"]) == {"test", "ood_units"}
    assert all(m["n"] + m["request_errors"] == 2 for m in report["splits"].values())
    rollouts = (out / "rollouts.jsonl").read_text().splitlines()
    assert len(rollouts) == 4  # --limit 2 per split


@pytest.mark.slow
def test_cases_without_functions_and_refused_docs_are_judged_or_counted() -> None:
    """live_irrelevance has cases that offer no function (nothing to check a call against), and a
    function doc our engine refuses is that case's scoring error, never a verdict or a crash."""
    from mentor_client.adapters.trl_tools import ToolExecutor
    from mentor_trainer.bfcl_judge import BfclOutput, judge_category

    def never(*_: Any) -> dict[str, Any]:
        raise AssertionError("(ir)relevance cases are not sent to the AST checker")

    bare = bfcl_data.BfclCase("live_irrelevance_1", "live_irrelevance", [{"role": "user", "content": "hi"}], [], None)
    refused_doc = {
        "name": "f",
        "parameters": {"type": "dict", "properties": {"s": {"type": "string", "pattern": "("}}},
    }
    refused = bfcl_data.BfclCase("live_irrelevance_2", "live_irrelevance", bare.messages, [refused_doc], None)
    call: dict[str, Any] = {"name": "f", "arguments": {}, "error": None, "raw": "{}"}
    outputs = [
        BfclOutput(bare, {"role": "assistant", "content": "no"}, "stop"),
        BfclOutput(bare, {"role": "assistant", "content": None}, "tool_calls", calls=[call]),
        BfclOutput(refused, {"role": "assistant", "content": "no"}, "stop"),
    ]
    runner = ToolExecutor(local=True)
    try:
        tally, raw = judge_category(outputs, runner, never)
    finally:
        runner.close()
    m = tally.metrics()
    assert (m["n"], m["judged"], m["scoring_errors"], m["request_errors"]) == (3, 2, 1, 0)
    assert [r.get("ours", {}).get("valid") for r in raw[:2]] == [True, False]
    assert [r["bfcl"]["valid"] for r in raw[:2]] == [True, False] and m["agreement"] == 1.0
    assert raw[2]["error"].startswith("scoring: ") and "pattern" in json.dumps(raw[2]["score"])


# ---------------------------------------------------------------------------- retrieval splits over an endpoint
def test_retrieval_splits_use_the_data_folders_index_with_local(tmp_path: Path) -> None:
    """`eval --endpoint --local` serves the search index `make-data --retrieval` wrote into the data
    folder, as the in-process eval does; without it the run stops before any request, naming the file."""
    from mentor_client.adapters.trl_tools import ToolExecutor
    from mentor_trainer import families_retrieval as fr
    from mentor_trainer.benchmark import BenchmarkSizes, generate_benchmark

    fr.enable()
    try:
        rows = generate_benchmark(seed=7, sizes=BenchmarkSizes(train=16, test=4, ood=4))["ood_retrieval"]
        fr.write_index(tmp_path / "retrieval")
    finally:
        fr.disable()  # this process serves no retrieval tool of its own: the runner must load the file
    (tmp_path / "ood_retrieval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    options = EndpointEvalOptions(
        endpoint="http://oracle.test/v1", model="oracle", splits=("ood_retrieval",), limit=4, max_retries=0
    )

    oracle = Oracle(rows, [], wrong=False)
    bare = ToolExecutor(local=True, toolset_files=fr.local_toolset_files(tmp_path / "elsewhere", True))
    try:
        with pytest.raises(RuntimeError, match=r"retrieval/toolsets\.json"):
            run_endpoint_eval(options, bare, data_dir=tmp_path, progress=False, transport=httpx.MockTransport(oracle))
    finally:
        bare.close()
    assert oracle.tool_results == []

    runner = ToolExecutor(local=True, toolset_files=fr.local_toolset_files(tmp_path, True))
    try:
        result = run_endpoint_eval(
            options, runner, data_dir=tmp_path, progress=False, transport=httpx.MockTransport(oracle)
        )
    finally:
        runner.close()
    # The searches ran on the folder's index: the model saw the teacher's own search results.
    seen = sorted(json.dumps(json.loads(text), sort_keys=True) for text in oracle.tool_results)
    assert seen == sorted(json.dumps(c["result"], sort_keys=True) for r in rows for c in r["reference"]["calls"])
    metrics = result["splits"]["ood_retrieval"]
    assert (metrics["n"], metrics["accuracy"], metrics["request_errors"]) == (4, 1.0, 0)
