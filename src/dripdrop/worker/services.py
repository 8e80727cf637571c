"""What the engine needs from the outside while running executions: the guarded HTTP client,
pub/sub publishing, hook calls, external templates, retry settings."""

from __future__ import annotations

import random
import time
from typing import Any

from dripdrop.channels.base import AdapterInfo, DeliveryContext, Message
from dripdrop.records import Enrollment, from_row


class Services:
    """One per worker run. ``db`` is a :class:`~dripdrop.worker.db.Db`."""

    def __init__(self, rt: Any, db: Any, *, dry_run: bool = False) -> None:
        from dripdrop.net import create_http_client

        self.rt = rt
        self.db = db
        self.retry_base = rt.retry_base
        self.hook_timeout = rt.hook_timeout
        self.hook_pool = rt.hook_pool
        # Longest an execution that waits on hooks or the network may run before it is retried.
        self.execution_timeout = rt.execution_timeout
        # Deliveries that had to wait confirm their claim first (simulations send nothing).
        self.fence: Any = None
        if not dry_run:
            from dripdrop.worker.fence import DirectConnection, Fence

            # A fence of its own connection where the worker's calls each take a pooled one;
            # a worker on one connection (tests, savepoints) confirms on that connection.
            direct = DirectConnection(rt) if getattr(db, "pooled", False) else None
            self.fence = Fence(db, direct)
        self.rng = random.Random()
        self.dry_run = dry_run
        self.http = create_http_client(rt.policy)
        self.delivery_context = DeliveryContext(
            http=self.http,
            publish=self.publish,
            outbox=rt.outbox,
            clock=rt.clock,
            extras={"bus": rt.bus, "schema": rt.schema},
        )
        # External templates are cached on the runtime, so they outlive one run_due().
        self._external: dict[str, tuple[float, Any]] = rt.external_templates
        self.overrides: dict[str, Any] = {}  # hook values fixed by a simulation

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.fence is not None:
            await self.fence.aclose()
        close = getattr(self.db, "close", None)
        if close is not None:
            close()

    def enrollment_record(self, row: Any) -> Enrollment:
        return from_row(Enrollment, row)

    async def publish(
        self, topic: str, event: str | None, payload: Any, message: Message, adapter: AdapterInfo
    ) -> Any:
        """PostgreSQL pub/sub: a row in the in-app inbox plus NOTIFY on the topic."""
        from dripdrop.engine.notifications import store_notification

        return await self.db.run(store_notification, topic, event, payload, message)

    async def call_http_hook(self, hook: Any, context: dict[str, Any]) -> Any:
        from dripdrop.hooks.http import call_http_hook

        if hook.key in self.overrides:
            return self.overrides[hook.key]
        result = await call_http_hook(self.rt, hook, context, self.http)
        return result.value

    async def fetch_external_template(self, url: str, ttl: float = 300.0) -> Any:
        """Fetch an external template through the guarded client; cached for ``ttl`` seconds."""
        from dripdrop.errors import PermanentError, TransientError
        from dripdrop.net import classify_http_error, guarded_request

        hit = self._external.get(url)
        if hit and time.monotonic() - hit[0] < ttl:
            return hit[1]
        try:
            response = await guarded_request(self.http, "GET", url)
        except (PermanentError, TransientError):
            raise
        except Exception as exc:
            raise classify_http_error(exc) from exc
        if response.status_code >= 400:
            raise classify_http_error(response)
        try:
            content: Any = response.json()
            if not isinstance(content, dict):
                content = response.text
        except ValueError:
            content = response.text
        self._external[url] = (time.monotonic(), content)
        return content
