"""Helpers of the web tests."""

from __future__ import annotations

from typing import Any


def bearer(dd: Any, *scopes: str, tenant_key: str | None = None) -> dict[str, str]:
    """Authorization headers of a new key with these scopes."""
    key = dd.create_api_key("k", scopes=list(scopes), tenant_key=tenant_key)
    return {"Authorization": f"Bearer {key.secret}"}
