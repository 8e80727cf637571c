"""The outbound policy: which destinations DripDrop may reach (HTTP, SMTP, Redis, Apprise)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dripdrop.errors import ValidationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The longest timeout one outbound request may ask for, in milliseconds: an adapter's or a
#: webhook step's ``timeout_ms`` and an HTTP hook's ``timeout_ms``. Validation refuses more and
#: the guard honours any value up to it (``OutboundPolicy.timeout`` is only the default for
#: requests that name none). Kept well below the worker's execution timeout (300 s).
MAX_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class OutboundPolicy:
    """Limits applied to every outbound connection (the caps and timeout to HTTP requests).

    ``allow_private_network`` lifts the private/loopback/link-local refusals (for development
    and on-premise installs) but never the cloud-metadata one, whatever its encoding.
    ``allowlist`` entries are hostnames (``"hooks.internal"``, or ``"*.internal"`` for any
    subdomain) or IP addresses/CIDRs (``"127.0.0.1/32"``, ``"10.0.0.0/8"``) that are always
    allowed; a metadata address passes only when an address/CIDR entry covers it, never
    through an allowlisted hostname.

    ``timeout`` (seconds) bounds a whole request, redirects included, unless the request names
    its own timeout: that one wins, up to :data:`MAX_TIMEOUT_MS`.
    """

    allow_private_network: bool = False
    allowlist: tuple[str, ...] = ()
    max_redirects: int = 5
    max_response_bytes: int = 5_000_000
    timeout: float = 10.0
    # Parsed forms of ``allowlist``, computed once so checks stay cheap.
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if isinstance(self.allowlist, str):
            # A bare string would be iterated character by character.
            object.__setattr__(self, "allowlist", (self.allowlist,))
        else:
            # A tuple keeps the policy hashable (clients are cached per policy).
            object.__setattr__(self, "allowlist", tuple(self.allowlist))
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allowlist:
            text = entry.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            label = text[2:] if text.startswith("*.") else text
            if not label or any(c in label for c in "/ :*@"):
                errors.setdefault("allowlist", []).append(f"not a hostname or CIDR: {entry!r}")
            elif text.startswith("*."):
                suffixes.append("." + label)
            else:
                hosts.add(label)
        if self.max_redirects < 0:
            errors["max_redirects"] = ["must be >= 0"]
        if self.max_response_bytes <= 0:
            errors["max_response_bytes"] = ["must be > 0"]
        if self.timeout <= 0:
            errors["timeout"] = ["must be > 0"]
        if errors:
            raise ValidationError(errors)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_suffixes", tuple(suffixes))

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` (a hostname) is on the allowlist by name."""
        name = host.strip().lower().rstrip(".")
        return name in self._hosts or any(name.endswith(s) for s in self._suffixes)

    def address_allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """True when ``ip`` falls in an allowlisted address or CIDR."""
        candidates = [ip]
        # ::ffff:a.b.c.d is the same host as a.b.c.d, so "127.0.0.1/32" covers both.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(
            c in net for c in candidates for net in self._networks if c.version == net.version
        )
