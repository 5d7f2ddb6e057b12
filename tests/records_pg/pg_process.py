"""A real PostgreSQL server for tests: initdb into a fresh folder, one postmaster on a free port.

The Debian `postgresql` package provides the binaries (`make test` installs it when absent).
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user through
`setpriv`; either way `--pdeathsig KILL` ties the postmaster to the test process, so even a
killed pytest leaves no server behind (its backends exit when the postmaster goes). `stop()`
and `start()` restart it on the same port and data, which the reconnect tests use.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from service_process import free_port

INSTALL_HINT = "PostgreSQL server binaries not found: `make test` installs them (apt-get install -y postgresql)"


def find_bin_dir() -> Path:
    """The folder holding initdb and postgres: on PATH, else Debian's versioned folder (newest)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return Path(found[-1]).parent


class PostgresServer:
    """One throwaway PostgreSQL cluster; `url(db)` names a database on it."""

    def __init__(self) -> None:
        self.bin = find_bin_dir()
        # Under /tmp itself: pytest's own tmp folders are private to root, which the
        # `postgres` user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="mentor-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "mentor"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["--reuid=postgres", "--regid=postgres", "--init-groups"]
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"]
        )

    def _run(self, argv: list[str]) -> None:
        command = ["setpriv", *self._as, *argv] if self._as else argv
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 120.0) -> PostgresServer:
        """Start the server, or do nothing when it runs (a second postmaster would find the first's lock)."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "setpriv",
                *self._as,
                "--pdeathsig",
                "KILL",
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=60",
                # Durability against a machine crash is not what these tests check; fsync on a
                # shared, busy disk would only slow them.
                "-c",
                "fsync=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def stop(self, timeout_s: float = 60.0) -> None:
        """A fast shutdown (SIGINT): open connections are cut, as in a restart or fail-over."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")[-5000:]
        return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def count_rows(url: str, where: str = "") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM score_records {where}").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])
