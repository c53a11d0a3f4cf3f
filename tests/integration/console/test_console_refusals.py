"""Who may use the centre console, and every refusal it shows: a user account gets 403 on every
console page and is never offered "Manage users"; nobody sees or touches another centre; an admin
cannot touch the Exams Officer; a centre cannot have a fourth admin; nobody grants what they do not
hold. Each refusal says the policy's reason in words, and changes nothing."""

from __future__ import annotations

import pytest

from idp.accounts.models import Account
from idp.admin import people
from idp.audit import AuditEvent
from idp.extensions import db
from tests.integration.console.conftest import ADMIN, BOARD, EO, HOME, OTHER, OTHER_USER, USER
from tests.support import make_account

# one backend: who may do what in the console: the policy, not storage
pytestmark = pytest.mark.one_backend

MANAGE_USERS = "Manage users"


def _console_paths(sub: str, number: str = HOME) -> list[str]:
    return ["/users", f"/centres/{number}/users", "/users/invite", "/users/invite/access", "/users/invite/check",
            f"/centres/{number}/users/invite", "/users/activity", f"/centres/{number}/users/activity",
            f"/users/{sub}", f"/users/{sub}/access", f"/users/{sub}/type", f"/users/{sub}/email",
            f"/users/{sub}/reset-mfa", f"/users/{sub}/remove"]


def _posts(sub: str) -> dict[str, dict]:
    return {
        "/users/invite": {"given_name": "New", "family_name": "Person", "email": "new@centre.example",
                          "role": "user", "language": "en"},
        "/users/invite/access": {"profiles": ["resources"]},
        "/users/invite/check": {},
        f"/users/{sub}/access": {"profiles": ["resources"], "version": "1"},
        f"/users/{sub}/type": {"role": "admin", "version": "1"},
        f"/users/{sub}/email": {"email": "taken.over@centre.example", "version": "1"},
        f"/users/{sub}/resend": {},
        f"/users/{sub}/unlock": {},
        f"/users/{sub}/reset-mfa": {},
        f"/users/{sub}/remove": {},
    }


def _snapshot(app):
    """Every account with its access, and the audit trail's successes: what a refusal must not change."""
    with app.app_context():
        accounts = {a.sub: (a.email, a.role, a.status, a.version, tuple(sorted(people.party_of(a).profiles)))
                    for a in db.session.query(Account)}
        done = db.session.query(AuditEvent).filter(AuditEvent.outcome == "success",
                                                   ~AuditEvent.event.like("signin.%")).count()
    return accounts, done


def test_a_user_gets_403_on_every_console_page_and_no_manage_users_link(mail_app, signed_in, staff, pages):
    user = signed_in(USER)
    target = staff.sub[EO]
    before = _snapshot(mail_app)
    account_page = user.get("/account")
    assert account_page.status_code == 200 and MANAGE_USERS not in pages.text(account_page)
    for path in _console_paths(target) + [f"/users/{staff.sub[USER]}"]:
        response = user.get(path)
        assert response.status_code == 403, (path, response.status_code)
        words = pages.text(response)
        assert "User accounts cannot see other people's accounts." in words, (path, words)
        assert MANAGE_USERS not in words, path
    token = pages.hidden(account_page, "csrf_token")
    for path, data in _posts(target).items():
        response = user.http.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, (path, response.status_code)
    assert _snapshot(mail_app) == before


def test_signed_out_visitors_are_sent_to_sign_in(mail_app, staff, browser):
    visitor = browser(mail_app)
    for path in _console_paths(staff.sub[USER]):
        response = visitor.get(path)
        assert response.status_code == 302 and response.location.endswith("/signin"), path


def test_nobody_at_a_centre_sees_or_touches_another_centre(mail_app, signed_in, staff, pages):
    other = staff.sub[OTHER_USER]
    before = _snapshot(mail_app)
    for email in (EO, ADMIN):
        person = signed_in(email)
        for path in _console_paths(other, OTHER)[1:]:
            if path.startswith("/users/invite") or path == "/users/activity":
                continue  # their own centre's pages
            response = person.get(path)
            assert response.status_code == 403, (email, path, response.status_code)
            assert "You can only see your own centre." in pages.text(response)
        token = pages.hidden(person.get("/users"), "csrf_token")
        for path, data in _posts(other).items():
            if path.startswith("/users/invite"):
                continue
            assert person.http.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert _snapshot(mail_app) == before
    # and a search never lists anyone from another centre
    found = pages.text(signed_in(EO).get("/users?q=other"))
    assert OTHER_USER not in found and "No users match your search." in found


#: each console action page and the event its service records (its refusal is audited as that)
ACTION_EVENTS = {"access": "account.profiles_changed", "type": "account.role_changed", "email": "account.email_changed",
                 "resend": "account.invite_resent", "unlock": "account.unlocked", "reset-mfa": "mfa.reset",
                 "disable": "account.disabled", "enable": "account.enabled", "remove": "account.deleted"}


def _refusals(app, actor: str) -> list[tuple]:
    with app.app_context():
        return sorted((e.event, e.subject, e.centre, sorted(e.details.items())) for e in db.session.query(
            AuditEvent).filter(AuditEvent.outcome == "denied", AuditEvent.actor == actor))


def test_acting_on_another_centres_person_from_the_console_is_audited_as_through_the_api(
        mail_app, signed_in, staff, pages):
    """An Exams Officer editing URLs and forms to act on another centre's person gets the same 403
    as before, and each refusal is in the audit trail as ``denied`` with its reason, exactly as the
    same refusal through the admin API (the service) records it (found by an outside probe: the
    console refused before calling the service and recorded nothing). The row names no centre, so
    it shows in neither centre's trail."""
    eo, other = signed_in(EO), staff.sub[OTHER_USER]
    actor = staff.sub[EO]
    token = pages.hidden(eo.get("/users"), "csrf_token")
    seen = []
    for path, event in ACTION_EVENTS.items():
        shown = eo.get(f"/users/{other}/{path}")
        sent = eo.http.post(f"/users/{other}/{path}", data={
            "csrf_token": token, "version": "1", "role": "admin", "profiles": ["resources"],
            "email": "taken.over@centre.example"})
        for response in (shown, sent):
            if path in ("resend", "unlock") and response is shown:
                assert response.status_code == 405, path  # posted only
                continue
            assert response.status_code == 403, (path, response.status_code)
            assert "You can only see your own centre." in pages.text(response), path
            seen.append(event)
    refused = _refusals(mail_app, actor)
    reason = sorted({"reason": "You can only see your own centre.", "target": other}.items())
    assert refused == sorted((event, None, None, reason) for event in seen)
    # the same refusal through the service the admin API calls is recorded the same way (in the
    # service's own words: the console refuses at seeing the person, before the action is asked about)
    with mail_app.app_context():
        with pytest.raises(people.Denied) as service_refused:
            people.delete(people.party_of(people.account_by_sub(actor)), other)
    by_service = ("account.deleted", None, None, sorted({"reason": str(service_refused.value.message),
                                                         "target": other}.items()))
    assert _refusals(mail_app, actor) == sorted(refused + [by_service])
    before = _refusals(mail_app, actor)
    # inviting someone to the other centre, at any step, is a refused invite
    for step in ("", "/access", "/check"):
        refused_invite = eo.http.post(f"/centres/{OTHER}/users/invite{step}", data={
            "csrf_token": token, "given_name": "New", "family_name": "Person", "email": "new@centre.example",
            "role": "user", "language": "en"})
        assert refused_invite.status_code == 403, step
    invited = ("account.invited", None, None, sorted({"reason": "You can only see your own centre.",
                                                       "target": OTHER}.items()))
    assert _refusals(mail_app, actor) == sorted(before + [invited] * 3)


def test_reading_another_centres_people_is_audited_once_per_refusal(mail_app, signed_in, staff, pages):
    """Looking, not only acting: an Exams Officer editing URLs to read another centre's person,
    list or activity gets the same 403 as before, and each refusal is in the trail as ``denied``
    (``account.viewed`` for a person, ``centre.viewed`` for a centre's lists), once: an action
    that starts by reading the person (the pages above) is recorded under its own event alone."""
    eo, other = signed_in(EO), staff.sub[OTHER_USER]
    actor = staff.sub[EO]
    for path in (f"/users/{other}", f"/centres/{OTHER}/users", f"/centres/{OTHER}/users/activity",
                 f"/users/activity?person={other}"):
        response = eo.get(path)
        assert response.status_code == 403, (path, response.status_code)
        assert "You can only see your own centre." in pages.text(response), path
    reason = "You can only see your own centre."
    assert _refusals(mail_app, actor) == sorted([
        ("account.viewed", None, None, sorted({"reason": reason, "target": other}.items())),
        ("centre.viewed", None, None, sorted({"reason": reason, "target": OTHER}.items())),
        ("centre.viewed", None, None, sorted({"reason": reason, "target": OTHER}.items())),
        ("account.viewed", None, None, sorted({"reason": reason, "target": other}.items())),
    ])


def test_an_admin_cannot_touch_the_exams_officer(mail_app, signed_in, staff, pages):
    admin = signed_in(ADMIN)
    eo = staff.sub[EO]
    before = _snapshot(mail_app)
    page = admin.get(f"/users/{eo}")
    assert page.status_code == 200
    words = pages.text(page)
    # the page offers nothing and says why, in the policy's words
    for reason in ("Exams Officer accounts always have every access profile.",
                   "Admin accounts cannot change the type of Exams Officer accounts.",
                   "Admin accounts cannot edit Exams Officer accounts.",
                   "Admin accounts cannot reset the MFA of Exams Officer accounts.",
                   "Admin accounts cannot delete Exams Officer accounts."):
        assert reason in words, reason
    for action in ("access", "type", "email", "reset-mfa", "remove"):
        assert f"/users/{eo}/{action}" not in page.get_data(as_text=True)
        response = admin.get(f"/users/{eo}/{action}")
        assert response.status_code == 403, action
        assert "Admin accounts cannot" in pages.text(response) or "every access profile" in pages.text(response)
    token = pages.hidden(page, "csrf_token")
    for path, data in _posts(eo).items():
        if path.startswith("/users/invite"):
            continue
        response = admin.http.post(path, data={**data, "csrf_token": token})
        assert response.status_code in (403, 409), (path, response.status_code)
    assert _snapshot(mail_app) == before


def test_an_admin_cannot_change_their_own_access(mail_app, signed_in, staff, pages):
    """Removing their own users.manage would shut them out of this console: their access is for
    the Exams Officer to decide, as their type is."""
    admin = signed_in(ADMIN)
    me = staff.sub[ADMIN]
    before = _snapshot(mail_app)
    page = admin.get(f"/users/{me}")
    assert f"/users/{me}/access" not in page.get_data(as_text=True)
    assert "You cannot change your own access." in pages.text(page)
    assert admin.get(f"/users/{me}/access").status_code == 403
    token = pages.hidden(page, "csrf_token")
    refused = admin.http.post(f"/users/{me}/access", data={"profiles": ["resources"], "csrf_token": token})
    assert refused.status_code == 403
    assert _snapshot(mail_app) == before


def test_a_centre_cannot_have_a_fourth_admin(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    with mail_app.app_context():
        make_account("admin2@centre.example", role="admin", given_name="Second", family_name="Admin")
    # an invited admin counts too
    eo_party = None
    with mail_app.app_context():
        eo_party = people.party_of(people.account_by_email(EO))
        people.invite(eo_party, email="admin3@centre.example", role="admin", centre=HOME,
                      fields={"given_name": "Third", "family_name": "Admin"})
    reason = "A centre can have at most 3 Admin accounts (invited ones count)."
    page = eo.get("/users/invite")
    choices = pages.form_values(page, "role")
    assert choices == {"admin": (False, True), "user": (False, False)}  # Admin disabled
    assert reason in pages.text(page)
    refused = pages.post(eo, "/users/invite", {"given_name": "Fourth", "family_name": "Admin", "language": "en",
                                                "email": "admin4@centre.example", "role": "admin"})
    assert refused.status_code == 400 and reason in pages.messages(refused)
    assert eo.get("/users/invite/access").location.endswith("/users/invite")  # nothing kept
    # a user cannot be made the fourth either
    user = staff.sub[USER]
    assert pages.form_values(eo.get(f"/users/{user}/type"), "role")["admin"] == (False, True)
    changed = pages.post(eo, f"/users/{user}/type", {"role": "admin"})
    assert changed.status_code == 403 and reason in pages.messages(changed)
    assert pages.row(mail_app, USER).role == "user"
    assert pages.row(mail_app, "admin4@centre.example") is None


def test_an_invite_started_before_the_third_admin_joined_is_refused_when_sent(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    with mail_app.app_context():
        make_account("admin2@centre.example", role="admin", given_name="Second", family_name="Admin")
    started = pages.post(eo, "/users/invite", {"given_name": "Third", "family_name": "Admin", "language": "en",
                                                "email": "admin3@centre.example", "role": "admin"})
    assert started.status_code == 303
    assert pages.post(eo, "/users/invite/access", {"profiles": ["resources"]}).status_code == 303
    with mail_app.app_context():  # meanwhile, someone else invites a third admin
        people.invite(people.party_of(people.account_by_email(EO)), email="quick@centre.example", role="admin",
                      centre=HOME, fields={"given_name": "Quick", "family_name": "Admin"})
    sent = pages.post(eo, "/users/invite/check", {})
    assert sent.status_code == 403
    assert "A centre can have at most 3 Admin accounts (invited ones count)." in pages.messages(sent)
    assert pages.row(mail_app, "admin3@centre.example") is None


@pytest.fixture
def limited_admin(mail_app, staff):
    """An admin without "View scripts" (so they cannot give it) and a user who has it."""
    with mail_app.app_context():
        make_account("limited@centre.example", role="admin", given_name="Lim", family_name="Ited",
                     profiles=["resources", "users.manage", "results.view"])
        account = people.account_by_email(USER)
        people.set_profiles(people.party_of(people.account_by_email(EO)), account.sub,
                            ["resources", "scripts.view"])
    return "limited@centre.example"


def test_nobody_grants_what_they_do_not_hold(mail_app, signed_in, staff, pages, limited_admin):
    admin = signed_in(limited_admin)
    reason = "You cannot grant 'View scripts' because you do not have it yourself."
    # inviting: shown disabled with the reason; sent anyway, refused with it
    page = pages.post(admin, "/users/invite", {"given_name": "New", "family_name": "Person", "language": "en",
                                                "email": "new@centre.example", "role": "user"})
    assert page.status_code == 303
    access = admin.get("/users/invite/access")
    assert pages.form_values(access, "profiles")["scripts.view"] == (False, True)
    assert reason in pages.text(access)
    refused = pages.post(admin, "/users/invite/access", {"profiles": ["resources", "scripts.view"]})
    assert refused.status_code == 403 and reason in pages.messages(refused)
    # managing access: the user's "View scripts" (which the admin cannot take away) is ticked and
    # disabled, and stays when the admin changes what they can change
    user = staff.sub[USER]
    form = admin.get(f"/users/{user}/access")
    assert pages.form_values(form, "profiles")["scripts.view"] == (True, True)
    assert "You cannot remove 'View scripts' because you do not have it yourself." in pages.text(form)
    saved = pages.post(admin, f"/users/{user}/access", {"profiles": ["resources", "results.view"]}, page=form)
    assert saved.status_code == 303, pages.messages(saved)
    assert sorted(pages.row(mail_app, USER) and _profiles(mail_app, USER)) == \
        ["resources", "results.view", "scripts.view"]
    # a hand-made post giving what the admin lacks is refused with the reason, nothing changed
    refused = pages.post(admin, f"/users/{user}/access", {"profiles": ["resources", "results.view", "iamis"]})
    assert refused.status_code == 403
    assert "You cannot grant 'IAMIS (all subjects)' because you do not have it yourself." in pages.messages(refused)
    assert sorted(_profiles(mail_app, USER)) == ["resources", "results.view", "scripts.view"]


def test_nobody_takes_over_someone_who_holds_more_than_they_do(mail_app, signed_in, staff, pages, limited_admin):
    """Changing a person's sign-in address, or resetting their second factor, would let the admin
    sign in as them: refused when the person has something the admin does not (here "View
    scripts"), as granting it would be. The page says why; a hand-made post changes nothing."""
    admin = signed_in(limited_admin)
    user = staff.sub[USER]
    before = _snapshot(mail_app)
    person = pages.text(admin.get(f"/users/{user}"))
    email_refusal = "You cannot change their email address: they have 'View scripts', which you do not have yourself."
    mfa_refusal = "You cannot reset their MFA: they have 'View scripts', which you do not have yourself."
    assert email_refusal in person and mfa_refusal in person
    for path, data, reason in ((f"/users/{user}/email", {"email": "taken.over@centre.example", "version": "1"},
                                email_refusal),
                               (f"/users/{user}/reset-mfa", {}, mfa_refusal)):
        shown = admin.get(path)
        assert shown.status_code == 403 and reason in pages.text(shown)
        refused = pages.post(admin, path, data, page=admin.get("/users/invite"))  # a hand-made post
        assert refused.status_code == 403 and reason in pages.text(refused), (path, refused.status_code)
    assert _snapshot(mail_app) == before
    # the Exams Officer holds everything, so may
    eo = signed_in(EO)
    assert pages.post(eo, f"/users/{user}/reset-mfa", {}).status_code == 303


def _profiles(app, email):
    with app.app_context():
        return people.party_of(people.account_by_email(email)).profiles


def test_board_staff_choose_a_centre_and_the_policy_still_decides(mail_app, signed_in, staff, pages):
    board = signed_in(BOARD)
    chooser = board.get("/users")
    assert chooser.status_code == 200 and "Choose a centre" in pages.text(chooser)
    assert MANAGE_USERS in pages.text(chooser)
    found = board.get("/users?q=other")
    assert "54321 Other Centre" in pages.text(found) and "Test Centre" not in pages.text(found)
    assert board.get(f"/users?q={OTHER}").location.endswith(f"/centres/{OTHER}/users")
    assert "No centre has that number or name." in pages.text(board.get("/users?q=99999"))
    listing = board.get(f"/centres/{OTHER}/users")
    assert listing.status_code == 200 and OTHER_USER in pages.text(listing)
    # board staff do not give access profiles (the policy's word), and say so
    refused = board.get(f"/users/{staff.sub[OTHER_USER]}/access")
    assert refused.status_code == 403
    assert "Board staff accounts cannot change the access of User accounts." in pages.text(refused)
    assert board.get("/centres/99999/users").status_code == 404
    assert board.get("/centres/abc/users").status_code in (400, 404)


def test_board_staff_without_a_centre_chosen_are_asked_to_choose_one(mail_app, signed_in, staff, pages):
    board = signed_in(BOARD)
    for path in ("/users/invite", "/users/invite/access", "/users/invite/check", "/users/activity"):
        response = board.get(path)
        assert response.status_code == 302 and response.location.endswith("/users"), path
    # a board account's own page (no centre) is a page, not an error
    page = board.get(f"/users/{staff.sub[BOARD]}")
    assert page.status_code == 200 and "Bea Board" in pages.text(page)
    assert "You cannot delete your own account." in pages.text(page)
    # and centre staff cannot see board accounts
    assert signed_in(EO).get(f"/users/{staff.sub[BOARD]}").status_code == 403


def test_a_refused_invite_at_the_consoles_first_step_is_audited_as_through_the_api(mail_app, signed_in, staff,
                                                                                    pages):
    """Found by an outside probe: with the centre's three admin places taken, an Exams Officer
    posting the invite form's first step with "Admin" anyway (an edited form, or a script) was
    told the policy's reason and nothing was recorded, however often: the step's check refused
    outside the audited block that the same invite through the admin API goes through."""
    eo = signed_in(EO)
    with mail_app.app_context():
        make_account("admin2@centre.example", role="admin", given_name="Second", family_name="Admin")
        make_account("admin3@centre.example", role="admin", given_name="Third", family_name="Admin")
    actor = staff.sub[EO]
    before = _refusals(mail_app, actor)
    refused = pages.post(eo, "/users/invite", {"given_name": "Fourth", "family_name": "Admin", "language": "en",
                                                "email": "admin4@centre.example", "role": "admin"})
    assert refused.status_code in (400, 403)
    assert any("at most 3 Admin accounts" in m for m in pages.messages(refused))
    added = [r for r in _refusals(mail_app, actor) if r not in before]
    assert [(event, dict(details)["target"]) for event, _, _, details in added] == [("account.invited", HOME)]
