"""Which claims a scope releases, and the authentication context (acr/amr).

Scope ``access`` releases ``role``, ``centre`` and ``profiles``: what downstream
services authorise on. The standard scopes release the standard claims.
"""

from __future__ import annotations

from sqlalchemy import select

from .. import policy
from ..accounts.models import Account
from ..centres.models import AccessGrant
from ..extensions import db

#: Authentication context classes, weakest first.
ACR_PASSWORD = "urn:idp:acr:pwd"          # password only (never enough for a token once MFA is live)
ACR_MFA = "urn:idp:acr:mfa"               # password + a second factor
ACR_PHISHING_RESISTANT = "urn:idp:acr:phr"  # password + WebAuthn
ACR_VALUES = (ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT)

SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "access": ("role", "centre", "profiles"),
}
#: The admin API (/api/v1) is a resource of its own: an access token carrying this scope is issued
#: for it alone (``aud`` = ``admin_api_audience``), and only to clients registered with the scope by
#: board staff. ``access`` stays a scope of identity claims.
ADMIN_API_SCOPE = "admin_api"
SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "access", "offline_access", ADMIN_API_SCOPE)


def admin_api_audience(issuer: str) -> str:
    """The admin API's resource identifier (RFC 8707): the ``aud`` of every token meant for it."""
    return issuer + "/api/v1"
SUPPORTED_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
                    "at_hash") + tuple(c for claims in SCOPE_CLAIMS.values() for c in claims)


def profiles_of(account: Account) -> list[str]:
    return sorted(db.session.scalars(select(AccessGrant.profile).where(AccessGrant.account_id == account.id)))


def user_claims(account: Account, scope: str, client) -> dict:
    """Claims about the person for the given scope, as released to ``client``."""
    scopes = set(scope.split()) if scope else set()
    claims: dict = {"sub": account.sub}
    if "profile" in scopes:
        claims.update(name=account.name, given_name=account.given_name, family_name=account.family_name,
                      locale=account.language, updated_at=int(account.updated_at.timestamp()))
    if "email" in scopes:
        # the address received the invite and is the username: it is verified by construction
        claims.update(email=account.email, email_verified=True)
    if "phone" in scopes and account.phone:
        claims.update(phone_number=account.phone, phone_number_verified=False)
    if "access" in scopes:
        profiles = profiles_of(account)
        if client is not None and client.allowed_profiles is not None:
            # a client allowed "entries.make" also sees the "entries.view" it implies
            allowed = policy.current().with_implied(client.allowed_profiles)
            profiles = [p for p in profiles if p in allowed]
        claims.update(role=account.role, centre=account.centre_number, profiles=profiles)
    return claims
