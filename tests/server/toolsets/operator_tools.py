"""Stand-ins for tools an operator installs and names in a toolsets file (used by test_toolsets.py)."""

from __future__ import annotations

import threading

NOT_CALLABLE = 42

# The slow tool blocks on this event, so a test decides exactly when a timed-out call finishes.
release = threading.Event()
finished = threading.Event()


def word_count(text: str) -> int:
    """Count the words of a text.

    Args:
        text: The text.
    """
    return len(text.split())


def echo_upper(text: str) -> dict[str, str]:
    """Upper-case a text.

    Args:
        text: The text.
    """
    return {"upper": text.upper(), "original": text}


def slow(seconds: float) -> str:
    """Wait until the test releases the tool (or `seconds` pass), then answer.

    Args:
        seconds: The longest wait.
    """
    release.wait(seconds)
    finished.set()
    return "late"


def broken(**_: object) -> None:
    raise RuntimeError("the backend is down")


def exits(**_: object) -> None:
    raise SystemExit(3)


class Namespace:
    @staticmethod
    def shout(text: str) -> str:
        return text.upper() + "!"
