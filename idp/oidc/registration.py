"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

Board staff issue initial access tokens (``idp client initial-token``); a registration
returns a registration access token that alone may read, replace or delete that client.
Every token is stored as a keyed hash.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from .. import audit, secrets
from ..clock import utcnow
from ..extensions import db, pepper, settings
from . import clients
from .models import Client, InitialAccessToken


def _pepper() -> str:
    return pepper()


def issue_initial_token(*, actor: str, lifetime_seconds: int = 86400, uses: int = 1) -> str:
    token = secrets.token(32)
    db.session.add(InitialAccessToken(token_hash=secrets.fast_hash(token, _pepper()), created_by=actor,
                                      expires_at=utcnow() + timedelta(seconds=lifetime_seconds), uses_left=uses))
    audit.record("client.initial_token_issued", actor=actor, uses=uses, lifetime_seconds=lifetime_seconds)
    db.session.commit()
    return token


def initial_tokens() -> list[InitialAccessToken]:
    """Every initial access token still stored (used-up and expired ones until revoked), newest first."""
    return list(db.session.scalars(select(InitialAccessToken).order_by(InitialAccessToken.created_at.desc())))


def revoke_initial_token(token_hash: str, *, actor: str) -> bool:
    """Delete an initial access token (named by its stored hash): it registers nothing more."""
    if not isinstance(token_hash, str) or len(token_hash) > 64:
        return False
    deleted = db.session.execute(delete(InitialAccessToken).where(InitialAccessToken.token_hash == token_hash)
                                 .execution_options(synchronize_session=False)).rowcount
    if deleted:
        audit.record("client.initial_token_revoked", actor=actor, token=token_hash[:12])
    db.session.commit()
    return bool(deleted)


def consume_initial_token(token: str | None) -> InitialAccessToken | None:
    """Spend one use of an initial access token, atomically; None if it is unknown, used up or expired."""
    if not token or len(token) > 200:
        return None
    digest = secrets.fast_hash(token, _pepper())
    result = db.session.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.token_hash == digest, InitialAccessToken.uses_left > 0,
               InitialAccessToken.expires_at > utcnow())
        .values(uses_left=InitialAccessToken.uses_left - 1).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    return db.session.get(InitialAccessToken, digest)


def register(meta: dict, initial: InitialAccessToken) -> tuple[Client, str | None, str]:
    """(client, secret or None, registration access token). Rolls back the spent use on failure."""
    registration_token = secrets.token(32)
    try:
        created = clients.create(meta, actor=f"initial-token:{initial.created_by}", pepper=_pepper(),
                                 registration_token=registration_token, self_registered=True)
    except clients.ClientMetadataError:
        db.session.rollback()
        raise
    return created.client, created.client_secret, registration_token


def client_for_registration_token(client_id: str, token: str | None) -> Client | None:
    """The client a registration access token manages, or None. A disabled client's token works
    no more than a wrong one: board staff stopped it, so it may not read or change what they left."""
    row = clients.get(client_id)
    if row is None or row.disabled or not row.registration_token_hash or not token or len(token) > 200:
        return None
    if not secrets.same(secrets.fast_hash(token, _pepper()), row.registration_token_hash):
        return None
    return row


def response(row: Client, *, secret: str | None = None, registration_token: str | None = None) -> dict:
    issuer = settings().server.issuer
    body = {**clients.metadata_of(row), "client_id": row.client_id,
            "client_id_issued_at": int(row.created_at.timestamp()) if row.created_at else None,
            "registration_client_uri": f"{issuer}/register/{row.client_id}"}
    if secret:
        body.update(client_secret=secret, client_secret_expires_at=0)
    if registration_token:
        body["registration_access_token"] = registration_token
    return body
