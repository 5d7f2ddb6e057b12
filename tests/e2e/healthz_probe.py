"""Probe health endpoints from a process of its own and print the latencies as JSON.

    python healthz_probe.py SECONDS http://127.0.0.1:PORT/healthz [more URLs...]

Each round sends one `GET` to every URL in turn (a fresh connection each time, as a liveness
probe does), then sleeps 50 ms; after SECONDS it prints `{url: [seconds, ...]}`. A test that
drives load from its own threads runs this so that the probe's timings are not its own GIL
queue, and probes a baseline (an idle service) in the same rounds, so both see the same machine.
A URL that fails is recorded as `null` (the caller decides what a failure means).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from urllib.parse import urlsplit


def get(url: str, timeout_s: float = 60.0) -> bool:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s) as sock:
        sock.sendall(f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.startswith(b"HTTP/1.1 200")


def main() -> None:
    seconds = float(sys.argv[1])
    urls = sys.argv[2:]
    latencies: dict[str, list[float | None]] = {url: [] for url in urls}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for url in urls:
            start = time.perf_counter()
            try:
                ok = get(url)
            except OSError:
                ok = False
            latencies[url].append(time.perf_counter() - start if ok else None)
        time.sleep(0.05)
    print(json.dumps(latencies))


if __name__ == "__main__":
    main()
