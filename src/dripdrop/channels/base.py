"""The provider protocol: what a channel provider receives and what it returns.

A provider turns one rendered :class:`Message` into one delivery through one adapter. It returns a
:class:`DeliveryResult` or raises :class:`~dripdrop.errors.TransientError` (retry later, maybe
on another adapter) or :class:`~dripdrop.errors.PermanentError` (fail now).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

CHANNELS: tuple[str, ...] = (
    "email",
    "sms",
    "webhook",
    "pubsub",
    "slack",
    "telegram",
    "discord",
    "msteams",
    "apprise",
)


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered step, ready to send.

    ``fields`` holds the step config after rendering (email: subject, body, text, from, reply_to,
    to, headers, unsubscribe_url; sms: body, to; webhook: url, method, body, headers; pubsub:
    topic, event, payload; slack: text, channel, blocks; telegram: text, chat_id, parse_mode).
    """

    channel: str
    recipient: str | None
    fields: dict[str, Any]
    execution_id: str
    idempotency_key: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """A channel adapter with its credentials decrypted, as handed to a provider."""

    id: str | None
    name: str
    channel: str
    provider: str
    credentials: dict[str, Any] = field(repr=False, default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a provider answered: its message id, a status word and the raw (JSON-able) answer."""

    provider_message_id: str | None = None
    status: str = "sent"
    response: Any = None


@dataclass
class DeliveryContext:
    """Services a provider may use. The worker builds one per delivery run.

    ``http`` is the shared, guarded async HTTP client (an ``httpx2.AsyncClient``).
    ``publish`` delivers a pub/sub message inside DripDrop (PostgreSQL NOTIFY + inbox, local bus).
    ``outbox`` collects ``memory`` deliveries.
    """

    http: Any = None
    publish: Callable[[str, str, Any, Message, AdapterInfo], Awaitable[Any]] | None = None
    outbox: Any = None
    clock: Callable[[], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """Sends messages for one (channel, provider) pair."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult: ...


class Fields(BaseModel):
    """Base for credential and config declarations: types are checked, and keys not declared are
    refused when an adapter is created (``open_keys = True`` accepts any, for a declaration that
    really takes free-form keys). Loading a stored adapter tolerates them."""

    open_keys: ClassVar[bool] = False

    # An empty string is never a usable credential or setting: "api_key": "" is reported as
    # missing rather than failing at the first delivery.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, str_min_length=1)


@dataclass(frozen=True)
class ProviderSpec:
    """The declaration of one provider: its credential and config schemas and its implementation.

    ``secret_fields`` names the credential fields the dashboard must never show.
    ``step_fields`` names message fields this provider reads beyond its channel's own
    (:data:`dripdrop.channels.fields.MESSAGE_FIELDS`): steps of the channel may then set them.
    """

    channel: str
    name: str
    credentials: type[Fields]
    config: type[Fields]
    factory: Callable[[], Provider]
    description: str = ""
    secret_fields: tuple[str, ...] = ()
    step_fields: tuple[str, ...] = ()
    extra: str | None = None
    # Sends without network or disk waits (memory, console): the worker runs such deliveries
    # inline instead of one Task each.
    in_process: bool = False

    HTTP: ClassVar[bool] = False
