"""The web app against a real DripDrop schema, through Starlette's TestClient (in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dripdrop.web import create_app


@pytest.fixture
def app(dd) -> Any:
    return create_app(dd)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin(dd) -> dict[str, str]:
    """Authorization headers of a global admin key."""
    key = dd.create_api_key("admin", scopes=["admin"])
    return {"Authorization": f"Bearer {key.secret}"}
