"""The docs' blocks that cannot run here are checked another way, each against what it names.

A block marked `not run` (tests/test_docs_blocks.py) needs a cluster, a registry, Docker or GPUs.
What can be checked without them is checked here: the names and paths in the commands exist in
the manifests, the compose file, the Dockerfiles, pyproject's extras and the Python modules; a
command's own sub-command that runs anywhere (the Secret's key generator) runs; Ray's `serve run`
arguments build the application they describe.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from doc_blocks import ROOT, block, shell_lines

K8S = ROOT / "deploy" / "k8s"


def _manifests() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(K8S.glob("*.yaml"))}


def test_image_block_names_what_the_manifests_use() -> None:
    build, push, edit = shell_lines(block("k8s-image").body)
    words = shlex.split(build)
    assert words[:2] == ["docker", "build"] and (ROOT / words[words.index("-f") + 1]).is_file()
    tag = words[words.index("-t") + 1]
    assert push == f"docker push {tag}"
    folder, _, kustomize = edit.partition(" && ")
    assert (ROOT / folder.removeprefix("cd ")) == K8S
    name, _, image = kustomize.removeprefix("kustomize edit set image ").partition("=")
    assert image == tag
    manifests = _manifests()
    assert [i["name"] for i in manifests["kustomization.yaml"]["images"]] == [name]
    (container,) = manifests["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == name


def test_secret_block_makes_the_secret_the_deployment_reads() -> None:
    (command,) = shell_lines(block("k8s-secret").body)
    words = shlex.split(command)
    assert words[:5] == ["kubectl", "create", "secret", "generic", "mentor-reward-api-keys"]
    key, _, value = words[5].removeprefix("--from-literal=").partition("=")
    generator = re.fullmatch(r"\$\(python -c '(.*)'\)", value)
    assert generator, value
    made = subprocess.run([sys.executable, "-c", generator.group(1)], capture_output=True, text=True, timeout=600)
    assert made.returncode == 0 and len(made.stdout.strip()) >= 32
    (container,) = _manifests()["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "MENTOR_API_KEYS"]
    assert refs == [{"name": words[4], "key": key}]


def test_apply_block_names_the_deployment() -> None:
    apply, status = shell_lines(block("k8s-apply").body)
    assert apply == f"kubectl apply -k {K8S.relative_to(ROOT)}"
    kind, name = status.removeprefix("kubectl rollout status ").split("/")
    deployment = _manifests()["deployment.yaml"]
    assert (deployment["kind"].lower(), deployment["metadata"]["name"]) == (kind, name)


def test_install_block_names_real_extras() -> None:
    (command,) = shell_lines(block("scale-install").body)
    extras = set(re.fullmatch(r"pip install 'mentor-reward\[([\w,]+)\]'", command).group(1).split(","))  # type: ignore[union-attr]
    extras.add(re.search(r"add '(\w+)'", block("scale-install").body).group(1))  # type: ignore[union-attr]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert extras == {"server", "ray", "postgres"}
    assert extras <= set(pyproject["project"]["optional-dependencies"])


@pytest.mark.slow
def test_serve_run_arguments_build_the_application() -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    (command,) = shell_lines(block("scale-serve-run").body)
    words = shlex.split(command)
    assert words[:2] == ["serve", "run"]
    module, _, builder = words[2].partition(":")
    args = dict(word.split("=", 1) for word in words[3:])
    probe = (
        f"from {module} import {builder}\n"
        f"app = {builder}({args!r})\n"
        "deployment = app._bound_deployment\n"  # no public accessor; Ray's own tests read it too
        "scaling = deployment._deployment_config.autoscaling_config\n"
        "print(scaling.min_replicas, scaling.max_replicas, deployment.ray_actor_options['num_cpus'])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    # workers=2: each replica reserves its two scoring processes' CPUs.
    assert result.stdout.split() == [args["min_replicas"], args["max_replicas"], "2.0"]


def test_verl_block_names_our_manager() -> None:
    (command,) = shell_lines(block("readme-verl").body)
    settings = dict(word.lstrip("+").split("=", 1) for word in shlex.split(command) if "=" in word)
    module = settings["reward.reward_manager.module.path"].removeprefix("pkg://")
    source = (ROOT / "client" / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")
    assert f"class {settings['reward.reward_manager.name']}" in source
    assert settings["reward.reward_manager.source"] == "importlib"


def test_compose_block_names_real_services_and_profiles() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    for command in shell_lines(block("readme-compose").body):
        words = shlex.split(command)
        assert words[:2] == ["docker", "compose"], command
        verb = next(i for i, word in enumerate(words) if word in ("up", "run"))
        service = next(word for word in words[verb + 1 :] if not word.startswith("-"))
        assert service in services, command
        if "--profile" in words:
            assert words[words.index("--profile") + 1] in services[service].get("profiles", []), command


@pytest.mark.parametrize("block_id", ["readme-make", "readme-demo"])
def test_make_blocks_are_valid_make_invocations(block_id: str) -> None:
    """`make -n` (print, run nothing) accepts each documented `make` line, variables included."""
    for command in shell_lines(block(block_id).body):
        words = shlex.split(command)
        if words[0] != "make":
            continue
        result = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "mentor-" in result.stdout or "pytest" in result.stdout, command
