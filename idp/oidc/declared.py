"""Clients declared as files (clients/registrations/*.toml), imported idempotently.

Every file is read and validated before anything changes; then each client is created,
updated or left alone. Secrets never live in the files: ``client_secret_env`` names an
environment variable, or a new client gets a generated secret that is printed once.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import tomli_w

from .. import protocol, secrets
from ..extensions import db
from ..i18n import english
from . import clients
from .models import Client


class DeclarationError(Exception):
    pass


def _read(path: Path) -> tuple[str, dict, str | None]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeclarationError(f"{path}: not valid TOML ({exc})") from None
    client_id = raw.pop("client_id", None)
    if not clients.is_client_id(client_id):
        raise DeclarationError(f"{path}: client_id: expected 3-64 letters, digits or . _ ~ -")
    env_name = raw.pop("client_secret_env", None)
    secret = None
    if env_name is not None:
        if not isinstance(env_name, str):
            raise DeclarationError(f"{path}: client_secret_env: expected the name of an environment variable")
        secret = os.environ.get(env_name) or None
    try:
        clients.validate_metadata(raw)
    except clients.ClientMetadataError as exc:
        raise DeclarationError(f"{path}: {exc.error}: {english(exc.description)}") from None
    if secret is not None and len(secret) < clients.MIN_SECRET_LENGTH:
        raise DeclarationError(f"{path}: ${env_name}: a client secret must be at least "
                               f"{clients.MIN_SECRET_LENGTH} characters")
    return client_id, raw, secret


def import_folder(folder: str, *, pepper: str) -> list[dict]:
    declarations = [_read(path) for path in sorted(Path(folder).glob("*.toml"))]
    ids = [d[0] for d in declarations]
    if len(ids) != len(set(ids)):
        raise DeclarationError(f"{folder}: a client_id is declared twice")
    results = []
    for client_id, meta, secret in declarations:
        row = db.session.get(Client, client_id)
        if row is None:
            created = clients.create(meta, actor="cli:import", pepper=pepper, client_id=client_id,
                                     client_secret=secret)
            out = {"client_id": client_id, "action": "created"}
            if created.client_secret and secret is None:
                out["client_secret"] = created.client_secret
            results.append(out)
            continue
        wanted = clients.validate_metadata(meta)
        current = {k: getattr(row, k) for k in wanted}
        action = "unchanged"
        if wanted != current:
            clients.update(client_id, meta, actor="cli:import", pepper=pepper)
            action = "updated"
        if secret is not None and not secrets.same(secrets.fast_hash(secret, pepper), row.secret_hash or ""):
            clients.rotate_secret(client_id, actor="cli:import", pepper=pepper, client_secret=secret)
            action = "updated"
        results.append({"client_id": client_id, "action": action})
    return results


def declaration(row: Client, *, secret_env: str | None = None) -> str:
    """The client as a file ``import_folder`` reads back to the same registration: its client_id
    and metadata (never a secret; ``secret_env`` names the environment variable that would hold
    it)."""
    data = {"client_id": row.client_id}
    if secret_env and row.token_endpoint_auth_method in protocol.SECRET_METHODS:
        data["client_secret_env"] = secret_env
    data.update(clients.metadata_of(row))
    return tomli_w.dumps(data)
