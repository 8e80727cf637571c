"""Helpers of the dashboard tests: uvicorn in a thread, signing in, screenshots."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("DRIPDROP_CHROMIUM", "/usr/bin/chromium")
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving ``app`` in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def sign_in(page: Any, server: Server, key: str) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server.url) + r"/(\?.*)?$"))


def shoot(page: Any, name: str) -> list[Path]:
    """Full-page screenshots at 1280 and 390 px wide (tests/dashboard/artifacts/NAME-WIDTH.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = []
    original = page.viewport_size
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        # Chrome does not paint cross-origin frames (the sandboxed email preview) while they
        # are off screen: bring each into view once so the full-page shot shows it.
        for frame in page.locator("iframe").all():
            frame.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
        page.wait_for_timeout(300)
        path = ARTIFACTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        out.append(path)
    page.set_viewport_size(original)
    return out


def run_due(dd: Any) -> None:
    """dd.run_due() on another thread: once Playwright's sync API has started (a session-wide
    browser), the tests' thread has a running event loop, where the sync facade refuses to run."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(dd.run_due).result()
