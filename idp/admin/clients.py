"""Client services (relying parties) as board staff manage them: who may do it (the policy), and
an audit row for every refusal. The registry itself (metadata rules, secrets, the per-process
cache) is idp.oidc.clients; RFC 7591 self-registration with an initial access token goes there
directly, the token being its authorisation."""

from __future__ import annotations

from ..extensions import pepper
from ..oidc import clients, declared, registration
from ..oidc.models import Client
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
    row = clients.get(client_id) if isinstance(client_id, str) and len(client_id) <= 64 else None
    if row is None:
        raise NotFound("There is no such client.")
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
def create(actor: Party, meta: dict, *, client_id: str | None = None) -> clients.Created:
    """Register a client; the secret (confidential clients) is in the result, once."""
    require(checks().may_manage_clients(actor))
    return _registry(lambda: clients.create(meta, actor=actor.sub, pepper=pepper(), client_id=client_id))


@action("client.updated")
def update(actor: Party, client_id: str, meta: dict) -> clients.Created:
    require(checks().may_manage_clients(actor))
    _row(client_id)
    return _registry(lambda: clients.update(client_id, meta, actor=actor.sub, pepper=pepper()))


@action("client.secret_rotated")
def rotate_secret(actor: Party, client_id: str) -> str:
    require(checks().may_manage_clients(actor))
    return _registry(lambda: clients.rotate_secret(client_id, actor=actor.sub, pepper=pepper()))


@action("client.disabled")
def set_disabled(actor: Party, client_id: str, disabled: bool) -> Client:
    require(checks().may_manage_clients(actor))
    return _registry(lambda: clients.set_disabled(client_id, disabled, actor=actor.sub))


@action("client.deleted")
def delete(actor: Party, client_id: str) -> None:
    require(checks().may_manage_clients(actor))
    if not clients.delete(client_id, actor=actor.sub):
        raise NotFound("There is no such client.")


@action("client.initial_token_issued")
def issue_initial_token(actor: Party, *, lifetime_seconds: int, uses: int) -> str:
    """An initial access token for RFC 7591 registration (shown once)."""
    require(checks().may_manage_clients(actor))
    return registration.issue_initial_token(actor=actor.sub, lifetime_seconds=lifetime_seconds, uses=uses)


@action("client.imported")
def import_folder(actor: Party, folder: str) -> list[dict]:
    """Create or update the clients declared as files in ``folder`` (idempotent)."""
    require(checks().may_manage_clients(actor))
    try:
        return declared.import_folder(folder, pepper=pepper())
    except declared.DeclarationError as exc:
        raise Invalid(str(exc)) from None
