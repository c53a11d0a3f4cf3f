"""A centre's audit trail in words: what each kind of event says to the people of the centre
("Ada Lovelace invited Grace Hopper as a User"), never its id, and the kinds of event the activity
page filters on."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..pages import profile_name, role_name

#: the activity page's "What happened" filter: each kind and the events it covers
KINDS = {
    "invites": (_l("Invites"), ("account.invited", "account.invite_resent", "account.password_set")),
    "access": (_l("Access and account type"), ("account.profiles_changed", "account.role_changed")),
    "details": (_l("Details and email address"), ("account.updated", "account.email_changed")),
    "removed": (_l("Accounts disabled or removed"), ("account.disabled", "account.enabled", "account.deleted")),
    "signin": (_l("Signing in and out"), ("signin.completed", "signin.password", "signin.mfa", "session.ended")),
    "security": (_l("Locks, passwords and second factors"), (
        "account.locked", "account.unlocked", "password.changed", "password.reset", "password.reset_requested",
        "mfa.reset", "mfa.method_added", "mfa.method_removed", "mfa.preferred_changed",
        "mfa.recovery_code_used", "mfa.recovery_codes_regenerated", "mfa.device_remembered",
        "mfa.device_forgotten")),
    "centre": (_l("The centre"), ("centre.created", "centre.renamed", "centre.suspended", "centre.reinstated")),
}

#: events whose successes are not shown: the steps of a sign-in ("signed in" says it all)
QUIET = ("signin.password", "signin.mfa")
METHODS = {"totp": _l("an authenticator app"), "webauthn": _l("a passkey or security key"),
           "sms": _l("text message codes"), "email": _l("email codes"), "recovery": _l("a recovery code")}


def who(sub: str | None, people: dict, *, email: str | None = None) -> str:
    """A person as the page names them: their name, or what is known of someone removed."""
    if not sub:
        return _("Someone")
    if sub == "cli":
        return _("The exam board")
    if sub.startswith("client:"):
        return _("A connected service")
    account = people.get(sub)
    if account is None:
        return _("%(email)s (account since removed)", email=email) if email else _("an account since removed")
    name = account.name or account.email
    return name if account.centre_id else _("%(name)s (exam board)", name=name)


def _profiles(ids) -> str:
    return ", ".join(profile_name(p) for p in ids)


def describe(event, people: dict) -> str:
    """One audit row as a sentence."""
    details = event.details or {}
    before, after = details.get("before") or {}, details.get("after") or {}
    known_email = (before.get("email") if isinstance(before, dict) else None) or \
        (after.get("email") if isinstance(after, dict) else None)
    actor = who(event.actor, people)
    subject = who(event.subject, people, email=known_email)
    failed = event.outcome != "success"
    name = event.event
    if name == "account.invited":
        return _("%(actor)s invited %(subject)s (account type: %(role)s).", actor=actor, subject=subject,
                 role=role_name(after.get("role", "")))
    if name == "account.invite_resent":
        return _("%(actor)s sent %(subject)s a new invite.", actor=actor, subject=subject)
    if name == "account.password_set":
        return _("%(subject)s accepted their invite and chose a password.", subject=subject) \
            if details.get("first") else _("%(subject)s chose a new password.", subject=subject)
    if name == "account.profiles_changed":
        given = [p for p in after if p not in before] if isinstance(before, list) else []
        taken = [p for p in before if p not in after] if isinstance(before, list) else []
        parts = []
        if given:
            parts.append(_("gave %(profiles)s", profiles=_profiles(given)))
        if taken:
            parts.append(_("took away %(profiles)s", profiles=_profiles(taken)))
        if not parts:
            return _("%(actor)s saved %(subject)s's access without changing it.", actor=actor, subject=subject)
        return _("%(actor)s changed %(subject)s's access: %(changes)s.", actor=actor, subject=subject,
                 changes="; ".join(parts))
    if name == "account.role_changed":
        return _("%(actor)s changed %(subject)s's account type from %(old)s to %(new)s.", actor=actor,
                 subject=subject, old=role_name(before.get("role", "")), new=role_name(after.get("role", "")))
    if name == "account.updated":
        return _("%(actor)s changed %(subject)s's details.", actor=actor, subject=subject)
    if name == "account.email_changed":
        if event.actor == event.subject:
            return _("%(subject)s changed their email address from %(old)s to %(new)s.", subject=subject,
                     old=before.get("email", ""), new=after.get("email", ""))
        return _("%(actor)s changed %(subject)s's email address from %(old)s to %(new)s.", actor=actor,
                 subject=subject, old=before.get("email", ""), new=after.get("email", ""))
    if name == "account.deleted":
        if details.get("reason") == "replaced":
            return _("%(actor)s replaced the Exams Officer, %(email)s.", actor=actor, email=known_email or "")
        return _("%(actor)s removed the account of %(email)s.", actor=actor, email=known_email or "")
    if name == "account.disabled":
        return _("%(actor)s disabled %(subject)s's account.", actor=actor, subject=subject)
    if name == "account.enabled":
        return _("%(actor)s enabled %(subject)s's account again.", actor=actor, subject=subject)
    if name == "account.unlocked":
        return _("%(actor)s unlocked %(subject)s's account.", actor=actor, subject=subject)
    if name == "account.locked":
        if details.get("reason") == "mfa":
            return _("%(subject)s's account was locked after too many wrong second-factor answers.",
                     subject=subject)
        return _("%(subject)s's account was locked after too many wrong passwords.", subject=subject)
    if name == "signin.completed":
        return _("%(subject)s could not sign in: the account is locked.", subject=subject) if failed \
            else _("%(subject)s signed in.", subject=subject)
    if name == "signin.password":
        reason = details.get("reason")
        if not failed:
            return _("%(subject)s entered their password.", subject=subject)
        if reason == "locked":
            return _("Someone tried to sign in as %(subject)s while the account was locked.", subject=subject)
        if reason == "invite_expired":
            return _("%(subject)s tried to sign in with an invite that has expired.", subject=subject)
        if reason == "account_disabled":
            return _("%(subject)s tried to sign in while their account was disabled.", subject=subject)
        return _("A wrong password was entered for %(subject)s.", subject=subject)
    if name == "signin.mfa":
        return _("A wrong second-factor answer was given for %(subject)s.", subject=subject) if failed \
            else _("%(subject)s confirmed it was them with their second factor.", subject=subject)
    if name == "session.ended":
        return _("%(subject)s signed out everywhere.", subject=subject) \
            if details.get("reason") == "sign_out_everywhere" else _("%(subject)s signed out.", subject=subject)
    if name == "password.changed":
        return _("%(subject)s changed their password.", subject=subject)
    if name == "password.reset":
        return _("A password reset for %(subject)s failed.", subject=subject) if failed \
            else _("%(subject)s reset their password.", subject=subject)
    if name == "password.reset_requested":
        return _("%(subject)s asked for a code to reset their password.", subject=subject)
    if name == "mfa.reset":
        return _("%(actor)s reset %(subject)s's second factor: they set up a new one when they next sign in.",
                 actor=actor, subject=subject)
    if name == "mfa.method_added":
        return _("%(subject)s set up %(method)s as a second factor.", subject=subject,
                 method=METHODS.get(details.get("kind"), _("a second factor")))
    if name == "mfa.method_removed":
        return _("%(subject)s removed %(method)s as a second factor.", subject=subject,
                 method=METHODS.get(details.get("kind"), _("a second factor")))
    if name == "mfa.preferred_changed":
        return _("%(subject)s chose %(method)s as their usual second factor.", subject=subject,
                 method=METHODS.get(details.get("kind"), _("a second factor")))
    if name == "mfa.recovery_code_used":
        return _("%(subject)s signed in with a recovery code.", subject=subject)
    if name == "mfa.recovery_codes_regenerated":
        return _("%(subject)s made new recovery codes.", subject=subject)
    if name == "mfa.device_remembered":
        return _("%(subject)s chose not to be asked for a code on one of their devices for a while.", subject=subject)
    if name == "mfa.device_forgotten":
        return _("%(subject)s removed a remembered device: it asks for a code again.", subject=subject) \
            if details.get("reason") == "removed" \
            else _("%(subject)s's remembered devices were forgotten: they ask for a code again.", subject=subject)
    if name == "centre.created":
        return _("%(actor)s set up the centre.", actor=actor)
    if name == "centre.renamed":
        return _("%(actor)s changed the centre's name to %(name)s.", actor=actor,
                 name=after.get("name", "") if isinstance(after, dict) else "")
    if name == "centre.suspended":
        return _("%(actor)s suspended the centre: nobody at it can sign in.", actor=actor)
    if name == "centre.reinstated":
        return _("%(actor)s reinstated the centre.", actor=actor)
    if name == "token.grant_revoked":
        return _("A service's access for %(subject)s was ended.", subject=subject)
    return _("Something else happened to %(subject)s's account.", subject=subject) if event.subject \
        else _("Something else happened at the centre.")
