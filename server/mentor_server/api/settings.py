"""Service settings: environment variables (prefix `MENTOR_`) over an optional YAML file over defaults.

Every field can be set by an environment variable (`MENTOR_PORT=9000`, `MENTOR_API_KEYS=k1,k2`,
`MENTOR_RECORD_BACKEND=sqlite`) or by the YAML file named by `MENTOR_CONFIG_FILE` (or the CLI's
`--config`). Explicit constructor arguments win over the environment, which wins over the
file. The defaults need no file at all: the built-in presets and the calculator toolset,
bound to 127.0.0.1. A YAML file looks like:

    port: 8000
    api_keys: [change-me]
    max_items: 4096
    presets:                      # extra named reward specs, validated at start-up
      my-mentor:
        toolset: calculator
        components: {outcome: {weight: 0.8}, tool_names: {weight: 0.2, options: {mode: f1}}}
    toolsets: [tools/my_tools.json]   # files for `load_toolsets_file`, relative to this file
    record_backend: sqlite
    record_path: runs/scores.sqlite3   # or, for many replicas: record_url: postgresql://user:pw@db/mentor

An unknown key in the file is an error that names it, so a typo never silently keeps a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

MIB = 1024 * 1024


def _default_workers() -> int:
    return os.cpu_count() or 1


class ServiceSettings(BaseSettings):
    """Everything the reward service can be told. Build one per app; nothing is global."""

    model_config = SettingsConfigDict(env_prefix="MENTOR_", extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default_factory=_default_workers, ge=1, le=256, description="scoring processes")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=16 * MIB, ge=1024)
    max_items: int = Field(default=4096, ge=1)
    max_json_depth: int = Field(default=64, ge=4, description="nesting limit inside items and tool arguments")
    item_timeout_s: float = Field(default=10.0, gt=0)
    # A chunk of n items gets item_timeout_s + n * chunk_item_budget_s before it is split and retried
    # item by item; typical items take about a millisecond, so this is a generous backstop.
    chunk_item_budget_s: float = Field(default=0.25, gt=0)
    tool_timeout_s: float = Field(default=2.0, gt=0)
    # Per-field bounds, checked cheaply (a length, a count) before any work proportional to the
    # request's size runs on the event loop or in a worker; each refusal is a 413 naming the field.
    max_completion_chars: int = Field(default=1_000_000, ge=1, description="characters of one completion")
    max_messages_per_completion: int = Field(default=1024, ge=1, description="messages of a chat completion")
    max_calls_per_completion: int = Field(default=256, ge=1, description="tool calls of one chat completion")
    max_tools_per_request: int = Field(default=256, ge=1, description="inline tool schemas of one request")
    max_schema_bytes: int = Field(default=1 * MIB, ge=1024, description="inline tools/spec, as JSON")
    max_run_id_chars: int = Field(default=256, ge=1)
    max_tool_request_bytes: int = Field(default=64 * 1024, ge=1024, description="body of /v1/tools/execute")
    max_record_page_bytes: int = Field(default=8 * MIB, ge=64 * 1024, description="one /v1/records response")
    # Scoring processes run this much nicer than the API process, so that on a saturated machine
    # the event loop (and /healthz) is scheduled first; 0 gives them equal weight.
    worker_nice: int = Field(default=5, ge=0, le=19)
    openrlhf_preset: str = "mentor"
    config_file: Path | None = None
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    toolsets: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    record_backend: Literal["none", "sqlite", "jsonl", "postgres"] = "none"
    record_path: Path | None = None
    # One PostgreSQL table for every replica (`postgresql://...`); setting it alone chooses the backend.
    record_url: SecretStr | None = None
    record_flush_interval_s: float = Field(default=0.5, gt=0)
    # A record file that cannot be opened (corrupt) never keeps scoring from starting: it is moved
    # aside and a fresh one started ("move_aside"), or recording stays off ("refuse"); either way
    # /healthz reports recording as degraded, with the reason.
    record_on_corrupt: Literal["move_aside", "refuse"] = "move_aside"
    # SIGTERM ends the process within this time whatever its workers are doing: in-flight
    # requests get most of it, then the workers are killed and the record flushed.
    graceful_shutdown_s: float = Field(default=60.0, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    # For a service started by another program (an experiment runner): when that parent dies,
    # even by kill -9 or a time-out, the service goes too instead of living on as an orphan
    # (Linux; `mentor-reward serve` only).
    exit_with_parent: bool = False

    # ------------------------------------------------------------------ parsing
    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        # `MENTOR_API_KEYS=k1,k2` is friendlier than a JSON list in an environment variable.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _non_empty_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not key.get_secret_value() for key in value):
            raise ValueError("an API key must not be empty")
        return value

    @model_validator(mode="after")
    def _check_presets_and_files(self) -> ServiceSettings:
        # Imported here so that reading settings (e.g. for `--help`) does not load the engine.
        from ..scoring import RewardSpec, ScoringConfigError, preset_names

        builtin = set(preset_names())
        for name, spec in self.presets.items():
            if name in builtin:
                raise ValueError(f"presets.{name}: a built-in preset cannot be redefined")
            try:
                RewardSpec.from_dict({**spec, "name": name})
            except ScoringConfigError as exc:
                raise ValueError(f"presets.{name}.{exc.param or ''}: {exc}") from exc
        for path in self.toolsets:
            if not path.is_file():
                raise ValueError(f"toolsets: no such file {str(path)!r}")
        url = self.record_url.get_secret_value() if self.record_url is not None else None
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("record_url: a PostgreSQL URL starts with postgresql://")
        if url is not None and self.record_backend == "none":
            self.record_backend = "postgres"
        if self.record_backend == "postgres" and url is None:
            raise ValueError("record_url: record_backend=postgres needs a postgresql:// URL")
        if url is not None and self.record_backend != "postgres":
            raise ValueError(f"record_url: set for record_backend={self.record_backend}, which writes a file")
        if self.record_backend in ("sqlite", "jsonl") and self.record_path is None:
            suffix = "jsonl" if self.record_backend == "jsonl" else "sqlite3"
            self.record_path = Path(f"mentor_records.{suffix}")
        return self

    # ------------------------------------------------------------------ helpers
    def api_key_values(self) -> list[str]:
        return [key.get_secret_value() for key in self.api_keys]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file's path may itself come from the constructor or the environment.
        path = init_settings().get("config_file") or env_settings().get("config_file")
        return (init_settings, env_settings, _YamlFileSource(settings_cls, path))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the service YAML file; relative paths inside it are relative to the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Any) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path:
            self._data = self._load(Path(path))

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"config_file: cannot read {str(path)!r}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"config_file: {str(path)!r} is not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"config_file: {str(path)!r} must hold a mapping of settings")
        base = path.resolve().parent
        for key in ("record_path",):
            if isinstance(data.get(key), str):
                data[key] = str(base / data[key])
        if isinstance(data.get("toolsets"), list):
            data["toolsets"] = [str(base / p) if isinstance(p, str) else p for p in data["toolsets"]]
        return data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)
