"""What a token says about a person, by scope (idp.protocol.SCOPE_CLAIMS).

Scope ``access`` releases ``role``, ``centre`` and ``profiles``: what downstream
services authorise on. The standard scopes release the standard claims.
"""

from __future__ import annotations

from .. import policy, protocol
from ..accounts.models import Account
from ..centres import grants

SUPPORTED_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
                    "at_hash") + tuple(c for claims in protocol.SCOPE_CLAIMS.values() for c in claims)


def user_claims(account: Account, scope: str, client, *, profiles: frozenset[str] | None = None) -> dict:
    """Claims about the person for the given scope, as released to ``client``. ``profiles``: what
    they hold, when the caller has read it already (else it is read here if the scope needs it)."""
    scopes = set(scope.split()) if scope else set()
    claims: dict = {"sub": account.sub}
    if "profile" in scopes:
        claims.update(name=account.name, given_name=account.given_name, family_name=account.family_name,
                      locale=account.language, updated_at=int(account.updated_at.timestamp()))
    if "email" in scopes:
        claims.update(email=account.email, email_verified=bool(account.email_verified))
    if "phone" in scopes and account.phone:
        claims.update(phone_number=account.phone, phone_number_verified=False)
    if protocol.ACCESS_SCOPE in scopes:
        profiles = sorted(grants.profiles_of(account) if profiles is None else profiles)
        if client is not None and client.allowed_profiles is not None:
            # a client allowed "entries.make" also sees the "entries.view" it implies
            allowed = policy.current().with_implied(client.allowed_profiles)
            profiles = [p for p in profiles if p in allowed]
        claims.update(role=account.role, centre=account.centre_number, profiles=profiles)
    return claims
