"""Client services (relying parties) as board staff manage them: who may do it (the policy), and
an audit row for every refusal. The registry itself (metadata rules, secrets, the per-process
cache) is idp.oidc.clients; RFC 7591 self-registration with an initial access token goes there
directly, the token being its authorisation."""

from __future__ import annotations

from ..extensions import pepper
from ..i18n import N_
from ..i18n import lazy_gettext as _l
from ..oidc import clients, declared, registration
from ..oidc.models import Client, InitialAccessToken
from ..policy import checks
from ..policy.decisions import Party
from .errors import Invalid, NotFound, action, require


def _registry(call):
    """Run a registry call; its metadata errors become this package's refusals."""
    try:
        return call()
    except clients.ClientMetadataError as exc:
        if exc.error == "invalid_client_id":
            raise NotFound(exc.description) from None
        raise Invalid(exc.description, exc.error) from None


def _row(client_id: str) -> Client:
    row = clients.get(client_id)
    if row is None:
        raise NotFound(_l("There is no such client."))
    return row


@action("client.listed")
def list_all(actor: Party) -> list[Client]:
    require(checks().may_manage_clients(actor))
    return clients.all_clients()


@action("client.read")
def get(actor: Party, client_id: str) -> Client:
    require(checks().may_manage_clients(actor))
    return _row(client_id)


@action("client.registered")
def create(actor: Party, meta: dict, *, client_id: str | None = None, logo: bytes | None = None) -> clients.Created:
    """Register a client (with its ``logo``, if given); the secret (confidential clients) is in the
    result, once."""
    require(checks().may_manage_clients(actor))
    return _registry(lambda: clients.create(meta, actor=actor.sub, pepper=pepper(), client_id=client_id,
                                            logo=logo))


@action("client.updated")
def update(actor: Party, client_id: str, meta: dict, *, logo: bytes | None = None,
           remove_logo: bool = False) -> clients.Created:
    require(checks().may_manage_clients(actor))
    _row(client_id)
    return _registry(lambda: clients.update(client_id, meta, actor=actor.sub, pepper=pepper(), logo=logo,
                                            remove_logo=remove_logo))


@action("client.secret_rotated")
def rotate_secret(actor: Party, client_id: str, *, grace_seconds: int = 0) -> str:
    """A new secret (shown once); the old one keeps working for ``grace_seconds`` (0: stops now)."""
    require(checks().may_manage_clients(actor))
    _row(client_id)
    return _registry(lambda: clients.rotate_secret(client_id, actor=actor.sub, pepper=pepper(),
                                                   grace_seconds=grace_seconds))


@action("client.read")
def declaration(actor: Party, client_id: str) -> str:
    """The client as the TOML file `idp client import` reads (no secret in it)."""
    require(checks().may_manage_clients(actor))
    row = _row(client_id)
    return declared.declaration(row, secret_env=secret_env_name(row.client_id))


def secret_env_name(client_id: str) -> str:
    """The environment variable a declaration names for the client's secret (not IDP_...: the
    settings refuse unknown IDP_ variables)."""
    return "CLIENT_SECRET_" + "".join(c if c.isalnum() else "_" for c in client_id).upper()


@action("client.disabled")
def set_disabled(actor: Party, client_id: str, disabled: bool) -> Client:
    require(checks().may_manage_clients(actor))
    return _registry(lambda: clients.set_disabled(client_id, disabled, actor=actor.sub))


@action("client.deleted")
def delete(actor: Party, client_id: str) -> None:
    require(checks().may_manage_clients(actor))
    if not clients.delete(client_id, actor=actor.sub):
        raise NotFound(_l("There is no such client."))


#: what an initial access token may be issued for: 1 minute to 30 days, 1 to 1000 registrations
TOKEN_LIFETIME = (60, 30 * 86400)
TOKEN_USES = (1, 1000)


@action("client.initial_token_issued")
def issue_initial_token(actor: Party, *, lifetime_seconds: int, uses: int) -> str:
    """An initial access token for RFC 7591 registration (shown once)."""
    require(checks().may_manage_clients(actor))
    for value, (low, high), field, refusal in (
            (lifetime_seconds, TOKEN_LIFETIME, "lifetime", N_("Choose %(low)d to %(high)d seconds.")),
            (uses, TOKEN_USES, "uses", N_("Choose %(low)d to %(high)d registrations."))):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Invalid(_l(refusal, low=low, high=high), field)
    return registration.issue_initial_token(actor=actor.sub, lifetime_seconds=lifetime_seconds, uses=uses)


@action("client.initial_tokens_listed")
def initial_tokens(actor: Party) -> list[InitialAccessToken]:
    require(checks().may_manage_clients(actor))
    return registration.initial_tokens()


@action("client.initial_token_revoked")
def revoke_initial_token(actor: Party, token_hash: str) -> None:
    """Delete an initial access token (named by its stored hash, as initial_tokens lists it)."""
    require(checks().may_manage_clients(actor))
    if not registration.revoke_initial_token(token_hash, actor=actor.sub):
        raise NotFound(_l("There is no such initial access token (it may have been revoked already)."))


@action("client.imported")
def import_folder(actor: Party, folder: str) -> list[dict]:
    """Create or update the clients declared as files in ``folder`` (idempotent)."""
    require(checks().may_manage_clients(actor))
    try:
        return declared.import_folder(folder, pepper=pepper())
    except declared.DeclarationError as exc:
        raise Invalid(str(exc)) from None
