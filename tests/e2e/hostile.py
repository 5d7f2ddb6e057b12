"""Hostile inputs and process accounting for the end-to-end tests (importable by service workers).

`burn` is an operator tool that cannot be interrupted: one big-integer power, in C, holding
the GIL for minutes, like the judge bombs a model can write. `HostileServices` starts services
that know it (toolset `hostile`), and `stuck_score_body()` is a `/v1/score` body whose one item
makes the engine execute it (the `tool_results` component), so scoring that item never ends by
itself. `session_processes(sid)` lists the processes of a session (a `ServiceProcess` starts
one per service), which still finds workers whose parent died, since an orphan keeps its
session.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from service_process import ServiceProcess, free_port, service_env, session_processes

HERE = Path(__file__).resolve().parent

JUDGE_BOMB = r"\boxed{(99999^{99999})^{99}}"
"""An answer that passes the judge's size guard and asks for a ~50-million-digit power."""


def burn(digits: int) -> int:
    """Compute a large power of 99999 and return its bit length.

    Args:
        digits: the exponent (about 5 decimal digits of result per unit).
    """
    return int(pow(99999, digits).bit_length())


STUCK = '<tool_call>{"name": "burn", "arguments": {"digits": 100000000}}</tool_call>\\boxed{5}<|im_end|>'
"""A completion the engine cannot finish scoring: executing its tool call runs `burn` for minutes."""


def stuck_score_body(completion: str = STUCK) -> dict[str, Any]:
    """A `/v1/score` body with one item whose tool call the engine executes (toolset `hostile`)."""
    reference = {"calls": [{"name": "burn", "arguments": {"digits": 1}, "result": 17}], "answer": "5"}
    return {"preset": "flexible", "toolset": "hostile", "items": [{"completion": completion, "reference": reference}]}


class HostileServices:
    """Starts services (2 workers by default) that also know the `burn` tool; `close()` stops
    them and kills anything still in their sessions."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[ServiceProcess] = []
        self.tools = directory / "hostile_tools.json"
        schema = {"type": "object", "properties": {"digits": {"type": "integer"}}, "required": ["digits"]}
        tool = {"type": "function", "function": {"name": "burn", "description": "", "parameters": schema}}
        toolset = {"name": "hostile", "tools": [tool], "implementations": {"burn": "hostile:burn"}}
        self.tools.write_text(json.dumps({"toolsets": [toolset]}))

    def start(self, **settings: Any) -> ServiceProcess:
        settings.setdefault("workers", "2")
        settings.setdefault("toolsets", str(self.tools))
        env = service_env(**settings)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(HERE)])  # for `hostile:burn`
        service = ServiceProcess(free_port(), env, self.directory / f"service-{len(self.started)}.log")
        self.started.append(service)
        return service.start(timeout_s=180)

    def close(self) -> None:
        for service in self.started:
            service.stop()
            if service.proc is not None:
                for pid in session_processes(service.proc.pid):
                    os.kill(pid, signal.SIGKILL)


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
