"""The public facades: :class:`DripDrop` (sync) and :class:`AsyncDripDrop` (asyncio).

Both are thin. Every operation is one plain function ``fn(runtime, connection, ...)`` in
``definitions/`` or ``engine/``; the sync face runs it in a transaction of the sync engine, the
async face through ``AsyncConnection.run_sync`` — the logic is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import signal
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from dripdrop.db.engine import make_async_engine, schema_options
from dripdrop.db.migrate import upgrade
from dripdrop.operations import DEFINITION_CHANGES, OPERATIONS
from dripdrop.records import RunSummary
from dripdrop.runtime import Runtime
from dripdrop.worker.sizing import BATCH_SIZE


def _host_connection(connection: Any, schema: str) -> Connection:
    """A host's Session or Connection, pointed at our schema, in the host's transaction."""
    if hasattr(connection, "connection") and not isinstance(connection, Connection):
        connection = connection.connection()  # a Session
    return connection.execution_options(**schema_options(schema))


def _install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT stop the loop gracefully (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


class _Base:
    _rt: Runtime

    def __init__(
        self,
        database_url: str | None = None,
        *,
        schema: str | None = None,
        encryption_key: str | None = None,
        clock: Callable[[], Any] | None = None,
        allow_private_network: bool | None = None,
        outbound_allowlist: tuple[str, ...] | list[str] = (),
        engine_options: dict[str, Any] | None = None,
        hook_timeout: float = 10.0,
        retry_base: float = 30.0,
        durable_outcomes: bool = False,
    ) -> None:
        self._rt = Runtime(
            database_url,
            schema=schema,
            encryption_key=encryption_key,
            clock=clock,
            allow_private_network=allow_private_network,
            outbound_allowlist=tuple(outbound_allowlist),
            engine_options=engine_options,
            hook_timeout=hook_timeout,
            retry_base=retry_base,
            durable_outcomes=durable_outcomes,
        )

    @property
    def schema(self) -> str:
        """The PostgreSQL schema this instance uses."""
        return self._rt.schema

    @property
    def scheduler(self) -> Any:
        """The Scheduler in use (PostgreSQL: the execution row is the job)."""
        from dripdrop.worker.scheduler import PostgresScheduler

        return PostgresScheduler(self._rt)

    @property
    def runtime(self) -> Runtime:
        """Internals for extensions (the worker, the dashboard)."""
        return self._rt

    def __repr__(self) -> str:
        return f"<{type(self).__name__} schema={self.schema!r}>"


class DripDrop(_Base):
    """The synchronous face of DripDrop. See API.md for every method."""

    def _call(self, fn: Callable[..., Any], *args: Any, connection: Any = None, **kw: Any) -> Any:
        if connection is not None:
            return fn(self._rt, _host_connection(connection, self.schema), *args, **kw)
        with self._rt.engine.begin() as conn:
            result = fn(self._rt, conn, *args, **kw)
        if fn.__name__ in DEFINITION_CHANGES:
            self._rt.defs.clear()
        return result

    def setup(self) -> None:
        """Create the schema and apply migrations (idempotent; safe to call on every start)."""
        upgrade(self._rt.engine, self.schema)

    def close(self) -> None:
        """Release connections."""
        self._rt.dispose()

    def __enter__(self) -> DripDrop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_due(
        self, *, batch_size: int = BATCH_SIZE, concurrency: int = 100, lanes: int = 2
    ) -> RunSummary:
        """Process everything due at ``clock()`` (including work that becomes due meanwhile).
        ``lanes`` batches are in flight at once; ``concurrency`` caps deliveries in flight."""
        from dripdrop.worker.db import ThreadDb
        from dripdrop.worker.runner import drain
        from dripdrop.worker.services import Services

        async def go() -> RunSummary:
            services = Services(self._rt, ThreadDb(self._rt))
            try:
                return await drain(
                    self._rt,
                    services.db,
                    services,
                    batch_size=batch_size,
                    concurrency=concurrency,
                    lanes=lanes,
                )
            finally:
                await services.aclose()

        return self._run_async(go)

    def run_worker(
        self, concurrency: int = 10, stop_event: threading.Event | None = None, **options: Any
    ) -> RunSummary:
        """Run the worker loop until ``stop_event`` is set (or SIGTERM/SIGINT in the main
        thread); in-flight deliveries finish or are released before it returns."""
        from dripdrop.worker.db import ThreadDb
        from dripdrop.worker.runner import work
        from dripdrop.worker.services import Services

        async def go() -> RunSummary:
            stop = asyncio.Event()
            _install_signal_handlers(stop)
            watcher = None
            if stop_event is not None:

                async def watch() -> None:
                    while not stop_event.is_set():
                        await asyncio.sleep(0.05)
                    stop.set()

                watcher = asyncio.create_task(watch())
            services = Services(self._rt, ThreadDb(self._rt))
            try:
                return await work(
                    self._rt, services.db, services, stop, concurrency=concurrency, **options
                )
            finally:
                if watcher:
                    watcher.cancel()
                await services.aclose()

        return self._run_async(go)

    def simulate(
        self,
        sequence_key: str,
        data: dict[str, Any] | None = None,
        events: list[Any] | None = None,
        until: Any = None,
        **options: Any,
    ) -> Any:
        """The timeline a subscriber with ``data`` would get, without sending or storing
        anything. ``events``: ``[(timedelta(days=2), "paid", {...}), ...]``."""
        from datetime import timedelta

        from dripdrop.engine.simulate import simulate

        return simulate(
            self._rt,
            sequence_key,
            data,
            events,
            until if until is not None else timedelta(days=30),
            **options,
        )

    def subscribe(self, topic: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Receive ``local`` pub/sub deliveries in process: ``callback(topic, event, payload)``.
        Returns a function that unsubscribes ("*" receives every topic)."""
        return self._rt.bus.subscribe(topic, callback)

    def test_http_hook(self, hook_id: Any, test_data: dict[str, Any] | None = None) -> Any:
        """Call an HTTP hook for real with ``test_data``; store and return the result."""
        from dripdrop.hooks.http import test_http_hook

        return self._run_async(test_http_hook, self._rt, hook_id, test_data)

    def _run_async(self, coro_fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro_fn(*args, **kw))
        raise RuntimeError(
            "DripDrop (sync) called inside a running event loop: use AsyncDripDrop there"
        )


class AsyncDripDrop(_Base):
    """The asyncio face of DripDrop: the same methods, as coroutines."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._aengine = make_async_engine(self._rt.database_url, self.schema)

    async def _call(
        self, fn: Callable[..., Any], *args: Any, connection: Any = None, **kw: Any
    ) -> Any:
        def run(sync_conn: Connection) -> Any:
            return fn(
                self._rt, sync_conn.execution_options(**schema_options(self.schema)), *args, **kw
            )

        if connection is not None:
            return await connection.run_sync(
                (lambda session: run(session.connection()))
                if hasattr(connection, "get_bind")
                else run
            )
        async with self._aengine.begin() as conn:
            result = await conn.run_sync(run)
        if fn.__name__ in DEFINITION_CHANGES:
            self._rt.defs.clear()
        return result

    async def run_due(self, *, batch_size: int = BATCH_SIZE, concurrency: int = 100) -> RunSummary:
        """Process everything due at ``clock()`` (including work that becomes due meanwhile)."""
        from dripdrop.worker.db import AsyncDb
        from dripdrop.worker.runner import drain
        from dripdrop.worker.services import Services

        services = Services(self._rt, AsyncDb(self._rt, self._aengine))
        try:
            return await drain(
                self._rt, services.db, services, batch_size=batch_size, concurrency=concurrency
            )
        finally:
            await services.aclose()

    async def run_worker(
        self, concurrency: int = 10, stop_event: asyncio.Event | None = None, **options: Any
    ) -> RunSummary:
        """Run the worker loop until ``stop_event`` is set."""
        from dripdrop.worker.db import AsyncDb
        from dripdrop.worker.runner import work
        from dripdrop.worker.services import Services

        stop = stop_event or asyncio.Event()
        services = Services(self._rt, AsyncDb(self._rt, self._aengine))
        try:
            return await work(
                self._rt, services.db, services, stop, concurrency=concurrency, **options
            )
        finally:
            await services.aclose()

    def subscribe(self, topic: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Receive ``local`` pub/sub deliveries in process (see DripDrop.subscribe)."""
        return self._rt.bus.subscribe(topic, callback)

    async def simulate(
        self,
        sequence_key: str,
        data: dict[str, Any] | None = None,
        events: list[Any] | None = None,
        until: Any = None,
        **options: Any,
    ) -> Any:
        """The timeline a subscriber would get (see DripDrop.simulate)."""
        from datetime import timedelta

        from dripdrop.engine.simulate import simulate

        return await asyncio.to_thread(
            simulate,
            self._rt,
            sequence_key,
            data,
            events,
            until if until is not None else timedelta(days=30),
            **options,
        )

    async def test_http_hook(self, hook_id: Any, test_data: dict[str, Any] | None = None) -> Any:
        """Call an HTTP hook for real with ``test_data``; store and return the result."""
        from dripdrop.hooks.http import test_http_hook

        return await test_http_hook(self._rt, hook_id, test_data)

    async def setup(self) -> None:
        """Create the schema and apply migrations (idempotent)."""
        await asyncio.to_thread(upgrade, self._rt.engine, self.schema)

    async def close(self) -> None:
        """Release connections."""
        await self._aengine.dispose()
        self._rt.dispose()

    async def __aenter__(self) -> AsyncDripDrop:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _public_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """The operation's signature as users see it: ``self`` instead of (runtime, connection), plus
    the ``connection=`` every operation accepts."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[2:]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    extra = []
    if "connection" not in sig.parameters:
        extra.append(inspect.Parameter("connection", inspect.Parameter.KEYWORD_ONLY, default=None))
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return sig.replace(parameters=[self_param, *params, *extra, *var_kw])


def _sync_method(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def method(self: DripDrop, *args: Any, **kw: Any) -> Any:
        return self._call(fn, *args, **kw)

    method.__signature__ = _public_signature(fn)  # type: ignore[attr-defined]
    del method.__wrapped__  # type: ignore[attr-defined]
    return method


def _async_method(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def method(self: AsyncDripDrop, *args: Any, **kw: Any) -> Any:
        return await self._call(fn, *args, **kw)

    method.__signature__ = _public_signature(fn)  # type: ignore[attr-defined]
    del method.__wrapped__  # type: ignore[attr-defined]
    return method


for _name, _fn in OPERATIONS.items():
    setattr(DripDrop, _name, _sync_method(_fn))
    setattr(AsyncDripDrop, _name, _async_method(_fn))
