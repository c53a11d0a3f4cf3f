"""`idp mfa ...`: operator commands for second factors."""

from __future__ import annotations

import click

from .base import emit, with_app


@click.group()
def mfa():
    """Second factors."""


@mfa.command("rekey")
@with_app
def rekey(app):
    """Re-encrypt every TOTP secret with the first key of [mfa] encryption_keys (after putting a
    new key first). Older keys can be removed from the setting once this has run."""
    from sqlalchemy import select

    from .. import audit
    from ..extensions import db
    from ..mfa.crypto import box
    from ..mfa.models import MfaMethod

    sealer = box()
    changed = 0
    for method in db.session.scalars(select(MfaMethod).where(MfaMethod.kind == "totp")):
        if sealer.needs_rekey(method.secret):
            method.secret = sealer.encrypt(sealer.decrypt(method.secret, method.id.encode()), method.id.encode())
            changed += 1
    audit.record("mfa.secrets_rekeyed", actor="cli", count=changed)
    db.session.commit()
    emit({"rekeyed": changed})
