"""Revoking what is revoked already writes nothing: /token and /revoke have no rate limit in front
of them, and anyone with an account and a public client (its client_id is no secret) could send a
used code, or a refresh token of theirs to /revoke, again and again, each time another audit row,
UPDATE and store marker (found by an outside probe). The first revocation is audited, and so is a
later one that still finds a live token (a rotation that committed in the meantime)."""

from __future__ import annotations

from sqlalchemy import func, select

from idp.audit import AuditEvent
from idp.extensions import db
from tests.support import authorize, exchange, make_account, make_client, query


def _audit_rows(app, event: str = "token.grant_revoked") -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == event))


def _public_client(app, scope: str):
    with app.app_context():
        make_account()
        return make_client(name="Mobile app", token_endpoint_auth_method="none", scope=scope)


def test_a_used_code_sent_again_and_again_is_audited_once(app, client):
    rp = _public_client(app, "openid")
    response, verifier = authorize(client, rp)
    code = query(response.location)["code"]
    assert exchange(client, rp, code, verifier, auth="none").status_code == 200
    for _ in range(50):
        answer = exchange(client, rp, code, verifier, auth="none")
        assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert _audit_rows(app) == 1


def test_one_refresh_token_revoked_again_and_again_is_audited_once(app, client):
    rp = _public_client(app, "openid offline_access")
    response, verifier = authorize(client, rp, scope="openid offline_access")
    refresh_token = exchange(client, rp, query(response.location)["code"], verifier,
                             auth="none").get_json()["refresh_token"]
    for _ in range(50):
        assert client.post("/revoke", data={"token": refresh_token, "client_id": rp.client_id}).status_code == 200
    assert _audit_rows(app) == 1
