"""The HTTP reward service: FastAPI app factory, settings, routes, guards, metrics and the scoring pool.

    from mentor_server.api import ServiceSettings, create_app
    app = create_app(ServiceSettings(api_keys=["secret"], workers=4))

Run it with `mentor-reward serve` (see `cli_commands`) or
`uvicorn --factory mentor_server.api.app:create_app_from_env`.
"""

from .app import create_app, create_app_from_env, run_server
from .settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "create_app_from_env", "run_server"]
