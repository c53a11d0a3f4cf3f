"""The centre console driven in Chromium as each kind of person meets it: the Exams Officer
(invite, manage access, change an email address, remove), an admin (who cannot touch the Exams
Officer, and gives only what they hold), a user (no "Manage users", 403 on the console) and a
board member (chooses a centre, then works on its people); and with the keyboard alone (Tab,
Space and Enter), an invite and a change of access."""

from __future__ import annotations

from tests.browser import console_site
from tests.browser.console_site import Visit, new_centre, person, sub_of

# one provider for the whole module (fixtures, used by name)
site, shots = console_site.site, console_site.shots



def _person_row(page, name: str):
    return page.locator("main table a", has_text=name)


def test_the_exams_officer_invites_manages_access_changes_an_email_and_removes(site, browser, shots):
    centre = new_centre(site, "St David's High School")
    eo = "eo.journey@centre.example"
    secret = person(site, eo, "eo", centre, given_name="Ada", family_name="Lovelace")
    person(site, "teacher.journey@centre.example", "user", centre, given_name="Tom", family_name="Teacher")
    visit = Visit(browser, site, shots=shots, name="eo-journey")
    page = visit.page
    visit.sign_in(eo, secret)
    visit.goto("/users", "people")
    assert page.locator("header a", has_text="Manage users").is_visible()

    # invite: details and type, access, check, send
    page.click("text=Invite a user")
    page.fill("#given_name", "Mary")
    page.fill("#family_name", "Somerville")
    page.fill("#email", "mary.journey@centre.example")
    page.fill("#job_role", "Head of Science")
    page.check("input[name=role][value=admin]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users/invite/access")
    assert page.locator("#profiles").is_checked()  # the defaults for an admin are ticked
    page.uncheck("input[name=profiles][value='a2c_keys']")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users/invite/check")
    summary = page.locator(".govuk-summary-list").inner_text()
    assert "mary.journey@centre.example" in summary and "A2C access keys" not in summary
    page.click("main button:has-text('Send invite')")
    page.wait_for_url("**/users/*")
    visit.check("invited")
    assert "Invite sent to mary.journey@centre.example." in visit.banner()

    # manage a teacher's access from the list
    page.click("header a:has-text('Manage users')")
    _person_row(page, "Tom Teacher").click()
    page.click("main a:has-text('Manage access')")
    page.check("input[name=profiles][value='scripts.view']")
    page.click("main button:has-text('Save access')")
    page.wait_for_url("**/users/*")
    assert "Tom Teacher's access has been updated." in visit.banner()
    assert "View scripts" in page.locator(".govuk-summary-list").inner_text()

    # change their email address
    page.click("main a:has-text('Change email address')")
    page.fill("#email", "tom.t@centre.example")
    page.click("main button:has-text('Change email address')")
    page.wait_for_url("**/users/*")
    assert "is now tom.t@centre.example" in visit.banner()

    # remove them, after the confirmation page
    page.click("main a:has-text('Remove user')")
    visit.check("remove")
    page.click("main button.govuk-button--warning")
    page.wait_for_url("**/users")
    assert "Tom Teacher's account has been removed." in visit.banner()
    assert not _person_row(page, "Tom Teacher").count()
    visit.close()


def test_an_admin_cannot_touch_the_exams_officer_and_gives_only_what_they_hold(site, browser, shots):
    centre = new_centre(site, "Ysgol Bro")
    person(site, "eo.bro@centre.example", "eo", centre, given_name="Eirlys", family_name="Owen")
    admin = "admin.bro@centre.example"
    secret = person(site, admin, "admin", centre, given_name="Aled", family_name="Admin",
                    profiles=["resources", "users.manage", "results.view"])
    person(site, "user.bro@centre.example", "user", centre, given_name="Ursula", family_name="User")
    visit = Visit(browser, site, shots=shots, name="admin-journey")
    page = visit.page
    visit.sign_in(admin, secret)
    visit.goto("/users", "people")
    _person_row(page, "Eirlys Owen").click()
    page.wait_for_load_state()
    main = page.locator("main").inner_text()
    assert "Admin accounts cannot edit Exams Officer accounts." in main
    assert not page.locator("main a:has-text('Manage access')").count()
    assert not page.locator("main a:has-text('Remove user')").count()
    page.click("header a:has-text('Manage users')")
    _person_row(page, "Ursula User").click()
    page.click("main a:has-text('Manage access')")
    visit.check("access-limited")
    assert page.locator("input[name=profiles][value='scripts.view']").is_disabled()
    assert "You cannot grant 'View scripts' because you do not have it yourself." in page.locator("main").inner_text()
    page.check("input[name=profiles][value='results.view']")
    page.click("main button:has-text('Save access')")
    page.wait_for_url("**/users/*")
    assert "access has been updated" in visit.banner()
    visit.close()


def test_a_user_has_no_manage_users_and_is_refused_the_console(site, browser, shots):
    centre = new_centre(site, "Coleg")
    user = "user.coleg@centre.example"
    secret = person(site, user, "user", centre, given_name="Una", family_name="User")
    visit = Visit(browser, site, shots=shots, name="user-journey")
    page = visit.page
    visit.sign_in(user, secret)
    assert not page.locator("header a", has_text="Manage users").count()
    response = page.goto(site.issuer + "/users")
    assert response.status == 403
    visit.check("refused")
    assert "User accounts cannot see other people's accounts." in page.locator("main").inner_text()
    assert not page.locator("header a", has_text="Manage users").count()
    assert page.goto(site.issuer + "/users/invite").status == 403
    visit.problems.clear()  # (the 403s above are what is being tested)
    visit.close()


def test_a_board_member_chooses_a_centre_and_resets_a_second_factor(site, browser, shots):
    centre = new_centre(site, "Coleg Gwent Unigryw")
    person(site, "eo.gwent@centre.example", "eo", centre, given_name="Gwen", family_name="Officer")
    person(site, "user.gwent@centre.example", "user", centre, given_name="Huw", family_name="Lost-Phone")
    board = "board.gwent@board.example"
    secret = person(site, board, "board", None, given_name="Bea", family_name="Board")
    visit = Visit(browser, site, shots=shots, name="board-journey")
    page = visit.page
    visit.sign_in(board, secret)
    visit.goto("/users", "choose-centre")
    page.fill("#q", "gwent unigryw")
    page.click("main button[type=submit]")
    page.click(f"main a:has-text('{centre} Coleg Gwent Unigryw')")
    page.wait_for_url(f"**/centres/{centre}/users")
    visit.check("centre-people")
    _person_row(page, "Huw Lost-Phone").click()
    # board staff's helpdesk actions are audited with a reason: the board's page for it asks for one
    page.click("main a:has-text('Reset second factor')")
    page.wait_for_url("**/board/people/*/reset-mfa")
    page.click("main button.govuk-button--warning")
    assert "Enter the reason" in page.locator(".govuk-error-summary").inner_text()
    visit.problems.clear()  # (the 400 above is what is being tested)
    page.fill("#reason", "Ticket 4471: lost phone, identity checked by call-back")
    visit.check("reset-confirm")
    page.click("main button.govuk-button--warning")
    page.wait_for_url("**/board/people/*")
    assert "second factors have been removed" in visit.banner()
    page.click("main a:has-text('Their page in the centre console')")
    page.wait_for_url("**/users/*")
    assert "Second factor not set up" in page.locator(".govuk-summary-list").inner_text()
    page.click("main a:has-text('All users')")
    page.wait_for_url(f"**/centres/{centre}/users")
    visit.close()


# ------------------------------------------------------------------ the keyboard alone
def _tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_an_invite_and_a_change_of_access_with_the_keyboard_alone(site, browser, shots):
    centre = new_centre(site, "Keyboard Academy")
    eo = "eo.keys@centre.example"
    secret = person(site, eo, "eo", centre, given_name="Kay", family_name="Board")
    visit = Visit(browser, site, shots=shots, name="keyboard")
    page = visit.page
    visit.sign_in(eo, secret)
    visit.goto("/users")
    keys = page.keyboard

    _tab_to(page, "main a.govuk-button")  # Invite a user
    keys.press("Enter")
    page.wait_for_url("**/users/invite")
    for field, value in (("#given_name", "Keith"), ("#family_name", "Keys"), ("#email", "keith@centre.example")):
        _tab_to(page, field)
        keys.type(value)
    _tab_to(page, "input[name=role]")  # the first type (Admin); Space chooses it
    keys.press("Space")
    _tab_to(page, "main button[type=submit]")
    keys.press("Enter")
    page.wait_for_url("**/users/invite/access")
    _tab_to(page, "input[value='scripts.view']")
    keys.press("Space")  # untick (on by default)
    _tab_to(page, "main button[type=submit]")
    keys.press("Enter")
    page.wait_for_url("**/users/invite/check")
    assert "View scripts" not in page.locator(".govuk-summary-list").inner_text()
    _tab_to(page, "main button[type=submit]")
    keys.press("Enter")
    page.wait_for_url("**/users/*")
    assert "Invite sent to keith@centre.example." in visit.banner()
    assert "Admin" in page.locator(".govuk-summary-list").inner_text()

    _tab_to(page, "main a[href$='/access']")
    keys.press("Enter")
    page.wait_for_url("**/access")
    _tab_to(page, "input[value='scripts.view']")
    keys.press("Space")
    _tab_to(page, "main button[type=submit]")
    keys.press("Enter")
    page.wait_for_url("**/users/*")
    assert "Keith Keys's access has been updated." in visit.banner()
    assert "View scripts" in page.locator(".govuk-summary-list").inner_text()
    assert sub_of(site, "keith@centre.example")
    visit.close()
