"""Job functions for the pool's deadline tests, importable by the scoring processes.

`spin_or_echo` answers each item with the worker's pid, unless an item mentions `SPIN`: then
it computes one enormous power first, in C, holding the GIL, which nothing inside the
process can interrupt (the shape of a judge bomb), so only killing the process ends it.
"""

from __future__ import annotations

import os
from typing import Any


def spin_or_echo(job: dict[str, Any]) -> list[dict[str, Any]]:
    if "SPIN" in repr(job["items"]):
        pow(99999, 10**8)
    return [{"item": item, "pid": os.getpid()} for item in job["items"]]
