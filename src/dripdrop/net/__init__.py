"""Outbound connections for DripDrop: one guard, one policy, one entry point per protocol.

Every outbound HTTP request — HTTP hooks, webhook steps, external templates, HTTP providers'
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
  streaming; the whole call is bounded by the request's own timeout (at most
  ``MAX_TIMEOUT_MS``) or else ``policy.timeout``.
* Two transports enforce these rules: ``guarded_request`` sends through one aiohttp session
  per client (:mod:`dripdrop.net.wire`: a resolver that vets every address, IP literals vetted
  before sending, a fifth of the CPU per request of httpx2's pool) and answers a
  :class:`~dripdrop.net.wire.WireResponse`; the client's own httpx2 methods (``client.get`` …)
  and URLs aiohttp would rewrite (``127.1``) go through :class:`GuardedTransport`.
* ``allow_private_network`` lifts the private-range refusals (not cloud metadata, in any IPv6
  encoding of it); ``allowlist`` names hosts or CIDRs that always pass.

The non-HTTP paths follow the same policy (:func:`policy_of` reads it off ``ctx.http``):
SMTP relays and Redis servers are reached through :func:`connect_guarded` (resolve once, vet
every address, connect to the vetted IP, TLS still verified against the hostname); Apprise URLs
are vetted host by host before Apprise is called.

Failures: :class:`~dripdrop.errors.OutboundBlocked` for refusals, ``httpx2`` errors for network
problems and timeouts, :class:`~dripdrop.errors.PermanentError` for the caps;
:func:`classify_http_error` maps any of them (or an error response) to TransientError /
PermanentError for the retry logic.
"""

from dripdrop.net.addresses import check_address, check_metadata, metadata_target, parse_host
from dripdrop.net.classify import classify_http_error, parse_retry_after, response_summary
from dripdrop.net.client import GuardedClient, create_http_client, guarded_request
from dripdrop.net.guard import resolve_and_check
from dripdrop.net.policy import OutboundPolicy
from dripdrop.net.sockets import connect_guarded, policy_of, tls_server_name
from dripdrop.net.transport import GuardedBackend, GuardedTransport

__all__ = [
    "GuardedBackend",
    "GuardedClient",
    "GuardedTransport",
    "OutboundPolicy",
    "check_address",
    "check_metadata",
    "classify_http_error",
    "connect_guarded",
    "create_http_client",
    "guarded_request",
    "metadata_target",
    "parse_host",
    "parse_retry_after",
    "policy_of",
    "resolve_and_check",
    "response_summary",
    "tls_server_name",
]
