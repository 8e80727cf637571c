"""The provider registry: every (channel, provider) pair and its declaration.

Provider modules live in :mod:`dripdrop.channels.providers`; each calls :func:`register` at import
time. Modules must not import optional extras at module level, so the registry always loads.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from dripdrop.channels.base import CHANNELS, Fields, ProviderSpec
from dripdrop.channels.fields import MESSAGE_FIELDS, STEP_SETTINGS
from dripdrop.definitions.inputs import unknown_keys
from dripdrop.errors import ValidationError

_SPECS: dict[tuple[str, str], ProviderSpec] = {}
_loaded = False


def register(spec: ProviderSpec) -> ProviderSpec:
    """Add a provider declaration (also usable by apps for their own providers)."""
    _SPECS[(spec.channel, spec.name)] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    from dripdrop.channels import providers

    for mod in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{mod.name}")
    _loaded = True


def all_specs() -> list[ProviderSpec]:
    """Every registered provider, sorted by channel then name."""
    _load()
    return sorted(_SPECS.values(), key=lambda s: (s.channel, s.name))


def providers_for(channel: str) -> list[str]:
    """Provider names available for a channel."""
    _load()
    return sorted(name for (ch, name) in _SPECS if ch == channel)


def step_fields(channel: str) -> frozenset[str]:
    """The keys a step of ``channel`` may hold in its config: the channel's message fields, the
    engine settings and what registered providers of the channel declare."""
    _load()
    extra = {f for (ch, _), spec in _SPECS.items() if ch == channel for f in spec.step_fields}
    return MESSAGE_FIELDS.get(channel, frozenset()) | STEP_SETTINGS | extra


def declared_keys(model: type[Fields]) -> set[str]:
    """The keys a credentials/config declaration accepts (field names and their aliases)."""
    keys = set(model.model_fields)
    keys.update(f.alias for f in model.model_fields.values() if f.alias)
    return keys


def _unknown(model: type[Fields], given: Any, prefix: str) -> dict[str, list[str]]:
    if model.open_keys or not isinstance(given, dict):
        return {}
    return unknown_keys(given, declared_keys(model), prefix)


def get_spec(channel: str, provider: str) -> ProviderSpec:
    """The declaration of a provider, or a ValidationError naming the bad field."""
    _load()
    if channel not in CHANNELS:
        raise ValidationError.single(
            "channel", f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}"
        )
    spec = _SPECS.get((channel, provider))
    if spec is None:
        known = ", ".join(providers_for(channel)) or "none"
        raise ValidationError.single(
            "provider", f"unknown provider {provider!r} for channel {channel!r}; known: {known}"
        )
    return spec


def _errors(prefix: str, exc: PydanticValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = "is required" if err["type"] == "missing" else err["msg"]
        out.setdefault(f"{prefix}.{loc}" if loc else prefix, []).append(msg)
    return out


def validate_adapter(
    channel: str, provider: str, credentials: dict[str, Any] | None, config: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check credentials and config against the provider's declaration; return them normalised.

    Error messages never contain credential values.
    """
    spec = get_spec(channel, provider)
    rate_limit = None
    if isinstance(config, dict) and "rate_limit" in config:  # every provider's: the engine's
        from dripdrop.engine.rate_limits import check_rate_limits

        config = dict(config)
        rate_limit = check_rate_limits(config.pop("rate_limit"), "config.rate_limit")
    errors = _unknown(spec.credentials, credentials, "credentials")
    errors.update(_unknown(spec.config, config, "config"))
    creds_out: dict[str, Any] = {}
    config_out: dict[str, Any] = {}
    try:
        creds_out = spec.credentials.model_validate(credentials or {}).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        errors.update(_errors("credentials", exc))
    try:
        config_out = spec.config.model_validate(config or {}).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        errors.update(_errors("config", exc))
    if errors:
        raise ValidationError(errors)
    # Rules spanning both (Mailgun's domain may sit in either): the provider class's optional
    # ``check_adapter(credentials, config) -> {field: [messages]}``.
    check = getattr(spec.factory, "check_adapter", None)
    if check is not None and (errors := check(creds_out, config_out)):
        raise ValidationError(errors)
    if rate_limit is not None:
        config_out["rate_limit"] = rate_limit
    return creds_out, config_out


def get_provider(channel: str, provider: str) -> Any:
    """An instance of the provider implementation."""
    return get_spec(channel, provider).factory()
