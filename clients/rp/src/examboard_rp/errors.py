"""Every failure is an exception with a machine-readable ``reason`` and a sentence for people.

``http_response()`` turns one into what an HTTP API should answer (RFC 6750 §3):

    401  no token, or a bad one       WWW-Authenticate: Bearer realm=..., error="invalid_token"
    403  a good token without the profile the endpoint needs
    503  the provider could not be reached, or answered nonsense, and nothing usable is cached

What goes out is fixed text: never token content (a header value must be ASCII, and a token is
the attacker's), never the provider's internal URLs (``description`` of a ProviderUnavailable
names them for the logs; its ``public_description`` does not).
"""

from __future__ import annotations

import re

# RFC 6750 §3: error_description (and what this kit puts in realm) is NQSCHAR only
_NOT_NQSCHAR = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class RPError(Exception):
    """Base class. ``reason`` is a short stable code (``expired``, ``wrong_audience`` …)."""

    status = 400
    error = "invalid_request"

    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(description or reason)
        self.reason = reason
        self.description = description or reason.replace("_", " ")

    @property
    def public_description(self) -> str:
        """The sentence to show whoever made the request."""
        return self.description

    def http_response(self, realm: str = "examboard") -> tuple[int, dict[str, str], dict]:
        """(status, headers, JSON body) for this error."""
        return self.status, {"Cache-Control": "no-store"}, {"error": self.error,
                                                            "error_description": self.public_description}


def _quote(value: str) -> str:
    """A header parameter value: characters outside NQSCHAR are dropped, so whatever a
    description holds, the header stays ASCII and well-formed."""
    return '"' + _NOT_NQSCHAR.sub("", value) + '"'


class InvalidToken(RPError):
    """The access token is missing, malformed, badly signed, expired, for someone else …

    ``scheme`` is the one the answer's challenge names: ``DPoP`` when the token is bound to a key
    (RFC 9449 §7.1), ``Bearer`` otherwise; a request with no token is offered both."""

    status = 401
    error = "invalid_token"

    def __init__(self, reason: str, description: str | None = None, *, scheme: str = "Bearer") -> None:
        super().__init__(reason, description)
        self.scheme = scheme

    def http_response(self, realm: str = "examboard") -> tuple[int, dict[str, str], dict]:
        from .dpop import PROOF_ALGORITHMS

        dpop = f"DPoP realm={_quote(realm)}, algs={_quote(' '.join(PROOF_ALGORITHMS))}"
        if self.reason == "missing_token":
            # RFC 6750 §3.1: no error code when the request carried no credentials at all.
            challenge = f"Bearer realm={_quote(realm)}, {dpop}"
            body = {"error": "unauthorized", "error_description": self.public_description}
        else:
            why = f"error={_quote(self.error)}, error_description={_quote(self.public_description)}"
            challenge = f"{dpop}, {why}" if self.scheme == "DPoP" else f"Bearer realm={_quote(realm)}, {why}"
            body = {"error": self.error, "error_description": self.public_description}
        return self.status, {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}, body


class InvalidDPoPProof(InvalidToken):
    """The DPoP proof sent with a key-bound token is missing, malformed, stale or replayed."""

    error = "invalid_dpop_proof"

    def __init__(self, reason: str, description: str | None = None) -> None:
        super().__init__(reason, description, scheme="DPoP")


class InsufficientProfile(RPError):
    """A valid token whose person lacks the access profile the endpoint needs."""

    status = 403
    error = "insufficient_scope"

    def __init__(self, profile: str, description: str | None = None) -> None:
        super().__init__("missing_profile", description or f"access profile {profile!r} is required")
        self.profile = profile

    def http_response(self, realm: str = "examboard") -> tuple[int, dict[str, str], dict]:
        challenge = (f"Bearer realm={_quote(realm)}, error={_quote(self.error)}, "
                     f"error_description={_quote(self.public_description)}")
        body = {"error": self.error, "error_description": self.public_description, "missing_profile": self.profile}
        return self.status, {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}, body


class ProviderUnavailable(RPError):
    """Discovery, JWKS or introspection could not be fetched (and nothing usable is cached)."""

    status = 503
    error = "temporarily_unavailable"

    @property
    def public_description(self) -> str:
        return "the identity provider cannot be reached or gave an unusable answer; try again shortly"

    def http_response(self, realm: str = "examboard") -> tuple[int, dict[str, str], dict]:
        status, headers, body = super().http_response(realm)
        headers["Retry-After"] = "5"
        return status, headers, body


class LogoutTokenError(RPError):
    """A back-channel logout request that must be refused (400)."""

    status = 400
    error = "invalid_request"


class ConfigurationError(RPError, ValueError):
    """The kit was set up wrongly (a plain-http issuer that is not loopback, no audience …)."""
