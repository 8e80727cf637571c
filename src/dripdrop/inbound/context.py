"""What a webhook receiver may need beyond the request: outbound fetches through the guard
(SNS signing certificates, subscription confirmations) and a cache of certificates.

One :class:`InboundContext` lives on the web app (``app.state``), so the cache is per app, never
module state. Production trusts only AWS SNS hosts over HTTPS (:data:`AWS_SNS_HOST`); tests
replace ``sns_hosts``/``sns_schemes`` to point at a local server.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dripdrop.net.policy import OutboundPolicy

#: The hosts SNS signs from and confirms subscriptions on: ``sns.<region>.amazonaws.com``
#: (``.com.cn`` in the China regions).
AWS_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d+\.amazonaws\.com(\.cn)?$")

#: Certificates kept (by URL) and for how long: SNS rotates them rarely.
CERT_CACHE_SIZE, CERT_CACHE_SECONDS = 32, 24 * 3600
#: A signing certificate is a few kilobytes; anything much larger is not one.
MAX_CERT_BYTES = 64 * 1024


class NotTrusted(Exception):
    """A URL outside the trusted SNS hosts (or not HTTPS)."""


@dataclass
class InboundContext:
    """Services of the webhook receivers of one app."""

    policy: OutboundPolicy
    sns_hosts: re.Pattern[str] = AWS_SNS_HOST
    sns_schemes: tuple[str, ...] = ("https",)
    _certs: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_sns_url(self, url: Any, what: str) -> str:
        """``url`` when it is an SNS URL this app trusts; NotTrusted otherwise."""
        if not isinstance(url, str):
            raise NotTrusted(f"{what} is missing")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise NotTrusted(f"{what} is not a URL") from None
        if parts.scheme not in self.sns_schemes or not self.sns_hosts.match(host):
            raise NotTrusted(f"{what} is not an AWS SNS URL over HTTPS")
        if parts.username or parts.password:
            raise NotTrusted(f"{what} carries credentials")
        return url

    async def get(self, url: str, *, limit: int = MAX_CERT_BYTES) -> bytes:
        """GET ``url`` through the outbound guard; the body, or RuntimeError for an error."""
        from dripdrop.net import create_http_client, guarded_request

        policy = OutboundPolicy(
            allow_private_network=self.policy.allow_private_network,
            allowlist=self.policy.allowlist,
            max_redirects=0,  # a signing certificate is served where SNS says, never elsewhere
            max_response_bytes=limit,
            timeout=min(self.policy.timeout, 10.0),
        )
        client = create_http_client(policy)
        try:
            response = await guarded_request(client, "GET", url, follow_redirects=False)
        finally:
            await client.aclose()
        if response.status_code != 200:
            raise RuntimeError(f"GET {urlsplit(url).hostname} answered {response.status_code}")
        return response.content

    async def certificate(self, url: str) -> bytes:
        """The PEM at ``url`` (a trusted SNS URL), from the cache when fetched recently."""
        now = time.monotonic()
        with self._lock:
            hit = self._certs.get(url)
            if hit is not None and now - hit[0] < CERT_CACHE_SECONDS:
                self._certs.move_to_end(url)
                return hit[1]
        pem = await self.get(url)
        with self._lock:
            self._certs[url] = (now, pem)
            while len(self._certs) > CERT_CACHE_SIZE:
                self._certs.popitem(last=False)
        return pem
