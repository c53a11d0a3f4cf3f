"""The provider's signing keys as board staff see and change them: each key's state and when it
changes, a warning when a key is due for rotation ([keys] rotate_after_days), rotate, retire. Who
may do it comes from the policy; every change is audited. The key folder itself, and the rules of
a key's life (published before it signs, kept until its tokens expire), are idp.oidc.keys."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from .. import audit, clock, protocol
from ..extensions import db, keys, settings
from ..i18n import lazy_gettext as _l
from ..oidc.keys import KeyringError
from ..policy import checks
from ..policy.decisions import Party
from .errors import Conflict, Invalid, NotFound, action, require


@dataclass(frozen=True)
class KeyView:
    kid: str
    alg: str
    #: published (waiting to sign), signing, retiring (no longer signs; its tokens still validate),
    #: withdrawn (gone from the JWKS)
    state: str
    created_at: datetime
    signs_from: datetime
    #: when it stops (or stopped) signing, if that is set
    stops_signing_at: datetime | None
    #: when it leaves (or left) the JWKS, if that is set
    withdrawn_at: datetime | None
    #: signing, older than the rotation age, and nothing set to take over
    due: bool


@dataclass(frozen=True)
class Overview:
    keys: list[KeyView]
    rotate_after_days: int

    @property
    def due(self) -> list[str]:
        """The algorithms whose signing key is due for rotation."""
        return [k.alg for k in self.keys if k.due]


def _moment(seconds: int | None) -> datetime | None:
    return None if seconds is None else clock.from_timestamp(seconds)


@action("keys.listed")
def overview(actor: Party) -> Overview:
    """Every key in the folder (newest first within each algorithm)."""
    require(checks().may_manage_keys(actor))
    ring, lifetime = keys().folder.load(), settings().max_jwt_lifetime
    rotate_after = settings().keys.rotate_after_days
    now = int(time.time())
    found = []
    for info in sorted(ring.infos, key=lambda k: (protocol.SIGNING_ALGORITHMS.index(k.alg), -k.created_at)):
        state = ring.state(info, lifetime, now)
        stops = ring.stops_signing_at(info)
        withdrawn = info.drop_at if info.drop_at is not None else (None if stops is None else stops + lifetime)
        due = state == "signing" and stops is None and now - info.created_at >= rotate_after * 86400
        found.append(KeyView(info.kid, info.alg, state, _moment(info.created_at), _moment(info.signs_from),
                             _moment(stops), _moment(withdrawn), due))
    return Overview(found, rotate_after)


@action("key.rotated")
def rotate(actor: Party, alg: str):
    """Publish a successor for ``alg``: it starts signing after the publication delay, and the key it
    replaces stays in the JWKS until the tokens it signed have expired."""
    require(checks().may_manage_keys(actor))
    if alg not in protocol.SIGNING_ALGORITHMS:
        raise Invalid(_l("Choose one of: %(algorithms)s.", algorithms=", ".join(protocol.SIGNING_ALGORITHMS)), "alg")
    try:
        info = keys().folder.rotate(alg, unless_waiting=True)
    except KeyringError:
        raise Conflict(_l("A new %(alg)s key is already waiting to take over: it starts signing soon. "
                          "Rotate again once it has.", alg=alg), "alg") from None
    audit.record("key.rotated", actor=actor.sub, kid=info.kid, alg=alg,
                 signs_from=clock.from_timestamp(info.signs_from).isoformat())
    db.session.commit()
    return info


@action("key.retired")
def retire(actor: Party, kid: str, *, immediately: bool = False):
    """Stop a key signing. It stays in the JWKS until its tokens expire, unless ``immediately`` (a
    compromised key): then it leaves at once and every token it signed stops validating."""
    require(checks().may_manage_keys(actor))
    folder = keys().folder
    info = next((k for k in folder.load().infos if k.kid == kid), None) if isinstance(kid, str) else None
    if info is None:
        raise NotFound(_l("There is no signing key with that id."))
    if info.retired_at is not None and (info.drop_at is not None or not immediately):
        raise Conflict(_l("This key has already been retired."))
    try:
        retired = folder.retire(kid, immediately=immediately)
    except KeyringError:
        raise Conflict(_l("This is the only %(alg)s key, so nothing else could sign. Rotate it first, then retire it.",
                          alg=info.alg)) from None
    audit.record("key.retired", actor=actor.sub, kid=kid, alg=info.alg, immediately=immediately)
    db.session.commit()
    return retired
