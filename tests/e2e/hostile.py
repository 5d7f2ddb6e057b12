"""Hostile inputs and process accounting for the end-to-end tests (importable by service workers).

`burn` is an operator tool that cannot be interrupted: one big-integer power, in C, holding
the GIL for minutes, like the judge bombs a model can write. `session_processes(sid)` lists
the processes of a session (a `ServiceProcess` starts one per service), which still finds
workers whose parent died, since an orphan keeps its session.
"""

from __future__ import annotations

import os
from pathlib import Path

JUDGE_BOMB = r"\boxed{(99999^{99999})^{99}}"
"""An answer that passes the judge's size guard and asks for a ~50-million-digit power."""


def burn(digits: int) -> int:
    """Compute a large power of 99999 and return its bit length.

    Args:
        digits: the exponent (about 5 decimal digits of result per unit).
    """
    return int(pow(99999, digits).bit_length())


def session_processes(sid: int) -> dict[int, str]:
    """pid -> command line of every live (non-zombie) process whose session id is `sid`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start at the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state not in ("Z", "X"):
            found[int(entry.name)] = cmdline.strip()
    return found


def worker_pids(sid: int) -> list[int]:
    """The scoring workers of the service whose session is `sid` (children of its forkserver)."""
    processes = session_processes(sid)
    servers = [pid for pid, cmd in processes.items() if "multiprocessing.forkserver" in cmd and _ppid(pid) == sid]
    if not servers:
        return []
    return [pid for pid in processes if _ppid(pid) == servers[0]]


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def proc_available() -> bool:
    return os.path.isdir("/proc/self")
