"""How the toolsets package reports bad configuration without importing the engine at load time.

Configuration errors are `mentor_server.scoring.types.ScoringConfigError`, shared with the
engine. The engine itself imports this package (`from ..toolsets import Toolset`), so a
module-level import of `mentor_server.scoring` here would run the engine's `__init__` while
this package is half-initialised and fail with a circular import whenever `toolsets` is
imported first. The error class is therefore looked up when an error is raised, not before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mentor_server.scoring.types import ScoringConfigError


def config_error(message: str, param: str | None) -> ScoringConfigError:
    """Build (not raise) the shared configuration error; callers write `raise config_error(...)`."""
    from mentor_server.scoring.types import ScoringConfigError

    return ScoringConfigError(message, param=param)
