"""Fixtures for the PostgreSQL record store: one real server per test session, a fresh database per test.

The server is started by the tests themselves (see pg_process.py) and stopped at the end of
the session; a test that restarts it (`pg_server.stop()` / `.start()`) leaves it running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_process import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    if pg_server.proc is None or pg_server.proc.poll() is not None:
        pg_server.start()  # a test that stopped it and failed before starting it again
    return pg_server.new_database()
