"""ServiceSettings: defaults, environment, the YAML file, and errors that name the setting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mentor_server.api import ServiceSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MENTOR_"):
            monkeypatch.delenv(name)


def test_defaults_need_no_file() -> None:
    settings = ServiceSettings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.workers == (os.cpu_count() or 1)
    assert settings.api_keys == [] and settings.record_backend == "none"
    assert settings.max_body_bytes == 16 * 1024 * 1024 and settings.max_items == 4096


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MENTOR_PORT", "9123")
    monkeypatch.setenv("MENTOR_API_KEYS", "k1, k2")
    monkeypatch.setenv("MENTOR_RECORD_BACKEND", "jsonl")
    monkeypatch.setenv("MENTOR_WORKERS", "3")
    settings = ServiceSettings()
    assert settings.port == 9123 and settings.workers == 3
    assert settings.api_key_values() == ["k1", "k2"]
    assert "k1" not in repr(settings)  # keys are secrets
    assert settings.record_path == Path("mentor_records.jsonl")


def test_yaml_file_with_presets_and_toolsets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tools.yaml").write_text(
        "toolsets:\n- name: greeter\n  tools:\n"
        "  - {type: function, function: {name: hello, parameters: {}}}\n"
    )
    config = tmp_path / "service.yaml"
    config.write_text(
        "port: 9000\napi_keys: [from-file]\nmax_items: 10\ntoolsets: [tools.yaml]\n"
        "record_backend: sqlite\nrecord_path: out/records.sqlite3\n"
        "presets:\n  outcome-only:\n    components: {outcome: {weight: 1.0}}\n"
    )
    monkeypatch.setenv("MENTOR_CONFIG_FILE", str(config))
    monkeypatch.setenv("MENTOR_MAX_ITEMS", "20")  # the environment wins over the file
    settings = ServiceSettings()
    assert settings.port == 9000 and settings.max_items == 20
    assert settings.api_key_values() == ["from-file"]
    assert settings.toolsets == [tmp_path / "tools.yaml"]
    assert settings.record_path == tmp_path / "out" / "records.sqlite3"
    assert ServiceSettings(config_file=config, port=1234).port == 1234  # arguments win over both


def test_file_presets_are_served(make_client: Any, tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text(
        "presets:\n  outcome-only:\n    description: just the answer\n"
        "    components: {outcome: {weight: 1.0}}\n"
    )
    service = make_client(lifespan=False, config_file=config)
    body = service.get("/v1/presets/outcome-only").json()
    assert body["description"] == "just the answer"
    assert body["spec"]["components"] == {
        "outcome": {"weight": 1.0, "wrong_answer_scale": 1.0, "options": {}}
    }


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("prot: 9000\n", "prot"),
        ("port: 99999\n", "port"),
        (
            "presets:\n  x:\n    components: {outcome: {weight: heavy}}\n",
            "presets.x.components.outcome.weight",
        ),
        ("presets:\n  mentor:\n    components: {outcome: {weight: 1}}\n", "presets.mentor"),
        ("toolsets: [missing.yaml]\n", "toolsets"),
        ("record_backend: mysql\n", "record_backend"),
        ("- just\n- a list\n", "mapping"),
        ("port: [\n", "not valid YAML"),
    ],
    ids=[
        "typo",
        "port-range",
        "bad-preset",
        "builtin-preset",
        "missing-toolsets",
        "backend",
        "not-mapping",
        "bad-yaml",
    ],
)
def test_file_errors_name_the_setting(tmp_path: Path, yaml_text: str, needle: str) -> None:
    config = tmp_path / "service.yaml"
    config.write_text(yaml_text)
    with pytest.raises((ValidationError, ValueError)) as info:
        ServiceSettings(config_file=config)
    assert needle in str(info.value)


def test_the_uvicorn_factory_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from mentor_server.api import create_app_from_env

    monkeypatch.setenv("MENTOR_API_KEYS", "env-key")
    monkeypatch.setenv("MENTOR_MAX_ITEMS", "3")
    app = create_app_from_env()
    assert app.state.service.settings.max_items == 3
    client = TestClient(app)
    assert client.get("/v1/presets").status_code == 401
    assert client.get("/v1/presets", headers={"Authorization": "Bearer env-key"}).status_code == 200
