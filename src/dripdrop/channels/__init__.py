"""Channels and providers: the protocol, the registry and one module per provider."""

from dripdrop.channels.base import (
    CHANNELS,
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    Provider,
    ProviderSpec,
)
from dripdrop.channels.registry import (
    all_specs,
    get_provider,
    get_spec,
    providers_for,
    register,
    validate_adapter,
)

__all__ = [
    "CHANNELS",
    "AdapterInfo",
    "DeliveryContext",
    "DeliveryResult",
    "Fields",
    "Message",
    "Provider",
    "ProviderSpec",
    "all_specs",
    "get_provider",
    "get_spec",
    "providers_for",
    "register",
    "validate_adapter",
]
