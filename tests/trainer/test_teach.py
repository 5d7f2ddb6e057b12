"""`mentor-train teach` against real OpenAI-compatible server processes.

Two servers, each a separate process on a real socket:
- `transformers serve` running a tiny Qwen2 built here from a locally trained tokenizer (a real
  model, random weights): it never answers correctly, so the test checks the loop's mechanics:
  requests are made, attempts are counted, nothing is kept, a rerun resumes without requests;
- `_teach_server.py`, an OpenAI-protocol server whose "model" is the programmatic teacher
  replaying the benchmark's reference traces (labelled as such): it checks that verified traces
  ARE kept, in the data set's shape, through structured and Hermes-text tool calls, retries on
  503/429, wrong answers rejected, resuming and `--retry-failed`.
Plus table tests of the pure parts (reading a turn, endpoint URLs, torn output files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.service_process import free_port
from trainer_helpers import save_served_model

from mentor_trainer.benchmark import generate_split, load_rows, load_split, verify_row, write_benchmark
from mentor_trainer.chat import prompt_without_tool_block
from mentor_trainer.teach import (
    FAILURE_REASONS,
    ChatEndpoint,
    EndpointError,
    Reply,
    TeachOptions,
    _load_progress,
    _Rollout,
    _Teacher,
    add_teach_command,
    attempts_path,
    chat_completions_url,
    read_turn,
    report_path,
    run_teach,
)

HERE = Path(__file__).resolve().parent
API_KEY = "teach-test-key"
SPLIT = "mix"


@contextlib.contextmanager
def _process(cmd: list[str], health_url: str, log: Path, timeout_s: float, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health_url, timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd[:3]} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six tasks across toolsets and chain lengths: 1-2 calculator calls, 3-4 calls, unit conversions."""
    rows = (
        generate_split("train", "in_domain", 2, seed=3)
        + generate_split("ood_long", "ood_long", 2, seed=3)
        + generate_split("ood_units", "units", 2, seed=3)
    )
    out = tmp_path_factory.mktemp("bench")
    write_benchmark(out, {SPLIT: rows}, seed=3, parquet=False)
    return out


@pytest.fixture(scope="module")
def teacher_url(bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("teacher") / "server.log"
    cmd = [
        sys.executable,
        str(HERE / "_teach_server.py"),
        "--data",
        str(bench / f"{SPLIT}.jsonl"),
        "--port",
        str(port),
        "--api-key",
        API_KEY,
    ]
    with _process(cmd, f"http://127.0.0.1:{port}/health", log, 30.0, dict(os.environ)):
        yield f"http://127.0.0.1:{port}/v1"


def _options(endpoint: str, model: str, **kw: Any) -> TeachOptions:
    defaults: dict[str, Any] = {"api_key": API_KEY, "concurrency": 3, "backoff_s": 0.01, "timeout_s": 30.0}
    return TeachOptions(endpoint=endpoint, model=model, **(defaults | kw))


def _server_requests(teacher_url: str, model: str) -> int:
    return int(httpx.get(teacher_url + "/stats").json().get(model, 0))


# ---------------------------------------------------------------------------- the programmatic teacher
@pytest.mark.e2e
def test_verified_traces_are_kept_in_the_data_set_shape(bench: Path, teacher_url: str, tmp_path: Path) -> None:
    model = "teacher-mixed+wrong3+flaky"
    out = tmp_path / "traces" / f"{SPLIT}.jsonl"
    report = run_teach(bench, SPLIT, out, _options(teacher_url, model))

    # Tasks 2 and 5 of the file are answered wrongly; the other four verify.
    assert (report.tasks, report.attempts, report.kept, report.kept_tasks) == (6, 6, 4, 4)
    assert report.failures == {"wrong_answer": 2}
    assert report.retries >= 1  # the flaky model failed some requests with 503 / 429
    assert report.requests == _server_requests(teacher_url, model)
    source = {r["id"]: r for r in load_rows(bench, SPLIT)}
    kept = load_rows(out.parent, SPLIT)
    assert sorted(r["id"] for r in kept) == sorted(rid for i, rid in enumerate(source) if i % 3 != 2)
    for row in kept:
        original = source[row["id"]]
        assert verify_row(row) == []  # calls re-execute to the recorded results; the answer is boxed
        assert row["reference"] == original["reference"]
        assert row["teacher_tools"] == original["teacher_tools"]
        assert row["prompt"] == original["prompt"] and row["toolset"] == original["toolset"]
        tool_messages = [m for m in row["messages"] if m["role"] == "tool"]
        assert tool_messages == [m for m in original["messages"] if m["role"] == "tool"]
        assert set(original) <= set(row)
    # SFT reads the output folder like a data set; the report and the attempt log are on disk.
    assert len(load_split(out.parent, SPLIT)) == 4
    on_disk = json.loads(report_path(out).read_text())
    assert on_disk["kept"] == 4 and on_disk["keep_rate"] == pytest.approx(4 / 6, abs=1e-3)
    log = [json.loads(line) for line in attempts_path(out).read_text().splitlines()]
    assert sorted((e["kept"], e["reason"]) for e in log) == [(False, "wrong_answer")] * 2 + [(True, None)] * 4

    # A rerun skips everything; --retry-failed attempts the two failed tasks once more.
    again = run_teach(bench, SPLIT, out, _options(teacher_url, model))
    assert (again.skipped, again.attempts, again.requests) == (6, 0, 0)
    retried = run_teach(bench, SPLIT, out, _options(teacher_url, model, retry_failed=True))
    assert (retried.skipped, retried.attempts, retried.kept, retried.failures) == (
        4,
        2,
        0,
        {"wrong_answer": 2},
    )
    assert len(load_rows(out.parent, SPLIT)) == 4


@pytest.mark.e2e
@pytest.mark.parametrize("style", ["structured", "hermes"], ids=["tool_calls-field", "hermes-text"])
def test_cli_collects_traces_from_either_call_format(
    bench: Path, teacher_url: str, tmp_path: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="mentor-train")
    add_teach_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "t.jsonl"
    args = parser.parse_args(
        [
            "teach",
            "--endpoint",
            teacher_url.removesuffix("/v1"),
            "--model",
            f"teacher-{style}",
            "--data",
            str(bench),
            "--split",
            SPLIT,
            "--out",
            str(out),
            "--api-key",
            API_KEY,
            "--limit",
            "4",
            "--concurrency",
            "2",
            "--json",
        ]
    )
    assert args._run(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["attempts"], printed["kept"], printed["failures"]) == (4, 4, {})
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(verify_row(r) == [] for r in rows)
    # Calls read from Hermes text keep the model's prose and lose the markup.
    first_call = next(m for m in rows[0]["messages"] if m.get("tool_calls"))
    expected_text = "I will call" if style == "hermes" else ""
    assert first_call["content"].startswith(expected_text) and "<tool_call>" not in first_call["content"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("model", "key", "closed_port", "message"),
    [
        ("teacher-mixed", "wrong-key", False, "401"),
        ("no-such-model", API_KEY, False, "404"),
        ("teacher-mixed", API_KEY, True, "cannot connect"),
    ],
    ids=["bad-api-key", "unknown-model", "nothing-listening"],
)
def test_unusable_endpoint_stops_the_run(
    bench: Path, teacher_url: str, tmp_path: Path, model: str, key: str, closed_port: bool, message: str
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/v1" if closed_port else teacher_url
    options = _options(endpoint, model, api_key=key, max_retries=1)
    with pytest.raises(EndpointError, match=message):
        run_teach(bench, SPLIT, tmp_path / "t.jsonl", options)
    assert not (tmp_path / "t.jsonl").read_text()


@pytest.mark.e2e
def test_teach_runs_without_the_training_stack(bench: Path, teacher_url: str, tmp_path: Path) -> None:
    """The reward image (server extra only) runs `teach` in docker-compose: no torch, TRL, datasets."""
    script = (
        "import sys\n"
        "from mentor_trainer.teach import TeachOptions, run_teach\n"
        f"options = TeachOptions(endpoint={teacher_url!r}, model='teacher-hermes', api_key={API_KEY!r},\n"
        "                        limit=2)\n"
        f"report = run_teach({str(bench)!r}, {SPLIT!r}, {str(tmp_path / 't.jsonl')!r}, options)\n"
        "assert report.kept == 2, report\n"
        "heavy = {'torch', 'transformers', 'trl', 'datasets', 'accelerate'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------------ a real model: transformers serve
def _serve_available() -> bool:
    from transformers.utils.import_utils import is_serve_available

    return bool(is_serve_available())


@pytest.fixture(scope="module")
def tiny_model_dir(bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 and its tokenizer in ONE folder, as `transformers serve` loads both from the path.

    (Loaded there, the tokenizer gets Qwen2's pre-tokenizer instead of the plain byte-level one it
    was trained with: same vocabulary, other splits. Harmless for a random model.) Sampling is
    switched on in its generation config: the server only sends `temperature`, never `do_sample`.
    """
    return save_served_model(load_rows(bench, SPLIT), tmp_path_factory.mktemp("tiny") / "model", sample=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_transformers_serve_tiny_model_runs_the_loop(bench: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    if not _serve_available():
        pytest.skip("`transformers serve` needs the openai package (pip install openai)")
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    cmd = [
        str(exe),
        "serve",
        str(tiny_model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    # One thread: the tiny model is latency-bound, and the test machine's other cores are busy.
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    log = tmp_path / "serve.log"
    with _process(cmd, f"http://127.0.0.1:{port}/health", log, 90.0, env):
        options = TeachOptions(
            endpoint=f"http://127.0.0.1:{port}",
            model=str(tiny_model_dir),
            max_turns=2,
            samples_per_task=2,
            concurrency=2,
            max_tokens=12,
            temperature=1.0,
            seed=0,
            max_retries=1,
            backoff_s=0.1,
            timeout_s=60.0,
            limit=3,
        )
        out = tmp_path / "traces.jsonl"
        report = run_teach(bench, SPLIT, out, options)
        text = log.read_text()
        served_ok = text.count('"POST /v1/chat/completions HTTP/1.1" 200')
        # `transformers serve` answers 500 when its tool-call parser meets malformed JSON in a
        # `<tool_call>` the model wrote (its bug, not ours); those are the only retries.
        served_error = text.count('"POST /v1/chat/completions HTTP/1.1" 500')
        # Two attempts of each of three tasks, each one to two turns; a random model is never right.
        assert (report.tasks, report.attempted_tasks, report.attempts, report.kept) == (3, 3, 6, 0)
        assert report.requests == served_ok + served_error and report.retries == served_error
        assert served_ok >= 1 and report.requests >= 6
        assert sum(report.failures.values()) == 6 and set(report.failures) <= set(FAILURE_REASONS)
        assert "request_rejected" not in report.failures and "bad_response" not in report.failures
        assert out.read_text() == ""
        log_entries = [json.loads(line) for line in attempts_path(out).read_text().splitlines()]
        assert len(log_entries) == 6

        # The rerun skips every task the model was judged on; only transport failures are retried.
        judged = Counter(e["id"] for e in log_entries if e["reason"] != "request_failed")
        owed = sum(2 - judged[task_id] for task_id in {e["id"] for e in log_entries})
        again = run_teach(bench, SPLIT, out, options)
        assert (again.skipped, again.attempts) == (sum(judged[t] == 2 for t in judged), owed)
        assert owed or again.requests == 0

        # The follow-up turn's wire format (assistant tool_calls with null content, JSON-string
        # arguments, a `tool` message answering the call id) is accepted by the real server too.
        greedy = dataclasses.replace(options, temperature=0.0)
        state, reply = asyncio.run(_follow_up_turn(greedy, load_rows(bench, SPLIT)[0]["prompt"]))
        assert state.wire[-2]["content"] is None and state.wire[-1] == {
            "role": "tool",
            "tool_call_id": "call_1_0",
            "content": "5",
        }
        assert reply.failure is None and reply.message is not None, reply.detail


async def _follow_up_turn(options: TeachOptions, prompt: list[dict[str, Any]]) -> tuple[_Rollout, Reply]:
    endpoint = ChatEndpoint(options)
    try:
        teacher = _Teacher(endpoint, options)
        toolset, schemas = teacher.toolset("calculator")
        state = _Rollout(wire=prompt_without_tool_block(prompt), stored=list(prompt))
        turn = read_turn({"content": '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'})
        await teacher._run_calls(toolset, state, turn, 1)
        return state, await endpoint.complete(endpoint.body(state.wire, schemas, 0))
    finally:
        await endpoint.aclose()


# ---------------------------------------------------------------------------- pure parts
def _call(name: str, arguments: Any) -> dict[str, Any]:
    return {"id": "c0", "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("message", "content", "calls", "structured"),
    [
        (
            {"content": None, "tool_calls": [_call("add", '{"a": 1, "b": 2}')]},
            "",
            [("add", {"a": 1, "b": 2}, None)],
            True,
        ),
        ({"content": "", "tool_calls": [_call("add", {"a": 1})]}, "", [("add", {"a": 1}, None)], True),
        (
            {"content": None, "tool_calls": [_call("add", '{"a": 1')]},
            "",
            [("add", {}, "arguments are not valid JSON")],
            True,
        ),
        (
            {"content": None, "tool_calls": [_call("add", "[1, 2]")]},
            "",
            [("add", {}, "arguments are not an object")],
            True,
        ),
        ({"content": None, "tool_calls": [_call("", "{}")]}, "", [("", {}, "empty name")], True),
        (
            {"content": 'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'},
            "Let me add.",
            [("add", {"a": 2, "b": 3}, None)],
            False,
        ),
        (
            {"content": '<tool_call>{"name": "add", "arguments": {"a": 2}</tool_call>'},
            "",
            [("add", {}, "")],
            False,
        ),
        (
            {"content": '<tool_call>{"name": "add", "parameters": {"a": 2, "b": 3}}</tool_call>'},
            "",
            [("add", {"a": 2, "b": 3}, None)],
            False,
        ),
        ({"content": "The answer is \\boxed{5}."}, "The answer is \\boxed{5}.", [], False),
        ({"content": [{"type": "text", "text": "It is \\boxed{5}."}]}, "It is \\boxed{5}.", [], False),
    ],
    ids=[
        "structured-json-string",
        "structured-dict",
        "structured-bad-json",
        "structured-not-object",
        "structured-no-name",
        "hermes-text",
        "hermes-broken-json",
        "hermes-parameters-key",
        "final-answer",
        "content-parts",
    ],
)
def test_read_turn(message: dict[str, Any], content: str, calls: list[tuple[Any, ...]], structured: bool) -> None:
    turn = read_turn({"role": "assistant", **message})
    assert turn.content == content
    assert turn.structured is structured
    assert len(turn.calls) == len(calls)
    for got, (name, arguments, error) in zip(turn.calls, calls, strict=True):
        assert (got.name, got.arguments) == (name, arguments)
        if error is None:
            assert got.error is None
        else:
            assert got.error is not None and got.error.startswith(error)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://h:8000", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/", "http://h:8000/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
        ("http://h/proxy/v1beta/", "http://h/proxy/v1beta/chat/completions"),
    ],
    ids=["root", "root-slash", "v1", "full", "versioned-prefix"],
)
def test_chat_completions_url(endpoint: str, url: str) -> None:
    assert chat_completions_url(endpoint) == url


def test_endpoint_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        chat_completions_url("localhost:8000")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_turns": 0}, "max-turns"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_retries": -1}, "max-retries"),
        ({"samples_per_task": 1, "keep_per_task": 2}, "keep-per-task"),
    ],
    ids=["no-turns", "no-concurrency", "negative-retries", "keep-more-than-sampled"],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TeachOptions(endpoint="http://h", model="m", **kwargs)


def test_resume_cuts_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    out.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "mess')  # the process died mid-write
    attempts_path(out).write_text(
        '{"id": "a", "reason": null}\n{"id": "d", "reason": "wrong_answer"}\n'
        '{"id": "e", "reason": "request_failed"}\n{"id": "d", "rea'
    )
    progress = _load_progress(out)
    assert dict(progress.kept) == {"a": 1, "b": 1}
    # A transport failure says nothing about the model: the task is not counted as tried.
    assert dict(progress.judged) == {"a": 1, "d": 1}
    assert out.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    options = TeachOptions(endpoint="http://h", model="m")
    assert [progress.done(t, options) for t in "abde"] == [True, True, True, False]
    assert progress.done("d", TeachOptions(endpoint="http://h", model="m", retry_failed=True)) is False


def test_help_lists_examples() -> None:
    parser = argparse.ArgumentParser(prog="mentor-train")
    add_teach_command(parser.add_subparsers(dest="command"))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        parser.parse_args(["teach", "--help"])
    assert "examples:" in buffer.getvalue() and "--samples-per-task" in buffer.getvalue()
