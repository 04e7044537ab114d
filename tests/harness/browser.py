"""Chromium from Debian, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os

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


def chromium_path() -> str:
    return os.environ.get("JHUB_AF_CHROMIUM", "/usr/bin/chromium")


def launch_chromium(playwright):
    """Launch headless Chromium from a started Playwright (async: await the result)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
