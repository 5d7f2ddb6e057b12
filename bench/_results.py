"""Write a benchmark's numbers into its own section of bench/RESULTS.md.

Each benchmark owns one section, delimited by HTML comments, so several benchmarks can
update the file without clobbering each other. The section records the command, the
machine and the date next to the numbers.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def write_section(name: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section `name` of bench/RESULTS.md with `body`."""
    command = command or "python " + " ".join(sys.argv)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"- command: `{command}`\n- machine: {machine_description()}\n- date: {stamp}\n\n"
        f"{body.rstrip()}\n<!-- /bench:{name} -->\n"
    )
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else "# Benchmark results\n\nEvery number here was printed by the script named in its section.\n\n"
    )
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RESULTS.write_text(text)
