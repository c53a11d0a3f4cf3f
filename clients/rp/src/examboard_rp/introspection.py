"""Token introspection (RFC 7662), for opaque tokens or to catch revoked JWTs early.

The service authenticates with its own client credentials (client_secret_basic); the provider
answers ``active: true`` only for tokens issued to that client.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

from .errors import InvalidToken, ProviderUnavailable
from .http import Fetch, check_url, urllib_fetch
from .tokens import AccessToken, audiences_of, check_audience, check_time_claims


class Introspector:
    def __init__(self, endpoint: str | Callable[[], str], client_id: str, client_secret: str, *,
                 issuer: str, audience: str | Iterable[str], leeway: float = 30.0,
                 fetch: Fetch = urllib_fetch, timeout: float = 5.0,
                 now: Callable[[], float] = time.time) -> None:
        self._endpoint = endpoint
        # RFC 6749 §2.3.1: form-encode both parts before base64
        raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        self._auth = "Basic " + base64.b64encode(raw).decode()
        self.issuer = issuer
        self.audiences = audiences_of(audience)
        self.leeway = leeway
        self._fetch, self._timeout, self._now = fetch, timeout, now

    def introspect(self, token: str) -> dict:
        """The provider's raw answer (``active`` may be false)."""
        endpoint = check_url(self._endpoint() if callable(self._endpoint) else self._endpoint,
                             "introspection_endpoint")
        answer = self._fetch(endpoint, {"token": token, "token_type_hint": "access_token"},
                             {"Authorization": self._auth}, self._timeout)
        if answer.status != 200 or not isinstance(answer.data, dict):
            raise ProviderUnavailable("introspection_failed", f"{endpoint}: HTTP {answer.status}")
        return answer.data

    def validate(self, token: str) -> AccessToken:
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise InvalidToken("malformed", "the token is not a usable string")
        data = self.introspect(token)
        if data.get("active") is not True:
            raise InvalidToken("inactive", "the provider reports the token as not active")
        if data.get("token_type", "Bearer").lower() not in ("bearer", "access_token"):
            raise InvalidToken("not_access_token", "the token is not an access token")
        if "iss" in data and data["iss"] != self.issuer:
            raise InvalidToken("wrong_issuer", "the token was issued by another provider (iss)")
        if "aud" in data:
            check_audience(data, self.audiences)
        elif data.get("client_id") not in self.audiences:
            raise InvalidToken("wrong_audience", "the token is not meant for this service")
        if "exp" in data or "iat" in data:
            check_time_claims({"iat": data.get("iat", 0), **data}, self._now(), self.leeway, require_exp=False)
        if not isinstance(data.get("sub"), str):
            raise InvalidToken("missing_claim", "the introspection answer has no sub")
        return AccessToken.from_claims(data)
