"""Ending someone's access: the one function every place that does it calls (password reset and
change, sign out everywhere, an MFA reset, a deletion, a replaced Exams Officer, a suspended
centre, a changed email address)."""

from __future__ import annotations

from .. import events
from . import remembered, sessions
from .models import Account, SsoSession


def end_access(account: Account, *, keep_sid: str | None = None) -> list[SsoSession]:
    """Every live session ends (but ``keep_sid``'s, when a password is changed in it); refresh
    tokens are revoked and access tokens issued so far stop at introspection and userinfo; every
    relying party of an ended session gets a back-channel logout once this commits; every
    remembered device is forgotten (the next sign-in asks for a second factor again). The caller
    commits (with the change that ends the access). A ``keep_sid`` ended meanwhile keeps nothing:
    the tokens are stopped as if none were kept (else the change's marker, sparing it, would
    replace the stronger one its ending wrote)."""
    ended, kept = sessions.end_all(account.id, keep_sid=keep_sid)
    remembered.forget_all(account)
    events.access_ended.send(account, keep_sid=keep_sid if kept else None)
    return ended
