"""Named events that let a lower layer announce what happened without knowing who reacts.

The account services end sessions and access; the protocol layer (idp.oidc, which connects its
receivers in ``oidc.init_app``) revokes tokens and sends back-channel logout. Receivers run in
the sender's transaction: what they write commits or rolls back with the change that caused it.

    session_ended   sender: the SsoSession that has just been ended
    access_ended    sender: the Account whose access ends; keep_sid: a session that stays (or None)
"""

from __future__ import annotations

from blinker import Namespace

_events = Namespace()

session_ended = _events.signal("session-ended")
access_ended = _events.signal("access-ended")
