"""Changing someone's email address (from the admin service, the API and the command line, and by
the person themselves with a code sent to the new address), and changes two people make at once:
nothing is lost, the second is told."""

from __future__ import annotations

import concurrent.futures
import re

import pytest

from idp.admin import directory, errors, people
from idp.extensions import db
from tests.support import ADMIN_API_SCOPE, PASSWORD, code_flow, make_account, make_admin_client

EO, ADMIN, OTHER_ADMIN, USER = "eo@centre.example", "admin@centre.example", "admin2@centre.example", "user@centre.example"


@pytest.fixture
def people_here(mail_app):
    with mail_app.app_context():
        subs = {email: make_account(email, role=role).sub for email, role in
                ((EO, "eo"), (ADMIN, "admin"), (OTHER_ADMIN, "admin"), (USER, "user"))}
    return subs


def _as(app, email, action):
    with app.app_context():
        actor = people.party_of(people.account_by_email(email))
        return action(actor)


def test_an_admin_changes_a_users_email(mail_app, smtp, browser, kit, people_here):
    app = mail_app
    signed_in = browser(app)
    assert signed_in.sign_in_fully(USER, PASSWORD).location.endswith("/account")
    _as(app, ADMIN, lambda a: people.change_email(a, people_here[USER], "  New.Address@Centre.example "))
    # both addresses are told
    assert "New.Address@Centre.example" in smtp.take(USER, "Your sign-in email address has been changed").text
    assert "now the one you sign in" in smtp.take("new.address@centre.example", "email address has been changed").text
    # the person is signed out everywhere; the old address no longer signs in, the new one does
    assert not signed_in.signed_in()
    assert kit.messages(browser(app).sign_in(USER, PASSWORD)) == [kit.BAD_CREDENTIALS]
    step = browser(app).sign_in("new.address@centre.example", PASSWORD)
    assert step.status_code == 303 and step.location.endswith("/signin/mfa")
    events = kit.audit_events(app, "account.email_changed", subject=people_here[USER])
    assert events[0].details["before"] == {"email": USER}


def test_refusals_and_form_errors(mail_app, people_here):
    app = mail_app
    with pytest.raises(errors.Conflict):
        _as(app, ADMIN, lambda a: people.change_email(a, people_here[USER], OTHER_ADMIN.upper()))
    with pytest.raises(errors.Invalid) as bad:
        _as(app, ADMIN, lambda a: people.change_email(a, people_here[USER], "not an address"))
    assert bad.value.field == "email"
    with pytest.raises(errors.Denied):  # an admin cannot touch the Exams Officer
        _as(app, ADMIN, lambda a: people.change_email(a, people_here[EO], "eo2@centre.example"))
    with pytest.raises(errors.Denied):  # a user manages nobody
        _as(app, USER, lambda a: people.change_email(a, people_here[ADMIN], "x@centre.example"))
    with app.app_context():
        assert people.account_by_sub(people_here[USER]).email == USER


def test_over_the_api_and_the_command_line(mail_app, smtp, people_here):
    app = mail_app
    with app.app_context():
        rp = make_admin_client()
    token = code_flow(app.test_client(), rp, scope=ADMIN_API_SCOPE, email=ADMIN)["access_token"]
    changed = app.test_client().put(f"/api/v1/accounts/{people_here[USER]}/email", json={"email": "u2@centre.example"},
                                    headers={"Authorization": f"Bearer {token}"})
    assert changed.status_code == 200 and changed.get_json()["email"] == "u2@centre.example"
    taken = app.test_client().put(f"/api/v1/accounts/{people_here[USER]}/email", json={"email": ADMIN},
                                  headers={"Authorization": f"Bearer {token}"})
    assert taken.status_code == 409 and taken.get_json()["field"] == "email"

    from click.testing import CliRunner

    from idp.cli import main

    with app.app_context():
        settings = app.config["IDP_SETTINGS"]
    env = {"IDP_DATABASE_URL": settings.database_url, "IDP_DATA_DIR": str(settings.data_dir),
           "IDP_KEYS_DIR": str(settings.keys_dir), "IDP_ISSUER": settings.server.issuer,
           "IDP_SECRET_KEY": "x", "IDP_POLICIES_DIR": settings.policies.dir,
           "IDP_MAIL_BACKEND": "smtp", "IDP_MAIL_SMTP_HOST": "127.0.0.1", "IDP_MAIL_SMTP_PORT": str(smtp.port),
           "IDP_MAIL_SMTP_SECURITY": "none", "IDP_LOGGING_LEVEL": "WARNING"}
    if settings.store.redis_url:
        env.update(IDP_REDIS_URL=settings.store.redis_url, IDP_STORE_PREFIX=settings.store.prefix)
    refused = CliRunner().invoke(main, ["account", "change-email", "u2@centre.example", "u3@centre.example"], env=env)
    assert refused.exit_code == 1 and "reason" in refused.output  # board staff say why
    done = CliRunner().invoke(main, ["account", "change-email", "u2@centre.example", "u3@centre.example",
                                     "--reason", "Name change, ticket 88"], env=env)
    assert done.exit_code == 0, done.output
    assert '"email": "u3@centre.example"' in done.output
    smtp.take("u3@centre.example", "email address has been changed", timeout=10)


def test_a_person_changes_their_own_email_with_a_code_sent_to_the_new_address(mail_app, smtp, browser,
                                                                             people_here):
    app = mail_app
    person, elsewhere = browser(app), browser(app)
    for b in (person, elsewhere):
        assert b.sign_in_fully(USER, PASSWORD).location.endswith("/account")
    with app.app_context():
        from idp.accounts import sessions

        entry = sessions.find(person.cookie("idp_session"))
        people.request_own_email_change(entry, "mine@elsewhere.example")
    code = re.search(r"Your code is: (\d+)", smtp.take("mine@elsewhere.example", "Confirm your new").text).group(1)
    with app.app_context():
        entry = sessions.find(person.cookie("idp_session"))
        with pytest.raises(errors.Invalid):
            people.confirm_own_email_change(entry, "000000" if code != "000000" else "111111")
        people.confirm_own_email_change(entry, code)
        assert people.account_by_sub(people_here[USER]).email == "mine@elsewhere.example"
    assert person.signed_in() and not elsewhere.signed_in()  # this session stays, the others end
    smtp.take(USER, "has been changed")


def test_an_address_already_in_use_gets_no_code_and_the_same_answer(mail_app, smtp, browser, people_here):
    app = mail_app
    person = browser(app)
    person.sign_in_fully(USER, PASSWORD)
    with app.app_context():
        from idp.accounts import sessions

        entry = sessions.find(person.cookie("idp_session"))
        people.request_own_email_change(entry, ADMIN)  # someone else's: no error...
    smtp.assert_none(ADMIN, "Confirm your new", wait=0.5)  # ...and no code


def test_two_admins_changing_the_same_person_lose_nothing(mail_app, people_here):
    """Both load the person at version v; the first change wins, the second is refused with a message
    to look again, and neither overwrites the other."""
    app = mail_app
    with app.app_context():
        version = people.account_by_sub(people_here[USER]).version
    _as(app, ADMIN, lambda a: people.update_fields(a, people_here[USER], {"job_role": "Invigilator"},
                                                    expected_version=version))
    with pytest.raises(errors.Conflict) as told:
        _as(app, OTHER_ADMIN, lambda a: people.set_profiles(a, people_here[USER], ["resources"],
                                                             expected_version=version))
    assert "Someone else changed" in told.value.message
    with app.app_context():
        account = people.account_by_sub(people_here[USER])
        assert account.job_role == "Invigilator" and account.version == version + 1


def test_simultaneous_changes_from_the_same_version_one_wins(mail_app, people_here):
    app = mail_app
    with app.app_context():
        version = people.account_by_sub(people_here[USER]).version

    def change(args):
        who, title = args
        try:
            _as(app, who, lambda a: people.update_fields(a, people_here[USER], {"title": title},
                                                          expected_version=version))
            return "done"
        except errors.Conflict:
            return "conflict"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(change, [(ADMIN, "Mr"), (OTHER_ADMIN, "Dr"), (EO, "Ms"), (ADMIN, "Mx")]))
    assert sorted(outcomes) == ["conflict"] * 3 + ["done"], outcomes
    with app.app_context():
        assert people.account_by_sub(people_here[USER]).version == version + 1


def test_statuses_filters_and_form_choices(mail_app, kit, people_here):
    app = mail_app
    with app.app_context():
        eo = people.party_of(people.account_by_email(EO))
        admin = people.party_of(people.account_by_email(ADMIN))
        account = make_account("nomfa@centre.example", role="user", mfa=False)
        nomfa = account.sub
        db.session.commit()
        page = directory.search(eo, centre=None, by_name=True)
        assert page.statuses[nomfa].name == "mfa_not_set_up" and page.statuses[people_here[USER]].name == "active"
        assert [a.sub for a in directory.search(eo, centre=None, status="mfa_not_set_up").items] == [nomfa]
        assert {a.email for a in directory.search(eo, centre=None, role="admin").items} == {ADMIN, OTHER_ADMIN}
        # a third admin may still be invited; an admin cannot give what it lacks
        roles = {c.value: c for c in directory.role_choices(eo, "12345")}
        assert roles["admin"].allowed and roles["user"].allowed and "eo" not in roles
    kit.invite(app, "third@centre.example", role="admin")
    with app.app_context():
        roles = {c.value: c for c in directory.role_choices(eo, "12345")}
        assert not roles["admin"].allowed and "at most 3" in roles["admin"].reason
        people.set_profiles(eo, people_here[ADMIN], ["resources", "users.manage"])
        admin = people.party_of(people.account_by_email(ADMIN))
        choices = {c.value: c for c in directory.profile_choices(admin, "user")}
        assert choices["resources"].allowed
        assert not choices["iamis"].allowed and "do not have it yourself" in choices["iamis"].reason
        assert not choices["entries.make"].allowed and "cannot have" in choices["entries.make"].reason
