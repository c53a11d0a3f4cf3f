"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414): only what is implemented. Served by
idp.oidc.published at /.well-known/openid-configuration and /.well-known/oauth-authorization-server."""

from __future__ import annotations

from ... import protocol
from ...extensions import keys
from .. import claims, tokens


def metadata() -> dict:
    issuer = tokens.issuer()
    ring = keys().ring()
    algs = ring.algorithms()
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "end_session_endpoint": f"{issuer}/logout",
        "registration_endpoint": f"{issuer}/register",
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        # clients may each be registered to require it; the provider does not require it of all
        "require_pushed_authorization_requests": False,
        "scopes_supported": list(protocol.SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(protocol.RESPONSE_MODES),
        "grant_types_supported": list(protocol.GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": list(protocol.AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(protocol.CLIENT_ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": list(protocol.CONFIDENTIAL_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(protocol.AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(protocol.DPOP_ALGORITHMS),
        "claims_supported": list(claims.SUPPORTED_CLAIMS),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(protocol.ACR_VALUES),
        # prompt=consent is accepted, but board-registered services need no consent screen
        "prompt_values_supported": ["none", "login"],
        "display_values_supported": ["page"],
        "ui_locales_supported": ["en", "cy"],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
