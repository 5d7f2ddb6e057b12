"""The HTTP reward service: FastAPI app factory, settings, routes, guards, metrics and the scoring pool.

    from mentor_server.api import ServiceSettings, create_app
    app = create_app(ServiceSettings(api_keys=["secret"], workers=4))

Run it with `mentor-reward serve` (see `cli_commands`) or
`uvicorn --factory mentor_server.api.app:create_app_from_env`.

The names above are imported on first use, not with the package: the scoring workers
(`mentor_server.api.worker`, also used by the client's in-process backend) and the CLI's other
commands (`mentor-reward index build`, `score`, `report`) live under this package and must not pay
FastAPI's import, about a second of CPU, every time they start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app, create_app_from_env, run_server
    from .settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "create_app_from_env", "run_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "create_app_from_env", "run_server"):
        from . import app

        return getattr(app, name)
    if name == "ServiceSettings":
        from .settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
