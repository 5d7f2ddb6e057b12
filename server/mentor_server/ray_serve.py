"""The reward service as a Ray Serve deployment, on the Ray cluster a trainer already runs.

verl, OpenRLHF and NeMo RL run on Ray; this puts the reward service on that cluster's spare
CPUs instead of beside it. The deployment's ingress is the service's own FastAPI app, built by
`create_app` inside each replica (so each replica runs its lifespan: its own scoring pool and
record store, flushed when Serve stops the replica), and Serve's proxy balances requests over
the replicas, scaling them on ongoing requests between `min_replicas` and `max_replicas`.
Clients and trainer adapters talk to the proxy's URL exactly as to `mentor-reward serve`.

    mentor-reward serve --ray --address auto --config service.yaml --min-replicas 1 --max-replicas 8
    serve run mentor_server.ray_serve:app_builder replicas=2 workers=1     # Ray's own CLI

The settings are read once, where the command runs, and shipped to every replica as values;
files they name (toolsets) must exist at the same path on every node. Each replica reserves
`workers` CPUs from Ray (its scoring processes are not Ray tasks), so Ray places replicas
where the cores are. Records: give the replicas one PostgreSQL store (`record_url`); a SQLite
path would be one file per node.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from typing import TYPE_CHECKING, Any

from .api.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application

APP_NAME = "mentor-reward"
DEPLOYMENT_NAME = "MentorReward"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RayServeOptions:
    """How many replicas, and when to add one. `replicas` fixes the count; otherwise Serve autoscales."""

    replicas: int | None = None
    min_replicas: int = 1
    max_replicas: int = 4
    # Serve adds a replica when the average replica holds more requests than this. A scoring
    # request is a whole batch that already keeps the replica's workers busy, so the target is low.
    target_ongoing_requests: float = 2.0
    max_ongoing_requests: int = 16
    # CPUs each replica reserves from Ray; None: the replica's scoring workers.
    replica_cpus: float | None = None

    def __post_init__(self) -> None:
        if self.replicas is not None and self.replicas < 1:
            raise ValueError("replicas must be >= 1")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError("need 0 <= min_replicas <= max_replicas and max_replicas >= 1")
        if self.target_ongoing_requests <= 0 or self.max_ongoing_requests < 1:
            raise ValueError("target_ongoing_requests must be > 0 and max_ongoing_requests >= 1")

    def deployment_options(self, settings: ServiceSettings) -> dict[str, Any]:
        cpus = float(settings.workers) if self.replica_cpus is None else self.replica_cpus
        options: dict[str, Any] = {
            "name": DEPLOYMENT_NAME,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": cpus},
            # A replica stops like `mentor-reward serve` on SIGTERM: requests drain, records flush.
            "graceful_shutdown_timeout_s": settings.graceful_shutdown_s,
        }
        if self.replicas is not None:
            options["num_replicas"] = self.replicas
        else:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        return options


def _serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:
        raise ImportError("the Ray Serve deployment needs Ray: pip install 'mentor-reward[ray]'") from exc
    return serve


def _shipped(settings: ServiceSettings) -> dict[str, Any]:
    """The settings as values for the replicas: the file they came from is not read again there."""
    values = settings.model_dump()
    values["config_file"] = None
    return values


def build_application(settings: ServiceSettings, options: RayServeOptions | None = None) -> Application:
    """The bound Serve application: one deployment whose ingress is the service's FastAPI app."""
    serve = _serve()
    options = options or RayServeOptions()
    values = _shipped(settings)

    def build_app() -> FastAPI:
        # Runs in each replica: its own app, pool and record store, as in one `mentor-reward serve`.
        from .api.app import create_app

        return create_app(ServiceSettings(**values))

    ingress = serve.ingress(build_app)()
    application: Application = serve.deployment(ingress, **options.deployment_options(settings)).bind()
    return application


def app_builder(args: dict[str, str]) -> Application:
    """For `serve run mentor_server.ray_serve:app_builder key=value ...`.

    Keys: any `RayServeOptions` field (`replicas=2`, `max_replicas=8`); any other key is a service
    setting (`workers=1`, `config_file=service.yaml`), over the `MENTOR_*` environment.
    """
    fields = {field.name: field.type for field in dataclasses.fields(RayServeOptions)}
    option_values: dict[str, Any] = {}
    settings_values: dict[str, Any] = {}
    for key, value in args.items():
        if key in fields:
            option_values[key] = float(value) if key in ("target_ongoing_requests", "replica_cpus") else int(value)
        else:
            settings_values[key] = value
    return build_application(ServiceSettings(**settings_values), RayServeOptions(**option_values))


def run_on_ray(settings: ServiceSettings, options: RayServeOptions, *, address: str = "auto") -> None:
    """Deploy on the cluster at `address` and block until SIGINT/SIGTERM, then delete the app.

    Serve's HTTP proxy listens on `settings.host:settings.port` when this starts Serve; a
    cluster whose Serve already runs keeps its own proxy address.
    """
    import ray

    serve = _serve()
    ray.init(address=address, namespace="serve", log_to_driver=False)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(build_application(settings, options), name=APP_NAME, route_prefix="/", blocking=False)
        print(f"MENTOR reward service on Ray Serve: http://{settings.host}:{settings.port}", flush=True)
        stop.wait()
    finally:
        # Replicas drain and flush their records (graceful_shutdown_timeout_s) before this returns.
        serve.delete(APP_NAME)
        if not serve.status().applications:
            # Nothing else is served: the proxy goes too, so that the next start binds its own port.
            serve.shutdown()
        ray.shutdown()
