"""deploy/k8s/, checked against the Kubernetes schemas and against the project (no cluster runs here).

Every manifest is validated in strict mode (an unknown field is an error, not ignored) with
kubernetes-validate, which ships the schemas and needs no network, for the oldest and the newest
Kubernetes version the test names. The rest are facts that a schema cannot see: the probes and the
Service reach the container's real port, the autoscaler and the disruption budget point at this
Deployment's pods, the API keys come from the Secret the kustomization creates, and every
environment variable is a real `ServiceSettings` field whose value the service accepts.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # the dev extra; never skipped: CI must validate the manifests
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
# An old release still common on managed clusters and the newest the package ships.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


MANIFESTS: dict[str, dict[str, Any]] = {
    f"{path.name}:{doc['kind']}": doc
    for path in sorted(K8S.glob("*.yaml"))
    if path.name != "kustomization.yaml"
    for doc in _documents(path)
}


def _one(kind: str) -> dict[str, Any]:
    found = [doc for doc in MANIFESTS.values() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


DEPLOYMENT = _one("Deployment")
POD: dict[str, Any] = DEPLOYMENT["spec"]["template"]
POD_LABELS: dict[str, str] = POD["metadata"]["labels"]
CONTAINER: dict[str, Any] = POD["spec"]["containers"][0]
ENV: dict[str, dict[str, Any]] = {entry["name"]: entry for entry in CONTAINER["env"]}


def _container_port(port: int | str) -> int:
    """A probe's or Service's port, by number or by name, as the container's port number."""
    for declared in CONTAINER["ports"]:
        if port in (declared["containerPort"], declared.get("name")):
            number: int = declared["containerPort"]
            return number
    raise AssertionError(f"port {port!r} is not a port of container {CONTAINER['name']!r}")


def _selects_pods(selector: dict[str, Any]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are checked here"
    labels: dict[str, str] = selector["matchLabels"]
    return bool(labels) and all(POD_LABELS.get(key) == value for key, value in labels.items())


# ---------------------------------------------------------------------------- schemas
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_validates_strictly(name: str, version: str) -> None:
    kubernetes_validate.validate(MANIFESTS[name], version, strict=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("readinesProbe", {}), ("ports", [{"name": "http"}]), ("resources", {"limits": {"cpu": ["2"]}})],
    ids=["unknown-field", "missing-container-port", "wrong-type"],
)
def test_validation_rejects_a_broken_container(field: str, value: Any) -> None:
    """The strict validation above is not a formality: a typo'd, missing or mistyped field fails it."""
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["template"]["spec"]["containers"][0][field] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_and_the_image() -> None:
    assert KUSTOMIZATION["kind"] == "Kustomization"
    listed = KUSTOMIZATION["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk
    assert [image["name"] for image in KUSTOMIZATION["images"]] == [CONTAINER["image"]]


# ---------------------------------------------------------------------------- the pod
def test_command_is_the_real_serve_command_on_the_container_port() -> None:
    from mentor_server.cli import build_parser

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    command = CONTAINER["command"]
    assert scripts[command[0]] == "mentor_server.cli:main"
    args = build_parser().parse_args(command[1:])
    assert args.func.__name__ == "_serve"
    assert args.host == "0.0.0.0"  # reachable from the Service, not only the pod's loopback
    assert _container_port("http") == args.port


def test_probes_reach_health_and_readiness_on_the_container_port() -> None:
    from mentor_server.api.app import _STARTUP_WAIT_S
    from mentor_server.api.guards import OPEN_PATHS

    probes = {kind: CONTAINER[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    port = _container_port("http")
    for probe in probes.values():
        assert _container_port(probe["port"]) == port
        assert probe["path"] in OPEN_PATHS  # the kubelet sends no API key
    # The socket opens only when the workers are up (or the service's own start-up wait ends):
    # liveness must not count before then.
    startup = CONTAINER["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= _STARTUP_WAIT_S


def test_api_keys_come_from_the_secret() -> None:
    reference = ENV["MENTOR_API_KEYS"]
    assert "value" not in reference
    secret_ref = reference["valueFrom"]["secretKeyRef"]
    secret = _one("Secret")
    assert secret_ref["name"] == secret["metadata"]["name"]
    assert secret_ref["key"] in secret["stringData"]
    assert secret_ref.get("optional") is not True  # no key, no pod: never an open service by accident


def test_environment_is_valid_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from mentor_server.api.settings import ServiceSettings

    prefix = ServiceSettings.model_config["env_prefix"]
    secret = _one("Secret")["stringData"]
    values = {
        name: entry["value"] if "value" in entry else secret[entry["valueFrom"]["secretKeyRef"]["key"]]
        for name, entry in ENV.items()
    }
    for name in [n for n in os.environ if n.startswith(prefix)]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        assert name.startswith(prefix), name
        assert name.removeprefix(prefix).lower() in ServiceSettings.model_fields, f"{name} is no setting"
        monkeypatch.setenv(name, value)
    settings = ServiceSettings()
    assert settings.api_key_values() == [secret["api-keys"]]
    assert str(settings.workers) == values["MENTOR_WORKERS"]
    assert settings.record_backend == values["MENTOR_RECORD_BACKEND"]
    # SIGKILL comes after the service's own shutdown budget, not in the middle of it.
    assert POD["spec"]["terminationGracePeriodSeconds"] > settings.graceful_shutdown_s


def _cpu(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_scoring_processes_match_the_cpu_given() -> None:
    """os.cpu_count() sees the node, not the pod: the workers are set, and fit the CPU limit."""
    workers = int(ENV["MENTOR_WORKERS"]["value"])
    resources = CONTAINER["resources"]
    assert _cpu(resources["requests"]["cpu"]) <= workers <= _cpu(resources["limits"]["cpu"])
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])


def test_runs_unprivileged_on_a_read_only_root() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile.reward").read_text(encoding="utf-8")
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile)
    assert uid is not None
    pod_security = POD["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == int(uid.group(1))
    security = CONTAINER["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    # Where the service writes: the forkserver's socket under /tmp, and the record (whose
    # directory the image prepares) when one is on.
    mounts = {mount["mountPath"] for mount in CONTAINER["volumeMounts"] if not mount.get("readOnly")}
    assert "/tmp" in mounts
    assert "mkdir -p /records" in dockerfile and "/records" in mounts
    if ENV["MENTOR_RECORD_BACKEND"]["value"] != "none":
        record_path = Path(ENV["MENTOR_RECORD_PATH"]["value"])
        assert any(record_path.is_relative_to(mount) for mount in mounts)


# ---------------------------------------------------------------------------- the objects around it
def test_selectors_pick_this_deployments_pods() -> None:
    assert _selects_pods(DEPLOYMENT["spec"]["selector"])
    assert _selects_pods(_one("PodDisruptionBudget")["spec"]["selector"])
    for constraint in POD["spec"].get("topologySpreadConstraints", []):
        assert _selects_pods(constraint["labelSelector"])
    service_selector = _one("Service")["spec"]["selector"]
    assert _selects_pods({"matchLabels": service_selector})


def test_service_targets_the_container_port() -> None:
    ports = _one("Service")["spec"]["ports"]
    assert [_container_port(port["targetPort"]) for port in ports] == [_container_port("http")]


def test_autoscaler_scales_this_deployment_on_cpu() -> None:
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        DEPLOYMENT["apiVersion"],
        "Deployment",
        DEPLOYMENT["metadata"]["name"],
    )
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    # Utilization is a share of the request: without one the autoscaler has nothing to scale on.
    assert "cpu" in CONTAINER["resources"]["requests"]
    # The autoscaler owns the replica count; a fixed one would be reset by every apply.
    assert "replicas" not in DEPLOYMENT["spec"]
    # A disruption budget that allows one pod down still leaves one serving.
    assert hpa["spec"]["minReplicas"] >= 2
    assert _one("PodDisruptionBudget")["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
