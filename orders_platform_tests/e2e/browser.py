"""Headless Chromium (Debian's package, never a downloaded build) driven by Playwright.

The browser tests click the Dagster UI as a person does: roles and visible text. Each test
saves a screenshot into `screenshot_dir()` (SCREENSHOT_DIR, default
artifacts/screenshots/, git-ignored; `make screenshots` points it at docs/screenshots/).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from orders_platform_tests.support import REPO_ROOT

CHROMIUM = os.environ.get("ORDERS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
# The UI polls on its own, but a reload is what a person does when waiting on a page.
RELOAD_EVERY_S = 3.0


def chromium_path() -> str | None:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return shutil.which("chromium")


def screenshot_dir() -> Path:
    path = Path(os.environ.get("SCREENSHOT_DIR", REPO_ROOT / "artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def body_text(page) -> str:
    return page.locator("body").inner_text()


def wait_for_page_text(
    page,
    pattern: str | re.Pattern,
    timeout_s: float,
    *,
    reload: bool = True,
    fail_on: str | re.Pattern | None = None,
) -> str:
    """Until the page's text matches `pattern` (reloading now and then); the text.

    `fail_on` stops early when the page shows it (e.g. a failed run), so the assertion
    message carries what the UI shows instead of a timeout."""
    wanted = re.compile(pattern) if isinstance(pattern, str) else pattern
    failed = re.compile(fail_on) if isinstance(fail_on, str) else fail_on
    deadline = time.monotonic() + timeout_s
    last_reload = time.monotonic()
    text = ""
    while time.monotonic() < deadline:
        text = body_text(page)
        if wanted.search(text):
            return text
        if failed is not None and failed.search(text):
            raise AssertionError(f"page shows {failed.pattern!r}:\n{text[:3000]}")
        if reload and time.monotonic() - last_reload > RELOAD_EVERY_S:
            page.reload()
            last_reload = time.monotonic()
        page.wait_for_timeout(500)
    raise AssertionError(f"{wanted.pattern!r} not shown after {timeout_s:.0f} s:\n{text[:3000]}")


def skip_community_dialog(page) -> None:
    """A fresh instance greets a visitor with a newsletter dialog, at a moment of its own
    choosing: whenever it shows up in front of a click, skip it as a person would."""
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )
