"""Headless Debian Chromium for the HTML pages (leaderboard, review), driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Screenshots the tests save for people to look at.
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def browser_context(**options) -> Iterator:
    """A fresh browser context (its own localStorage); fails in CI, skips elsewhere, without Chromium."""
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium (.ci/run installs it)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=_ARGS, headless=True)
        try:
            yield browser.new_context(**options)
        finally:
            browser.close()
