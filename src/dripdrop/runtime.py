"""The per-instance runtime: settings, engines, key ring, clock and in-process services.

Everything the definitions, the engine and the worker need flows from one Runtime object owned by
a DripDrop / AsyncDripDrop instance — no module-level state.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dripdrop.channels.providers.dev import DEFAULT_OUTBOX
from dripdrop.config import Clock, Settings, system_clock, validate_schema_name
from dripdrop.crypto import KeyRing, generate_key
from dripdrop.db.embedded import acquire_embedded_server, release_embedded_server
from dripdrop.db.engine import make_engine, mark_async_commit
from dripdrop.errors import ConfigurationError
from dripdrop.net.policy import OutboundPolicy

log = logging.getLogger("dripdrop")

# The worker's own connection pool: its lanes, heartbeat, fence and publishing share it.
WORKER_POOL_SIZE, WORKER_MAX_OVERFLOW = 4, 8


@dataclass
class LocalBus:
    """In-process pub/sub subscribers (``dd.subscribe(topic, callback)``)."""

    _subs: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, topic: str, callback: Callable[..., Any]) -> Callable[[], None]:
        from dripdrop.definitions.inputs import check_identifier
        from dripdrop.errors import ValidationError

        check_identifier(topic, "topic")
        if not callable(callback):
            raise ValidationError.single(
                "callback", "must be callable as callback(topic, event, payload)"
            )
        with self._lock:
            self._subs.setdefault(topic, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs.get(topic, []):
                    self._subs[topic].remove(callback)

        return unsubscribe

    def subscribers(self, topic: str) -> list[Callable[..., Any]]:
        with self._lock:
            return list(self._subs.get(topic, [])) + list(self._subs.get("*", []))


class Runtime:
    """Configuration and services shared by every operation of one DripDrop instance."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        schema: str | None = None,
        encryption_key: str | None = None,
        clock: Clock | None = None,
        allow_private_network: bool | None = None,
        outbound_allowlist: tuple[str, ...] = (),
        engine_options: dict[str, Any] | None = None,
        settings: Settings | None = None,
        hook_timeout: float = 10.0,
        retry_base: float = 30.0,
        durable_outcomes: bool = False,
        execution_timeout: float = 300.0,
        phone_region: str | None = None,
        public_url: str | None = None,
        unsubscribe_ttl: Any = None,
        quiet_hours: dict[str, Any] | None = None,
        domain_rate_limits: dict[str, str] | None = None,
        frequency_caps: list[dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.schema = validate_schema_name(
            schema if schema is not None else self.settings.schema_name
        )
        self.embedded = False
        # The home of the embedded server this runtime holds, until dispose() lets it go.
        self._embedded_home: Path | None = None
        url = database_url or self.settings.database_url
        if not url:
            url = acquire_embedded_server(self.settings.data_home())
            self.embedded = True
            self._embedded_home = self.settings.data_home()
        self.database_url = url
        self.clock: Clock = clock or system_clock
        self.hook_timeout = hook_timeout  # seconds a Python hook may take
        # Seconds an execution that waits (hooks, network) may take before it is retried.
        self.execution_timeout = execution_timeout
        from dripdrop.hooks.pool import BlockingPool

        self.hook_pool = BlockingPool()  # sync hooks and module templates run here
        self.retry_base = retry_base  # first retry after ~retry_base s, then doubling
        # True: the worker's commits wait for the WAL flush (see worker.batch.record_outcomes).
        self.durable_outcomes = durable_outcomes
        self._worker_engine: Engine | None = None
        self._key_source = encryption_key or self.settings.encryption_key
        self._keyring: KeyRing | None = None
        private = (
            self.settings.allow_private_network
            if allow_private_network is None
            else allow_private_network
        )
        self.policy = OutboundPolicy(
            allow_private_network=private, allowlist=tuple(outbound_allowlist)
        )
        self.engine: Engine = make_engine(url, self.schema, **(engine_options or {}))
        self.outbox = DEFAULT_OUTBOX
        from dripdrop.engine.defs import DefinitionCache

        self.defs = DefinitionCache()
        self.bus = LocalBus()
        self.external_templates: dict[str, tuple[float, Any]] = {}
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}"
        # Who runs due executions: a PostgresScheduler unless DripDrop(scheduler=...) says.
        self.scheduler: Any = None
        from dripdrop.definitions.suppressions import check_region
        from dripdrop.engine.unsubscribe import check_public_url, check_ttl

        # Deliverability: the default country of phone numbers not in +E.164 form; where the
        # web app is reachable (unsubscribe links); how long an unsubscribe link works.
        self.phone_region = check_region(phone_region)
        self.public_url = check_public_url(public_url)
        self.unsubscribe_ttl = check_ttl(unsubscribe_ttl)
        from dripdrop.engine.quiet_hours import check_quiet_hours

        # The instance's default quiet hours (a sequence version or a step may override them).
        self.quiet_hours = check_quiet_hours(quiet_hours, "quiet_hours") or None
        from dripdrop.engine.rate_limits import check_domain_limits

        self.domain_rate_limits = check_domain_limits(domain_rate_limits)  # domain → "20/1s"
        from dripdrop.engine.frequency_caps import check_caps, parse_caps

        # Per-subscriber caps across sequences (a version may replace them, a step opt out).
        caps = check_caps(frequency_caps, "frequency_caps", allow_off=False)
        self.frequency_caps = parse_caps(caps if isinstance(caps, list) else None)

    @property
    def keyring(self) -> KeyRing:
        """The key ring; with the embedded database a key is generated beside the data."""
        if self._keyring is None:
            source = self._key_source
            if not source and self.embedded:
                source = self._embedded_key()
            if not source:
                raise ConfigurationError(
                    "no encryption key: set DRIPDROP_ENCRYPTION_KEY (generate one with "
                    "`dripdrop gen-key`) or pass DripDrop(encryption_key=...) before storing "
                    "credentials"
                )
            self._keyring = KeyRing.from_env_value(source)
        return self._keyring

    def _embedded_key(self) -> str:
        path: Path = self.settings.data_home() / "encryption.key"
        if path.exists():
            return path.read_text().strip()
        key = generate_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        log.warning(
            "dripdrop: generated an encryption key for the embedded database at %s; "
            "set DRIPDROP_ENCRYPTION_KEY for a real deployment",
            path,
        )
        return key

    @property
    def worker_engine(self) -> Engine:
        """The worker's own pool: no pre-ping round trip on every checkout (a broken connection
        fails one batch, which the loop retries)."""
        if self._worker_engine is None:
            self._worker_engine = make_engine(
                self.database_url,
                self.schema,
                pool_pre_ping=False,
                pool_size=WORKER_POOL_SIZE,
                max_overflow=WORKER_MAX_OVERFLOW,
                connect_args=self.worker_connect_args(),
            )
            mark_async_commit(self._worker_engine)
        return self._worker_engine

    def worker_connect_args(self) -> dict[str, Any]:
        """Worker connections name themselves in ``pg_stat_activity`` (unless the URL does) and
        commit without waiting for the WAL flush by default: everything the worker writes is
        safe to redo (see worker.batch.record_outcomes), and durable outcomes ask for the
        flush per transaction. Saves a round trip per batch.

        They also read times in UTC whatever the server's zone: psycopg then hands back
        datetimes in ``timezone.utc``, which the worker's time arithmetic and comparisons take
        without converting (9 % of the worker's own CPU when the server says ``Etc/UTC``)."""
        from sqlalchemy.engine import make_url

        query = make_url(self.database_url).query
        options = query.get("options", "")
        options = options if isinstance(options, str) else " ".join(options)
        args = {"options": f"{options} -c synchronous_commit=off -c timezone=UTC".strip()}
        if "application_name" not in query:
            args["application_name"] = f"dripdrop worker {self.schema}"[:63]
        return args

    def now(self) -> Any:
        from dripdrop.config import aware

        return aware(self.clock())

    def dispose(self) -> None:
        """Close the connection pools, then let go of the embedded server (stopped when nothing
        else uses it; see :mod:`dripdrop.db.embedded`). Idempotent."""
        self.engine.dispose()
        if self._worker_engine is not None:
            self._worker_engine.dispose()
        home, self._embedded_home = self._embedded_home, None
        if home is not None:
            release_embedded_server(home)
