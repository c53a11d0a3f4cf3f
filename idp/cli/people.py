"""`idp centre|eo|account|board ...`: board staff's command line. Each prints one JSON object or list.
The command line acts as board staff (``operator``) through the same administration services as
the API and the consoles."""

from __future__ import annotations

import click

from .. import policy
from ..accounts.emails import send_invite
from ..admin import centres as admin_centres
from ..admin import directory, people
from .base import emit, operator, refusals, with_app


def _centre_json(c) -> dict:
    return {"number": c.number, "name": c.name, "suspended": c.suspended}


def _on_account(email: str, action, **kwargs):
    """Board staff (the command line) doing ``action(actor, sub, ...)`` to the account with this email."""
    found = refusals(lambda: people.account_by_email(email))
    return refusals(lambda: action(operator(), found.sub, **kwargs))


# ------------------------------------------------------------------ centres
@click.group()
def centre():
    """Exam centres."""


@centre.command("create")
@click.option("--number", required=True, help="5-digit centre number.")
@click.option("--name", required=True)
@with_app
def centre_create(app, number, name):
    emit(_centre_json(refusals(lambda: admin_centres.create_centre(operator(), number, name))))


@centre.command("list")
@with_app
def centre_list(app):
    emit([_centre_json(c) for c in refusals(lambda: admin_centres.list_centres(operator()))])


@centre.command("rename")
@click.argument("number")
@click.option("--name", required=True)
@with_app
def centre_rename(app, number, name):
    emit(_centre_json(refusals(lambda: admin_centres.rename_centre(operator(), number, name))))


@centre.command("suspend")
@click.argument("number")
@click.option("--reinstate", is_flag=True, help="Lift the suspension instead.")
@with_app
def centre_suspend(app, number, reinstate):
    """Stop (or restore) sign-in and token refresh for every account of a centre."""
    emit(_centre_json(refusals(lambda: admin_centres.set_centre_suspended(operator(), number, not reinstate))))


# ------------------------------------------------------------------ Exams Officers
def _person_options(func):
    for option in reversed([
        click.option("--centre", required=True, help="Centre number."),
        click.option("--email", required=True),
        click.option("--given-name", required=True),
        click.option("--family-name", required=True),
        click.option("--title", default=""),
        click.option("--job-role", default=""),
        click.option("--language", type=click.Choice(["en", "cy"]), default="en"),
        click.option("--phone", default="", help="E.164, e.g. +447700900123."),
    ]):
        func = option(func)
    return func


def _eo_json(invited) -> dict:
    a = invited.account
    return {"sub": a.sub, "email": a.email, "status": a.status, "role": a.role, "centre": a.centre_number}


@click.group()
def eo():
    """Exams Officers (one per centre; created and replaced by board staff)."""


@eo.command("create")
@_person_options
@with_app
def eo_create(app, centre, email, **fields):
    """Invite a centre's Exams Officer; the invite email carries the temporary password."""
    emit(_eo_json(refusals(lambda: people.invite(
        operator(), email=email, role=policy.current().centre_head_role, centre=centre, fields=fields,
        send=send_invite))))


@eo.command("replace")
@_person_options
@click.option("--keep-as", default=None, metavar="TYPE",
              help="Keep the old Exams Officer at the centre as this type of account (e.g. admin), if the "
                   "centre has room; without it the old account is deleted.")
@with_app
def eo_replace(app, centre, email, keep_as, **fields):
    """Replace the centre's Exams Officer in one step (the old account is deleted, or kept as --keep-as)."""
    emit(_eo_json(refusals(lambda: people.replace(
        operator(), role=policy.current().centre_head_role, centre=centre, email=email, fields=fields,
        send=send_invite, keep_as=keep_as))))


# ------------------------------------------------------------------ accounts
@click.group()
def account():
    """People's accounts."""


@account.command("list")
@click.option("--centre", default=None, help="Only this centre.")
@click.option("--search", "q", default="", help="Match email or name.")
@with_app
def account_list(app, centre, q):
    found, number = [], 1
    while True:
        page = refusals(lambda n=number: directory.search(operator(), centre=centre, q=q, page=n,
                                                           per_page=directory.MAX_PER_PAGE))
        found += [directory.describe(a) for a in page.items]
        if number >= page.pages:
            break
        number += 1
    emit(found)


@account.command("show")
@click.argument("email")
@with_app
def account_show(app, email):
    emit(directory.describe(refusals(lambda: people.account_by_email(email))))


REASON = click.option("--reason", default=None,
                      help="Why (a helpdesk ticket, say): kept in the audit trail; board staff must give one.")


@account.command("reset-mfa")
@click.argument("email")
@REASON
@with_app
def account_reset_mfa(app, email, reason):
    """Remove every second factor: enrolment is forced at the next sign-in."""
    emit(directory.describe(_on_account(email, people.reset_mfa, reason=reason)))


@account.command("unlock")
@click.argument("email")
@REASON
@with_app
def account_unlock(app, email, reason):
    """Clear a lockout now."""
    emit(directory.describe(_on_account(email, people.unlock, reason=reason)))


@account.command("disable")
@click.argument("email")
@REASON
@with_app
def account_disable(app, email, reason):
    """Stop an account signing in (sessions end, tokens revoked); nothing is deleted."""
    emit(directory.describe(_on_account(email, people.disable, reason=reason)))


@account.command("enable")
@click.argument("email")
@REASON
@with_app
def account_enable(app, email, reason):
    """Let a disabled account sign in again."""
    emit(directory.describe(_on_account(email, people.enable, reason=reason)))


@account.command("resend-invite")
@click.argument("email")
@REASON
@with_app
def account_resend_invite(app, email, reason):
    """A new temporary password and expiry, emailed; the old one stops working."""
    emit(directory.describe(_on_account(email, people.resend_invite, send=send_invite, reason=reason).account))


@account.command("change-email")
@click.argument("email")
@click.argument("new_email")
@REASON
@with_app
def account_change_email(app, email, new_email, reason):
    """The person signs in with NEW_EMAIL from now on; both addresses are emailed and every session
    of theirs ends."""
    emit(directory.describe(_on_account(email, people.change_email, new_email=new_email, reason=reason)))


# ------------------------------------------------------------------ board staff
@click.group("board")
def board():
    """Board staff accounts."""


@board.command("create")
@click.option("--email", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--role", default=None, metavar="TYPE",
              help="An account type that belongs to no centre (default: board staff; e.g. helpdesk).")
@with_app
def board_create(app, email, given_name, family_name, role):
    """Invite a board staff member (the first one bootstraps the board console and API) or a
    helpdesk account."""
    fields = dict(given_name=given_name, family_name=family_name)
    role = role or policy.current().operator_role
    invited = refusals(lambda: people.invite(operator(), email=email, role=role, centre=None, fields=fields,
                                             send=send_invite))
    emit({"sub": invited.account.sub, "email": invited.account.email, "status": invited.account.status,
          "role": invited.account.role})


COMMANDS = (centre, eo, account, board)
