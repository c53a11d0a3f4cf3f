"""`idp centre|eo|account ...`: board staff's command line. Each prints one JSON object or list."""

from __future__ import annotations

import click

from .. import policy


def register(main, with_app, emit, fail) -> None:
    from ..accounts.emails import send_invite
    from . import services

    def run(action):
        try:
            return action()
        except services.AdminError as exc:
            fail(exc.message, 1)

    def on_account(email, action, **kwargs):
        """Board staff (the CLI) doing ``action(actor, sub, ...)`` to the account with this email."""
        account_row = run(lambda: services.account_by_email(email))
        return run(lambda: action(services.operator(), account_row.sub, **kwargs))

    def centre_json(c):
        return {"number": c.number, "name": c.name, "suspended": c.suspended}

    @main.group()
    def centre():
        """Exam centres."""

    @centre.command("create")
    @click.option("--number", required=True, help="5-digit centre number.")
    @click.option("--name", required=True)
    @with_app
    def centre_create(app, number, name):
        emit(centre_json(run(lambda: services.create_centre(services.operator(), number, name))))

    @centre.command("list")
    @with_app
    def centre_list(app):
        emit([centre_json(c) for c in services.list_centres(services.operator())])

    @centre.command("suspend")
    @click.argument("number")
    @click.option("--reinstate", is_flag=True, help="Lift the suspension instead.")
    @with_app
    def centre_suspend(app, number, reinstate):
        """Stop (or restore) sign-in and token refresh for every account of a centre."""
        emit(centre_json(run(lambda: services.set_centre_suspended(services.operator(), number, not reinstate))))

    def person_options(func):
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

    def eo_json(invited):
        a = invited.account
        return {"sub": a.sub, "email": a.email, "status": a.status, "role": a.role, "centre": a.centre_number}

    @main.group()
    def eo():
        """Exams Officers (one per centre; created and replaced by board staff)."""

    @eo.command("create")
    @person_options
    @with_app
    def eo_create(app, centre, email, given_name, family_name, title, job_role, language, phone):
        """Invite a centre's Exams Officer; the invite email carries the temporary password."""
        fields = dict(given_name=given_name, family_name=family_name, title=title, job_role=job_role,
                      language=language, phone=phone)
        emit(eo_json(run(lambda: services.invite(
            services.operator(), email=email, role=policy.current().centre_head_role, centre=centre,
            fields=fields, send=send_invite))))

    @eo.command("replace")
    @person_options
    @with_app
    def eo_replace(app, centre, email, given_name, family_name, title, job_role, language, phone):
        """Replace the centre's Exams Officer in one step (the old account is deleted)."""
        fields = dict(given_name=given_name, family_name=family_name, title=title, job_role=job_role,
                      language=language, phone=phone)
        emit(eo_json(run(lambda: services.replace(
            services.operator(), role=policy.current().centre_head_role, centre=centre, email=email,
            fields=fields, send=send_invite))))

    @main.group()
    def account():
        """People's accounts."""

    @account.command("list")
    @click.option("--centre", default=None, help="Only this centre.")
    @click.option("--search", "q", default="", help="Match email or name.")
    @with_app
    def account_list(app, centre, q):
        page = run(lambda: services.search(services.operator(), centre=centre, q=q, page=1, per_page=10_000))
        emit([services.describe(a) for a in page.items])

    @account.command("show")
    @click.argument("email")
    @with_app
    def account_show(app, email):
        emit(services.describe(run(lambda: services.account_by_email(email))))

    @account.command("reset-mfa")
    @click.argument("email")
    @with_app
    def account_reset_mfa(app, email):
        """Remove every second factor: enrolment is forced at the next sign-in."""
        from ..mfa import services as mfa

        emit(services.describe(on_account(email, mfa.reset)))

    @account.command("unlock")
    @click.argument("email")
    @with_app
    def account_unlock(app, email):
        """Clear a lockout now."""
        emit(services.describe(on_account(email, services.unlock)))

    @account.command("resend-invite")
    @click.argument("email")
    @with_app
    def account_resend_invite(app, email):
        """A new temporary password and expiry, emailed; the old one stops working."""
        emit(services.describe(on_account(email, services.resend_invite, send=send_invite).account))

    @main.group("board")
    def board():
        """Board staff accounts."""

    @board.command("create")
    @click.option("--email", required=True)
    @click.option("--given-name", required=True)
    @click.option("--family-name", required=True)
    @with_app
    def board_create(app, email, given_name, family_name):
        """Invite a board staff member (the first one bootstraps the board console and API)."""
        fields = dict(given_name=given_name, family_name=family_name)
        invited = run(lambda: services.invite(services.operator(), email=email,
                                              role=policy.current().operator_role, centre=None,
                                              fields=fields, send=send_invite))
        emit({"sub": invited.account.sub, "email": invited.account.email, "status": invited.account.status})
