"""Every page of the centre console, in real Chromium on a laptop and on a phone, in English and
Welsh, with its errors and refusals: free of the WCAG 2.2 A/AA problems axe-core finds, no wider
than the screen, in the chosen language, without a script or CSP error. After a failed submit the
error summary has the focus and leads to the field it is about.

Set IDP_TEST_SCREENSHOTS to a folder to keep a screenshot of every page seen."""

from __future__ import annotations

import pytest

from tests.browser import console_site
from tests.browser.a11y import SCREEN_LANGUAGES
from tests.browser.console_site import Visit, invited, lock, new_centre, person, sub_of

# one provider for the whole module (fixtures, used by name)
site, shots = console_site.site, console_site.shots


def _bump_version(site, sub: str) -> None:
    """Someone else changes the person (as another browser would) while the page is open."""
    from idp.accounts.models import Account
    from idp.extensions import db

    with site.app.app_context():
        db.session.query(Account).filter_by(sub=sub).update({"version": Account.version + 1})
        db.session.commit()


def _error_summary_leads_to(page, field_id: str) -> None:
    page.wait_for_function("document.activeElement && document.activeElement.matches('.govuk-error-summary')")
    link = page.locator(f".govuk-error-summary__list a[href='#{field_id}']").first
    assert link.is_visible()
    link.click()
    page.wait_for_function(f"document.activeElement && document.activeElement.id === {field_id!r}")


@pytest.mark.parametrize("width, lang", SCREEN_LANGUAGES)
def test_every_console_page_is_accessible(site, browser, shots, width, lang):
    centre = new_centre(site, "Ysgol Gyfun Llanfair")
    tag = f"{width}{lang}"
    eo = f"eo.{tag}@centre.example"
    secret = person(site, eo, "eo", centre, given_name="Siân", family_name="Jones")
    admin_secrets = [person(site, f"admin{n}.{tag}@centre.example", "admin", centre, given_name="Admin",
                            family_name=f"No {n}") for n in range(3)]
    person(site, f"locked.{tag}@centre.example", "user", centre, given_name="Lloyd", family_name="Locked")
    lock(site, f"locked.{tag}@centre.example")
    invited(site, f"expired.{tag}@centre.example", by=eo, expired=True, given_name="Eira")
    visit = Visit(browser, site, width=width, lang=lang, shots=shots, name="console")
    page = visit.page
    visit.sign_in(eo, secret)

    # ---- the list, its search and a filter that cannot be read
    visit.goto("/users", "people")
    visit.goto("/users?status=sleeping", "people-bad-filter")
    _error_summary_leads_to(page, "status")

    # ---- an invite: errors, a type not allowed (3 admins), access, check, send
    visit.goto("/users/invite", "invite")
    page.click("main button[type=submit]")
    visit.check("invite-errors")
    _error_summary_leads_to(page, "given_name")
    assert page.locator("#role").is_disabled()  # Admin: the centre has 3
    page.fill("#given_name", "Rhys")
    page.fill("#family_name", "Evans")
    page.fill("#email", f"rhys.{tag}@centre.example")
    page.check("input[name=role][value=user]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users/invite/access")
    visit.check("invite-access")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users/invite/check")
    visit.check("invite-check")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users/*")
    visit.check("person-invited")
    newcomer = page.url.rsplit("/", 1)[1]
    visit.goto(f"/users/{newcomer}/email", "email-invited")  # correcting it sends a new invite

    # ---- a person's page and what can be done to them
    admin = sub_of(site, f"admin0.{tag}@centre.example")
    visit.goto(f"/users/{admin}", "person")
    visit.goto(f"/users/{admin}/access", "access")
    _bump_version(site, admin)
    page.click("main button[type=submit]")
    visit.check("access-conflict")
    visit.goto(f"/users/{admin}/type", "type")
    page.check("input[name=role][value=user]")
    page.click("main button[type=submit]")
    visit.check("type-confirm")
    visit.goto(f"/users/{admin}/email", "email")
    page.fill("#email", "not an address")
    page.click("main button[type=submit]")
    visit.check("email-error")
    _error_summary_leads_to(page, "email")
    visit.goto(f"/users/{admin}/reset-mfa", "reset-mfa")
    visit.goto(f"/users/{admin}/disable", "disable")
    visit.goto(f"/users/{admin}/remove", "remove")
    visit.goto(f"/users/{sub_of(site, f'locked.{tag}@centre.example')}", "person-locked")
    visit.goto(f"/users/{sub_of(site, f'expired.{tag}@centre.example')}", "person-invite-expired")
    visit.goto(f"/users/{newcomer}/remove")
    page.click("main button[type=submit]")
    page.wait_for_url("**/users")
    assert page.locator(".govuk-notification-banner").is_visible()

    # ---- the centre's activity, and a refusal
    visit.goto("/users/activity?kind=access", "activity")
    visit.goto(f"/users/{sub_of(site, eo)}/access", "refused")
    visit.close()

    # ---- an admin on their own page: what they cannot change about themselves, and why
    own = Visit(browser, site, width=width, lang=lang, shots=shots, name="console-own")
    own.sign_in(f"admin1.{tag}@centre.example", admin_secrets[1])
    own.goto(f"/users/{sub_of(site, f'admin1.{tag}@centre.example')}", "person-own")
    own.close()


@pytest.mark.parametrize("width, lang", SCREEN_LANGUAGES)
def test_the_centre_chooser_is_accessible(site, browser, shots, width, lang):
    new_centre(site, "Coleg Caerdydd")
    board = f"board.{width}{lang}@board.example"
    secret = person(site, board, "board", None, given_name="Bea", family_name="Board")
    visit = Visit(browser, site, width=width, lang=lang, shots=shots, name="chooser")
    visit.sign_in(board, secret)
    visit.goto("/users", "centres")
    visit.goto("/users?q=caerdydd", "centres-found")
    visit.close()
