"""Provider metadata from ``{issuer}/.well-known/openid-configuration`` (OIDC Discovery 1.0),
cached; its ``issuer`` must equal the configured one exactly (Discovery §4.3)."""

from __future__ import annotations

import threading
import time

from .errors import ConfigurationError, ProviderUnavailable
from .http import Fetch, check_url, urllib_fetch


class Discovery:
    def __init__(self, issuer: str, *, fetch: Fetch = urllib_fetch, timeout: float = 5.0,
                 ttl: float = 3600.0, retry_after: float = 10.0, clock=time.monotonic) -> None:
        self.issuer = check_url(issuer, "issuer")
        self.url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._fetch, self._timeout, self._ttl, self._retry_after = fetch, timeout, ttl, retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")

    def metadata(self) -> dict:
        """The metadata, fetched at most once per ``ttl``; a stale copy is kept if a refresh fails."""
        now = self._clock()
        if self._metadata is not None and now - self._fetched_at < self._ttl:
            return self._metadata
        with self._lock:
            now = self._clock()
            if self._metadata is not None and (now - self._fetched_at < self._ttl
                                               or now - self._failed_at < self._retry_after):
                return self._metadata
            try:
                self._metadata = self._load()
                self._fetched_at = now
            except ProviderUnavailable:
                self._failed_at = now
                if self._metadata is None:
                    raise
            return self._metadata

    def _load(self) -> dict:
        answer = self._fetch(self.url, None, {}, self._timeout)
        data = answer.data
        if answer.status != 200 or not isinstance(data, dict):
            raise ProviderUnavailable("discovery_failed", f"{self.url}: HTTP {answer.status}")
        if data.get("issuer") != self.issuer:
            raise ProviderUnavailable("discovery_issuer_mismatch",
                                      f"{self.url} names issuer {data.get('issuer')!r}, expected {self.issuer!r}")
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
