"""Provider metadata from ``{issuer}/.well-known/openid-configuration`` (OIDC Discovery 1.0),
cached; its ``issuer`` must equal the configured one exactly (Discovery §4.3).

Re-fetched once ``ttl`` has passed, by one thread while the others go on with the copy they have
(it only holds URLs); if that fails, the copy is kept and another attempt made ``retry_after``
seconds later. A document that is not JSON, not an object, names another issuer or gives no
usable ``jwks_uri`` is a failed fetch, never a crash.
"""

from __future__ import annotations

import logging
import time

from .errors import ConfigurationError, ProviderUnavailable
from .http import Fetch, call_provider, check_url, fetch_json
from .single_flight import SingleFlight

log = logging.getLogger(__name__)


class Discovery:
    def __init__(self, issuer: str, *, fetch: Fetch = fetch_json, timeout: float = 5.0,
                 ttl: float = 3600.0, retry_after: float = 10.0, clock=time.monotonic) -> None:
        self.issuer = check_url(issuer, "issuer")
        self.url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._fetch, self._timeout, self._ttl = fetch, timeout, ttl
        self._clock = clock
        self._flight = SingleFlight(retry_after, timeout, clock)
        self._metadata: dict | None = None
        self._fresh_until = float("-inf")
        self._last_error: ProviderUnavailable | None = None

    def metadata(self) -> dict:
        """The metadata, fetched at most once per ``ttl``; a stale copy is kept if a refresh fails."""
        metadata = self._metadata
        if metadata is not None and self._clock() < self._fresh_until:
            return metadata
        self._flight.run(self._refresh, wait=metadata is None)
        metadata = self._metadata
        if metadata is None:
            error = self._last_error
            if error is not None:
                raise ProviderUnavailable(error.reason, error.description)
            raise ProviderUnavailable("discovery_failed", f"{self.url} could not be fetched in time")
        return metadata

    def _refresh(self) -> None:
        try:
            metadata = self._load()
        except ProviderUnavailable as exc:
            self._last_error = exc
            log.warning("examboard_rp: discovery failed (%s)", exc.description)
            return
        self._fresh_until = self._clock() + self._ttl
        self._metadata, self._last_error = metadata, None

    def _load(self) -> dict:
        answer = call_provider(self._fetch, self.url, None, {}, self._timeout)
        data = answer.data
        if answer.status != 200 or not isinstance(data, dict):
            raise ProviderUnavailable("discovery_failed", f"{self.url}: HTTP {answer.status}, not a JSON object")
        if data.get("issuer") != self.issuer:
            raise ProviderUnavailable("discovery_issuer_mismatch",
                                      f"{self.url} names issuer {repr(data.get('issuer'))[:200]}, expected {self.issuer!r}")
        if not isinstance(data.get("jwks_uri"), str):
            raise ProviderUnavailable("discovery_failed", f"{self.url} has no jwks_uri")
        _provider_url(data["jwks_uri"], "jwks_uri")
        return data

    def endpoint(self, name: str) -> str:
        """An endpoint URL from the metadata (``jwks_uri``, ``introspection_endpoint`` …)."""
        value = self.metadata().get(name)
        if not isinstance(value, str):
            raise ProviderUnavailable("endpoint_not_advertised", f"the provider advertises no {name}")
        return _provider_url(value, name)


def _provider_url(url: str, what: str) -> str:
    """A URL the provider published: an insecure one is the provider's fault, not ours (503)."""
    try:
        return check_url(url, what)
    except ConfigurationError as exc:
        raise ProviderUnavailable("provider_insecure_url", exc.description) from None
