"""Browser tests: real headless Chromium (Debian's `chromium` package), driven by Playwright.

Playwright is only the driver: its own browser downloads are never used (`executable_path`
points at the system Chromium; `make test` installs it with apt-get when it is missing). Each
page is opened offline: every request that does not go to the service under test is aborted
and recorded, and the tests assert that there were none, so a page that needs a CDN fails.

Screenshots are kept as test artefacts in a pytest temporary folder; its path is printed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import BROWSER_KEY, PageWatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from service_process import ServiceProcess, free_port, service_env

try:
    from playwright.sync_api import Browser, ConsoleMessage, Playwright, Request, Route, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

CHROMIUM = os.environ.get("MENTOR_CHROMIUM", "/usr/bin/chromium")
"""The system Chromium (`apt-get install chromium`); MENTOR_CHROMIUM names another binary."""

PAGE_TIMEOUT_MS = 180_000
"""Generous on purpose: a busy 2-core machine can take many seconds to start a browser."""


# Module scope, not session: Playwright's sync API runs its event loop in this thread while the
# driver is open, and every later test calling asyncio.run() would fail with "cannot be called
# from a running event loop". Closing the driver after each module hands the thread back.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if sync_playwright is None:
        pytest.fail("the browser tests need Playwright (the dev extra: pip install -e '.[dev]')")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests drive the system Chromium "
            "(`make browser`, i.e. `apt-get install -y chromium`; or set MENTOR_CHROMIUM)"
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    # Chromium refuses to run as root with its sandbox; a container's small /dev/shm would crash it.
    args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield chromium
    chromium.close()


_ARTEFACTS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """The folder screenshots are kept in; its path and files are printed at the end of the run."""
    folder = tmp_path_factory.mktemp("browser-artefacts")
    pytestconfig.stash[_ARTEFACTS] = folder
    return folder


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    folder = config.stash.get(_ARTEFACTS, None)
    if folder is not None:
        terminalreporter.write_sep("-", "browser test artefacts")
        for path in sorted(folder.iterdir()):
            terminalreporter.write_line(str(path))


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    """`open_page(allowed)` -> PageWatch: a fresh page that can reach only `allowed` (the
    service's base URL, and everything under it; or one file's URL) and `data:` URLs."""
    contexts = []

    def open_(allowed: str) -> PageWatch:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        watch = PageWatch(page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watch.errors.append(f"{message.text} @ {message.location}")

        def route(route: Route, request: Request) -> None:
            url = request.url
            if url.startswith("data:") or url == allowed or url.startswith(allowed.rstrip("/") + "/"):
                route.continue_()
            else:
                watch.blocked.append(url)
                route.abort()

        page.on("console", on_console)
        page.on("pageerror", lambda exc: watch.errors.append(f"uncaught: {exc}"))
        context.route("**/*", route)
        return watch

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def recording_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A real `mentor-reward serve` (uvicorn) with recording on, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("service")
    env = service_env(workers=1, record_backend="sqlite", record_path=str(folder / "records.sqlite3"))
    process = ServiceProcess(free_port(), env, folder / "service.log").start(timeout_s=300)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A real `mentor-reward serve` with recording on and the API key `BROWSER_KEY`."""
    folder = tmp_path_factory.mktemp("keyed-service")
    env = service_env(
        workers=1, record_backend="sqlite", record_path=str(folder / "records.sqlite3"), api_keys=BROWSER_KEY
    )
    process = ServiceProcess(free_port(), env, folder / "service.log").start(timeout_s=300)
    yield process
    process.stop()
