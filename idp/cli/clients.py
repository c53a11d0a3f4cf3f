"""`idp client ...`: register and inspect relying parties (client services) from the command line,
as board staff, through the same administration services as the API and the board console."""

from __future__ import annotations

import json

import click

from .. import protocol
from ..admin import clients as admin_clients
from ..admin.errors import AdminError
from ..extensions import settings
from ..i18n import english
from ..oidc import clients
from .base import emit, fail, operator, with_app


def refusals(action):
    """Run ``action()``; a refusal is one line and exit status 1, naming the RFC 7591 error of a
    metadata problem first (``invalid_client_metadata: ...``), as scripts expect."""
    try:
        return action()
    except AdminError as exc:
        code = exc.field if exc.field and exc.field.startswith("invalid_") else None
        message = english(exc.message)
        fail(f"{code}: {message}" if code else message, 1)


@click.group()
def client():
    """Relying parties (client services)."""

@client.command("create")
@click.option("--name", required=True, help="Name shown to people and in the audit trail.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True, help="Repeatable.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(protocol.GRANT_TYPES),
              help="Repeatable; default authorization_code + refresh_token.")
@click.option("--scope", default=None, help='Space-separated scopes the client may request.')
@click.option("--auth-method", default=protocol.CLIENT_SECRET_BASIC, show_default=True,
              type=click.Choice(protocol.AUTH_METHODS))
@click.option("--jwks-uri", default=None, help="For private_key_jwt.")
@click.option("--jwks-file", type=click.File("r"), default=None, help="For private_key_jwt: a JWK Set file.")
@click.option("--id-token-alg", type=click.Choice(protocol.SIGNING_ALGORITHMS), default=None)
@click.option("--allowed-profile", "allowed_profiles", multiple=True,
              help="Limit the profiles claim to these (repeatable); default all.")
@click.option("--backchannel-logout-uri", default=None)
@click.option("--require-par", is_flag=True,
              help="Its authorization requests must be pushed first (RFC 9126).")
@click.option("--require-dpop", is_flag=True,
              help="It gets tokens only with a DPoP proof: every token bound to its key (RFC 9449).")
@with_app
def create(app, name, redirect_uris, post_logout, grant_types, scope, auth_method, jwks_uri, jwks_file,
           id_token_alg, allowed_profiles, backchannel_logout_uri, require_par, require_dpop):
    """Register a client. Prints one JSON object; the secret is shown only here."""
    meta = {"client_name": name, "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout), "token_endpoint_auth_method": auth_method}
    if grant_types:
        meta["grant_types"] = list(grant_types)
    if scope is not None:
        meta["scope"] = scope
    if jwks_uri:
        meta["jwks_uri"] = jwks_uri
    if jwks_file:
        try:
            meta["jwks"] = json.load(jwks_file)
        except ValueError as exc:
            fail(f"--jwks-file: not valid JSON ({exc})")
    if id_token_alg:
        meta["id_token_signed_response_alg"] = id_token_alg
    if allowed_profiles:
        meta["allowed_profiles"] = list(allowed_profiles)
    if backchannel_logout_uri:
        meta["backchannel_logout_uri"] = backchannel_logout_uri
    if require_par:
        meta["require_pushed_authorization_requests"] = True
    if require_dpop:
        meta["dpop_bound_access_tokens"] = True
    created = refusals(lambda: admin_clients.create(operator(), meta))
    emit(_with_secret(created.client, created.client_secret))


def _with_secret(row, secret) -> dict:
    out = clients.describe(row)
    if secret:
        out["client_secret"] = secret
    return out


@client.command("list")
@with_app
def list_(app):
    """All clients (never their secrets)."""
    emit([clients.describe(row) for row in refusals(lambda: admin_clients.list_all(operator()))])


@client.command("show")
@click.argument("client_id")
@with_app
def show(app, client_id):
    emit(clients.describe(refusals(lambda: admin_clients.get(operator(), client_id))))


@client.command("update")
@click.argument("client_id")
@click.option("--set", "assignments", multiple=True, metavar="KEY=JSON",
              help='Change one metadata field, e.g. --set \'redirect_uris=["https://a/cb"]\' (repeatable).')
@with_app
def update(app, client_id, assignments):
    """Change a client's metadata; everything not named stays as it is."""
    meta = clients.metadata_of(refusals(lambda: admin_clients.get(operator(), client_id)))
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: expected KEY=JSON")
        try:
            meta[key] = json.loads(raw)
        except ValueError:
            meta[key] = raw  # a bare string
    updated = refusals(lambda: admin_clients.update(operator(), client_id, meta))
    emit(_with_secret(updated.client, updated.client_secret))


@client.command("rotate-secret")
@click.argument("client_id")
@click.option("--grace", default=0, show_default=True, type=click.IntRange(0, clients.MAX_GRACE_SECONDS),
              help="Seconds the old secret keeps working (so the service can change over).")
@with_app
def rotate_secret(app, client_id, grace):
    """Issue a new secret (shown once); the old one stops working at once, or after --grace seconds."""
    secret = refusals(lambda: admin_clients.rotate_secret(operator(), client_id, grace_seconds=grace))
    emit({"client_id": client_id, "client_secret": secret, "old_secret_works_for_seconds": grace})


@client.command("disable")
@click.argument("client_id")
@click.option("--enable", is_flag=True, help="Enable it again instead.")
@with_app
def disable(app, client_id, enable):
    """Stop (or restore) a client: its tokens stop at introspection and it cannot get new ones."""
    emit(clients.describe(refusals(lambda: admin_clients.set_disabled(operator(), client_id, not enable))))


@client.command("initial-token")
@click.option("--expires-in", default=86400, show_default=True, type=click.IntRange(60, 30 * 86400),
              help="Seconds.")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, 1000))
@with_app
def initial_token(app, expires_in, uses):
    """An initial access token for RFC 7591 registration at /register (shown once)."""
    token = refusals(lambda: admin_clients.issue_initial_token(operator(), lifetime_seconds=expires_in, uses=uses))
    emit({"initial_access_token": token, "expires_in": expires_in, "uses": uses,
          "registration_endpoint": settings().server.issuer + "/register"})


@client.command("initial-tokens")
@with_app
def initial_tokens(app):
    """The initial access tokens kept (never the tokens themselves): who issued each, until when,
    and how many registrations it may still make; ``id`` names it to revoke-initial-token."""
    emit([{"id": t.token_hash, "created_by": t.created_by, "created_at": t.created_at.isoformat(),
           "expires_at": t.expires_at.isoformat(), "uses_left": t.uses_left}
          for t in refusals(lambda: admin_clients.initial_tokens(operator()))])


@client.command("revoke-initial-token")
@click.argument("token_id")
@with_app
def revoke_initial_token(app, token_id):
    """Delete an initial access token (its id from initial-tokens): it registers nothing more."""
    refusals(lambda: admin_clients.revoke_initial_token(operator(), token_id))
    emit({"id": token_id, "revoked": True})


@client.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@with_app
def import_(app, folder):
    """Create or update the clients declared in FOLDER/*.toml, idempotently. A file's
    client_secret_env names the environment variable holding its secret; without one a new
    confidential client gets a generated secret, printed once."""
    emit(refusals(lambda: admin_clients.import_folder(operator(), folder)))


@client.command("delete")
@click.argument("client_id")
@with_app
def delete(app, client_id):
    """Delete a client; its tokens stop working at once."""
    refusals(lambda: admin_clients.delete(operator(), client_id))
    emit({"client_id": client_id, "deleted": True})
