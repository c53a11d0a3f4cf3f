"""My account's pages and All services in real Chromium on a laptop and on a phone, in English and
Welsh: each is free of the WCAG 2.2 A/AA problems axe-core finds, fits the screen, is in the chosen
language and runs its scripts without a CSP violation (the Visit helper checks all of that). The
recovery codes are copied, downloaded and printed as a person would; the header's navigation is
used with the keyboard alone on a phone.

Set IDP_TEST_SCREENSHOTS to a folder to keep a screenshot of every page seen."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.a11y import SCREEN_LANGUAGES, SCREENS
from tests.browser.test_pages_accessible import Visit, shots  # noqa: F401 - (shots: a fixture)
from tests.support import PASSWORD, add_totp, make_account, make_client

EO = "eo@centre.example"
SAFARI_ON_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    "Version/17.5 Mobile/15E148 Safari/604.1")


def _eo_elsewhere_too(app) -> str:
    """The Exams Officer (an authenticator app to sign in with), already signed in on a phone, and
    two services to start; returns the app's secret."""
    from idp.accounts import sessions
    from idp.extensions import db

    with app.app_context():
        eo = make_account(EO, mfa=False, given_name="Siân", family_name="Jones")
        secret = add_totp(eo)
        sessions.start(eo, amr=["pwd", "otp"], ip="198.51.100.23", user_agent=SAFARI_ON_IPHONE)
        db.session.commit()
        make_client("Results", allowed_profiles=["results.view"], initiate_login_uri="https://results.example/",
                    description="See your candidates' results.", description_cy="Gweld canlyniadau eich ymgeiswyr.")
        make_client("Entries", allowed_profiles=["entries.make"], initiate_login_uri="https://entries.example/",
                    description="Make and amend candidate entries.")
    return secret


def _sign_in(visit: Visit, secret: str, remember: bool = False) -> None:
    page = visit.page
    visit.goto(f"/signin?ui_locales={visit.lang}", "signin")
    page.fill("#email", EO)
    page.click("main button[type=submit]")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.fill("#code", pyotp.TOTP(secret).now())
    if remember:  # "Do not ask for a code on this device for 30 days"
        page.check("#remember")
    visit.submit("account")
    assert page.url.endswith("/account")


@pytest.mark.parametrize("width, lang", SCREEN_LANGUAGES)
def test_my_account_pages_and_all_services_are_accessible(live, browser, shots, width, lang):  # noqa: F811
    app, issuer = live
    secret = _eo_elsewhere_too(app)
    context = browser.new_context(**SCREENS[width], accept_downloads=True)
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=issuer)
    visit = Visit(context.new_page(), issuer, width, lang, shots)
    page = visit.page
    _sign_in(visit, secret, remember=True)
    sessions = page.locator(".govuk-summary-card", has=page.locator("input[name=sid]"))
    assert sessions.count() == 2  # this laptop and the phone
    assert page.locator(".govuk-summary-card", has=page.locator("input[name=device]")).count() == 1

    # ---- All services
    visit.goto("/services", "all-services")
    assert page.locator("main h2 a.govuk-link").count() == 2

    # ---- edit your details: a phone number as people write it, then one that is not a number
    visit.goto("/account/profile", "profile")
    assert page.locator("a.govuk-back-link").get_attribute("href") == "/account"
    page.fill("#phone", "(07700) 900 123")
    visit.submit("account-details-saved")
    assert page.locator("main").get_by_text("07700 900123").is_visible()
    visit.goto("/account/profile", "profile-again")
    page.fill("#phone", "07700 9001")
    visit.submit("profile-phone-error")
    visit.assert_error_summary_leads_to("phone")

    # ---- change your email address
    visit.goto("/account/email", "change-email")
    visit.submit("change-email-error")
    visit.assert_error_summary_leads_to("email")
    page.fill("#email", "new.address@school.example")
    visit.submit("check-your-email")
    assert page.url.endswith("/account/email/code")
    page.fill("#code", "000000")
    visit.submit("check-your-email-wrong-code", "main form[action$='/account/email/code'] button[type=submit]")
    visit.assert_error_summary_leads_to("code")

    # ---- sign out of the phone from the laptop
    visit.goto("/account", "account-two-sessions")
    phone_card = sessions.filter(has_not=page.locator(".govuk-tag"))
    phone_card.locator("button").click()
    page.wait_for_load_state()
    visit.check("account-phone-signed-out")
    assert sessions.count() == 1
    assert page.locator(".govuk-notification-banner").is_visible()

    # ---- stop remembering this laptop
    page.locator(".govuk-summary-card", has=page.locator("input[name=device]")).locator("button").click()
    page.wait_for_load_state()
    visit.check("account-device-forgotten")
    assert page.locator("input[name=device]").count() == 0
    assert page.locator(".govuk-notification-banner").is_visible()

    # ---- new recovery codes: copied, downloaded, printed
    visit.goto("/account/mfa", "sign-in-methods")
    visit.submit("recovery-codes", "main button[value=regenerate]")
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) >= 8
    page.locator("[data-module='idp-copy-codes']").click()
    expect(page.locator("#recovery-codes-status")).not_to_be_empty()
    assert page.evaluate("navigator.clipboard.readText()").split() == codes
    visit.check("recovery-codes-copied")
    with page.expect_download() as downloading:
        page.locator("main a[download]").click()
    download = downloading.value
    assert download.suggested_filename == "recovery-codes.txt"
    saved = Path(download.path()).read_text(encoding="utf-8")
    assert all(f"\n{code}\n" in saved for code in codes) and EO in saved
    # (a function, so evaluate runs it: the expression itself would be the new print function, called)
    page.evaluate("() => { window.printed = 0; window.print = () => { window.printed += 1; }; }")
    page.locator("[data-module='idp-print']").click()
    assert page.evaluate("window.printed") == 1

    # ---- a typed /signout asks first
    visit.goto("/signout", "sign-out-confirm")
    visit.submit("signed-out")
    assert not visit.problems, visit.problems
    context.close()


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_the_header_navigation_on_a_phone_with_the_keyboard_alone(live, browser, lang):
    """Tab to the menu button, open it with Enter, Tab through My account, All services and Sign out
    (each visible when it has the focus, in that order), and follow one with Enter; with the menu
    closed, Tab never lands on a link that cannot be seen."""
    app, issuer = live
    secret = _eo_elsewhere_too(app)
    context = browser.new_context(**SCREENS[390])
    context.set_default_timeout(30_000)
    visit = Visit(context.new_page(), issuer, 390, lang, None)
    page = visit.page
    _sign_in(visit, secret)

    def tab() -> dict:
        page.keyboard.press("Tab")
        return page.evaluate("""() => {
            const el = document.activeElement, box = el.getBoundingClientRect();
            return {text: el.textContent.trim(), tag: el.tagName, inHeader: !!el.closest('header'),
                    toggle: el.classList.contains('govuk-service-navigation__toggle'),
                    visible: box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden'};
        }""")

    page.locator("body").focus()
    seen = [tab() for _ in range(4)]
    assert all(f["visible"] for f in seen), seen
    toggle = next(i for i, f in enumerate(seen) if f["toggle"])
    # menu closed: the next stop is past the header (its hidden links are skipped)
    assert not seen[toggle + 1]["inHeader"], seen
    page.locator(".govuk-service-navigation__toggle").focus()
    page.keyboard.press("Enter")
    assert page.locator(".govuk-service-navigation__toggle").get_attribute("aria-expanded") == "true"
    order = []
    for _ in range(6):
        focused = tab()
        if not focused["inHeader"]:
            break
        assert focused["visible"], focused
        order.append(focused["text"])
    # every link and button of the navigation, in the order they are drawn: My account, (Manage
    # users,) All services, Sign out
    drawn = [t.strip() for t in page.locator(".govuk-service-navigation__list").locator("a, button").all_inner_texts()]
    assert order == drawn and len(drawn) >= 3, (order, drawn)
    assert drawn[0] == ("My account" if lang == "en" else "Fy nghyfrif")
    assert drawn[-1] == ("Sign out" if lang == "en" else "Allgofnodi")
    # follow All services (the link before Sign out) from the keyboard
    page.locator(".govuk-service-navigation__toggle").focus()
    for _ in range(len(drawn) - 1):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/services"
    page.keyboard.press("Enter")
    page.wait_for_url("**/services")
    visit.check("all-services-by-keyboard")
    assert not visit.problems, visit.problems
    context.close()
