"""Every page of the board console, in real Chromium on a laptop and on a phone, in English and
Welsh: free of the WCAG 2.2 A/AA problems axe-core finds, no wider than the screen, in the chosen
language, its scripts run without a CSP violation or a JavaScript error; forms seen with their
errors too (the error summary focused, leading to the field). The "Copy" buttons appear (their
script ran) where a secret or a file is shown.

Set IDP_TEST_SCREENSHOTS to a folder to keep a screenshot of every page seen."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from tests.browser.a11y import SCREEN_LANGUAGES, SCREENS
from tests.browser.test_pages_accessible import Visit
from tests.support import PASSWORD, add_totp, make_account, make_centre, make_client

BOARD = "board@board.example"


@pytest.fixture
def shots():
    folder = os.environ.get("IDP_TEST_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / "board"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _setting_up(app) -> dict:
    """Board staff (with an authenticator app), a centre with people (one locked out, with failed
    sign-ins), another centre, a client service."""
    from idp import policy
    from idp.accounts import lockout
    from idp.extensions import db, keys

    with app.app_context():
        make_centre("12345", "Ysgol Gyfun")
        make_centre("67890", "Other College")
        board = make_account(BOARD, role="board", centre=None, mfa=False, given_name="Bea", family_name="Board")
        secret = add_totp(board)
        make_account("help@board.example", role="helpdesk", centre=None, given_name="Hal", family_name="Desk")
        make_account("eo@centre.example", role="eo", given_name="Siân", family_name="Jones")
        user = make_account("user@centre.example", role="user", given_name="Uma", family_name="User")
        make_account("eo@other.example", role="eo", centre="67890", given_name="Oli", family_name="Other")
        for _ in range(policy.current().sec("lockout").max_failures):
            lockout.password_failed(user.email, lockout.reserve_password(user.email), reason="password",
                                    subject=user.sub, centre="12345")
        from idp import audit

        audit.record("signin.password", outcome="failure", reason="bad_credentials", subject=user.sub, centre="12345")
        db.session.commit()
        rp = make_client("Results", description="See results.", initiate_login_uri="https://rp.example/start")
        return {"totp": secret, "user": user.sub, "rp": rp.client_id, "board_sub": board.sub,
                "kid": next(k.kid for k in keys().ring().infos if k.alg == "ES256")}


@pytest.mark.parametrize("width, lang", SCREEN_LANGUAGES)
def test_every_board_page_is_accessible(live, browser, shots, width, lang):
    app, issuer = live
    known = _setting_up(app)
    context = browser.new_context(**SCREENS[width])
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    visit = Visit(context.new_page(), issuer, width, lang, shots)
    page = visit.page

    page.goto(f"{issuer}/signin?ui_locales={lang}")
    page.fill("#email", BOARD)
    page.click("main button[type=submit]")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.fill("#code", pyotp.TOTP(known["totp"]).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")

    visit.goto("/board", "home")
    # ---- centres and Exams Officers
    visit.goto("/board/centres", "centres")
    visit.goto("/board/centres?q=ysgol&suspended=no", "centres-found")
    visit.goto("/board/centres/new", "centre-new")
    page.fill("#number", "12")
    visit.submit("centre-new-error")
    visit.assert_error_summary_leads_to("number")
    page.fill("#number", "54321")
    page.fill("#name", "Ysgol Newydd")
    visit.submit("eo-new")
    assert page.url.endswith("/board/centres/54321/exams-officer/new")
    visit.submit("eo-new-error")
    visit.assert_error_summary_leads_to("email")
    visit.goto("/board/centres/12345", "centre")
    visit.goto("/board/centres/12345/rename", "centre-rename")
    visit.goto("/board/centres/12345/suspension", "centre-suspend")
    visit.goto("/board/centres/12345/exams-officer/replace", "eo-replace")
    page.fill("#email", "not an address")
    visit.submit("eo-replace-error")
    visit.assert_error_summary_leads_to("email")

    # ---- the helpdesk
    visit.goto("/board/people?q=centre.example", "people-found")
    visit.goto(f"/board/people/{known['user']}", "person-locked")
    visit.goto(f"/board/people/{known['user']}/unlock", "unlock")
    visit.submit("unlock-error")
    visit.assert_error_summary_leads_to("reason")
    visit.goto(f"/board/people/{known['user']}/reset-mfa", "reset-mfa")
    visit.goto(f"/board/people/{known['user']}/disable", "disable")
    visit.submit("disable-error")
    visit.assert_error_summary_leads_to("reason")
    visit.goto(f"/board/people/{known['user']}/email", "change-email")
    visit.submit("change-email-error")
    visit.assert_error_summary_leads_to("email")

    # ---- board staff
    visit.goto("/board/staff", "staff")
    visit.goto("/board/staff/invite", "staff-invite")
    visit.submit("staff-invite-error")
    visit.assert_error_summary_leads_to("email")
    visit.goto(f"/board/staff/{known['board_sub']}/remove", "refused-own-account")

    # ---- client services
    visit.goto("/board/services", "services")
    visit.goto("/board/services/new", "service-new")
    page.fill("#client_name", "Entries")
    page.fill("#redirect_uris", "http://entries.example/cb")
    visit.submit("service-new-error")
    visit.assert_error_summary_leads_to("redirect_uris")
    page.fill("#redirect_uris", "https://entries.example/cb")
    visit.submit("service-registered")
    assert page.locator("button[data-copy-target=client-secret]").is_visible()  # copy.js ran
    visit.goto(f"/board/services/{known['rp']}", "service")
    visit.goto(f"/board/services/{known['rp']}/edit", "service-edit")
    visit.goto(f"/board/services/{known['rp']}/secret", "service-rotate")
    page.check("#grace-2")
    visit.submit("service-rotated")
    visit.goto(f"/board/services/{known['rp']}/status", "service-disable")
    visit.goto(f"/board/services/{known['rp']}/delete", "service-delete")
    visit.goto(f"/board/services/{known['rp']}/toml", "service-toml")
    assert page.locator("button[data-copy-target=toml]").is_visible()
    visit.goto("/board/services/initial-tokens", "initial-tokens")
    page.fill("#uses", "0")
    visit.submit("initial-tokens-error")
    visit.assert_error_summary_leads_to("uses")
    page.fill("#uses", "2")
    visit.submit("initial-token-issued")
    visit.goto("/board/services/initial-tokens", "initial-tokens-listed")

    # ---- keys and the audit trail
    visit.goto("/board/keys", "keys")
    visit.goto("/board/keys/rotate/ES256", "key-rotate")
    visit.submit("keys-rotated")
    visit.goto(f"/board/keys/{known['kid']}/retire", "key-retire")
    visit.goto("/board/audit", "audit")
    visit.goto("/board/audit?centre=123", "audit-error")
    assert not visit.problems, visit.problems
    context.close()
