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


#: On a phone, the page's own content must start this close to the top (the nav is one bar).
PHONE_CONTENT_TOP = 80

LAYOUT = """() => {
  const main = document.querySelector("main.main");
  const nav = document.querySelector("nav.nav");
  const current = document.querySelector(".nav [aria-current='page']");
  const box = current && current.getBoundingClientRect();
  return {
    top: main ? main.getBoundingClientRect().top + window.scrollY : 0,
    nav: nav ? nav.getBoundingClientRect().height : 0,
    current: box ? [box.left, box.right] : null,
    width: window.innerWidth,
    page: document.documentElement.scrollWidth,
  };
}"""


NAV_POSITION = """(value) => {
  for (const nav of document.querySelectorAll("nav.nav")) nav.style.position = value;
}"""


def check_phone_layout(page: Any, name: str) -> None:
    """At 390 px: the nav is one compact bar, the content starts right below it, the page is
    no wider than the screen, and the current section is scrolled into view in the bar."""
    layout = page.evaluate(LAYOUT)
    assert layout["top"] <= PHONE_CONTENT_TOP, (name, layout)
    assert layout["page"] <= layout["width"], (name, layout)
    if layout["current"] is not None:
        left, right = layout["current"]
        assert left >= 0 and right <= layout["width"], (name, layout)


def shoot(page: Any, name: str) -> list[Path]:
    """Full-page screenshots at 1280 and 390 px wide (tests/dashboard/artifacts/NAME-WIDTH.png);
    at 390 px the layout is checked too (check_phone_layout)."""
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
        if label == "phone":
            check_phone_layout(page, name)
        path = ARTIFACTS / f"{name}-{label}.png"
        # The phone's bar is sticky: in a full-page shot it would be drawn where the page is
        # scrolled to (an email frame), so it is shot in its place at the top. (Set through the
        # CSSOM, which the page's style-src policy allows; an injected stylesheet it refuses.)
        page.evaluate(NAV_POSITION, "static")
        page.screenshot(path=str(path), full_page=True)
        page.evaluate(NAV_POSITION, "")
        out.append(path)
    page.set_viewport_size(original)
    return out


def run_due(dd: Any) -> None:
    """dd.run_due() on another thread: once Playwright's sync API has started (a session-wide
    browser), the tests' thread has a running event loop, where the sync facade refuses to run."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(dd.run_due).result()
