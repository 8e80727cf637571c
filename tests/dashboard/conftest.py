"""The dashboard served by uvicorn on 127.0.0.1 against the real test database, driven by
Debian's Chromium through Playwright (Playwright's own browser download is not used)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import CHROMIUM, Server

from dripdrop.web import create_app


@pytest.fixture
def app(dd) -> Any:
    return create_app(dd)


@pytest.fixture
def server(app) -> Iterator[Server]:
    with Server(app) as s:
        yield s


@pytest.fixture
def admin_key(dd) -> str:
    return dd.create_api_key("dashboard", scopes=["admin"]).secret


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: while Playwright's sync API runs, this thread has a running
    event loop, and every later test calling the sync facade (outside tests/dashboard) would
    find it there."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    ctx.on("weberror", lambda e: errors.append(str(e.error)))
    ctx.csp_errors = errors  # type: ignore[attr-defined]
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context) -> Any:
    p = context.new_page()
    console: list[str] = []
    p.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    p.console_errors = console  # type: ignore[attr-defined]
    return p
