"""The refusals of administration: one error family, a "who may act" check, and the wrapper that
makes each administrative action all-or-nothing with its refusal audited."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging

from limits import parse
from sqlalchemy.exc import IntegrityError

from .. import audit, policy
from ..extensions import db
from ..i18n import Text, english, lazy_gettext
from ..policy.decisions import Decision
from ..records import Record
from ..store import StoreUnavailable

log = logging.getLogger(__name__)

#: an actor's refused actions, counted over the window of ``[rate_limits]
#: refused_admin_actions_per_account`` (the lifetime is the limit's, given at each count)
REFUSALS = Record("admin-refusals", ttl=600)

#: the one row that stands for the refusals of an actor beyond their budget, in that window
REFUSALS_UNRECORDED = "admin.refusals_unrecorded"

#: inside an action already: its refusal is audited once, by the outermost, under its event
_inside_action = contextvars.ContextVar("inside_action", default=False)


class AdminError(Exception):
    """A refused or invalid administrative action. ``kind`` maps to an HTTP status. ``message`` is
    usually a lazy string (idp.i18n): a page shows it in its own language, the admin API, the audit
    trail and the command line in English (``idp.i18n.english``)."""

    kind = "invalid"

    def __init__(self, message: Text, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(AdminError):
    kind = "invalid"


class Denied(AdminError):
    kind = "denied"


class SecondFactorNeeded(Exception):
    """Allowed only with a second factor passed within ``[mfa] fresh_seconds``. Not an AdminError,
    so no form shows it as a message: a page sends the person to pass one and come back (the
    console's and the board's wrappers), the admin API answers 403."""

    kind = "denied"

    def __init__(self, message: Text) -> None:
        super().__init__(message)
        self.message, self.field = message, None


class NotFound(AdminError):
    kind = "not_found"


class Conflict(AdminError):
    kind = "conflict"


def require(decision: Decision) -> None:
    """Go on if the policy allows it; else refuse with the policy's own reason."""
    if not decision:
        raise Denied(decision.reason)


@contextlib.contextmanager
def all_or_nothing(event: str, actor, about: dict | None = None):
    """What ``action`` makes of a service function, for a block: on any error nothing written in it
    stays in the session, a unique constraint broken at the database is a Conflict, and a refusal
    is audited as ``denied`` under ``event`` (with ``about``: what it was about, e.g. the target),
    the actor told nothing more than the refusal itself. The consoles' checks before a form is
    shown or taken (``directory.open_person_action``) refuse through here as the services do. A
    block inside another (a read the action starts with) leaves the refusal to the outer one."""
    outermost = not _inside_action.get()
    entered = _inside_action.set(True)
    try:
        yield
    except IntegrityError:
        db.session.rollback()
        raise Conflict(lazy_gettext("Someone else made a change here at the same moment. Check what "
                                    "is saved now and try again.")) from None
    except Exception as exc:
        db.session.rollback()
        if isinstance(exc, Denied) and outermost:
            _audit_refusal(event, actor, exc, about)
        raise
    finally:
        _inside_action.reset(entered)


def _audit_refusal(event: str, actor, refusal: Denied, about: dict | None) -> None:
    """Audit a refusal, as long as the actor is within their budget of refusals
    (``[rate_limits] refused_admin_actions_per_account``, counted in the store: atomic across
    processes). Refusals cost the actor nothing else, so without a budget one account (or a
    script holding its session) could write audit rows as fast as it can send requests, and
    bury the trail. The first refusal past the budget is recorded as ``admin.refusals_unrecorded``
    (the board's signal that someone is probing); the rest of that window's are refused all the
    same and not recorded one by one. A store out of reach counts nothing: the refusal is recorded."""
    limit = parse(policy.current().sec("rate_limits").refused_admin_actions_per_account)
    try:
        count = REFUSALS.incr(actor.sub, limit.get_expiry())
    except StoreUnavailable:
        count = 1
    if count <= limit.amount:
        audit.record(event, actor=actor.sub, outcome="denied", reason=english(refusal.message),
                     **{k: v for k, v in (about or {}).items() if v})
    elif count == limit.amount + 1:
        audit.record(REFUSALS_UNRECORDED, actor=actor.sub, outcome="denied", first_unrecorded=event,
                     reason=f"more than {limit.amount} refused actions within {limit.get_expiry()} seconds: "
                            "the rest of that time's are not recorded one by one")
        log.warning("an actor's refused actions are past their budget; the rest of the window's are not audited",
                    extra={"actor": actor.sub, "event": event})
    else:
        return
    db.session.commit()


def action(event: str):
    """Make a service function one all-or-nothing action: on any error nothing it wrote stays in the
    session (so a later commit cannot save half of it), and a refusal is audited as ``denied``.

    A unique constraint broken at the database is a change made at the same moment by someone else
    (the same address invited twice at once, say: each check passed before the other committed):
    a Conflict the person can act on, never a 500."""

    def wrap(func):
        @functools.wraps(func)
        def run(actor, *args, **kwargs):
            with all_or_nothing(event, actor, refused_about(args, kwargs)):
                return func(actor, *args, **kwargs)

        return run

    return wrap


def refused_about(args, kwargs) -> dict:
    """What a refused action was about, for its audit row: the account, client or centre it named."""
    target = kwargs.get("sub") or kwargs.get("client_id") or kwargs.get("centre") or \
        (args[0] if args and isinstance(args[0], str) else None)
    return {"target": target}
