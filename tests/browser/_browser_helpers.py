"""What the browser tests share besides fixtures (a module of its own: test files import it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.sync_api import Page


@dataclass
class PageWatch:
    """What a page did besides drawing: console errors, uncaught exceptions, blocked requests."""

    page: Page
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.blocked == [], f"the page reached outside the service: {self.blocked}"
        assert self.errors == [], f"the page logged errors: {self.errors}"
