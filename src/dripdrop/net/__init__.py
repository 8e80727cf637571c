"""Outbound HTTP for DripDrop: one guarded client, one entry point.

Every outbound request — HTTP hooks, webhook steps, external templates, HTTP providers'
``base_url``, chat webhooks — goes through::

    client = create_http_client(policy)          # once, shared and closed with aclose()
    response = await guarded_request(client, "POST", url, json=payload)
    if response.is_error:
        raise classify_http_error(response)

What the guard does (the SSRF defence):

* Each connection is made by :class:`~dripdrop.net.transport.GuardedBackend`: the hostname is
  resolved ONCE, every address is checked with :func:`check_address` (loopback, private,
  link-local, CGNAT, metadata, multicast, IPv4 hidden in IPv6…; one bad address refuses the
  host), and the socket connects to a vetted IP — never a second DNS lookup (no rebinding).
  Numeric disguises ("0x7f.1", "2130706433", "[::ffff:127.0.0.1]") are seen through by
  :func:`parse_host`.
* The ``Host`` header, the connection pool key and TLS (SNI and certificate verification) keep
  using the hostname, so HTTPS stays fully verified; ``verify=False`` is refused.
* Redirects are followed by :func:`guarded_request`, re-vetting each hop, at most
  ``policy.max_redirects`` times; bodies are capped at ``policy.max_response_bytes`` while
  streaming; the whole call is bounded by ``policy.timeout``.
* ``allow_private_network`` lifts the private-range refusals (not cloud metadata);
  ``allowlist`` names hosts or CIDRs that always pass.

Failures: :class:`~dripdrop.errors.OutboundBlocked` for refusals, ``httpx2`` errors for network
problems and timeouts, :class:`~dripdrop.errors.PermanentError` for the caps;
:func:`classify_http_error` maps any of them (or an error response) to TransientError /
PermanentError for the retry logic.
"""

from dripdrop.net.addresses import check_address, parse_host
from dripdrop.net.classify import classify_http_error, parse_retry_after, response_summary
from dripdrop.net.client import GuardedClient, create_http_client, guarded_request
from dripdrop.net.guard import resolve_and_check
from dripdrop.net.policy import OutboundPolicy
from dripdrop.net.transport import GuardedBackend, GuardedTransport

__all__ = [
    "GuardedBackend",
    "GuardedClient",
    "GuardedTransport",
    "OutboundPolicy",
    "check_address",
    "classify_http_error",
    "create_http_client",
    "guarded_request",
    "parse_host",
    "parse_retry_after",
    "resolve_and_check",
    "response_summary",
]
