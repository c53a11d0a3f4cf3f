"""The board console's journeys in real Chromium: board staff create a centre and invite its Exams
Officer, who signs in for the first time; the helpdesk unlocks someone with a reason; a service is
registered, gets tokens with its new secret, has the secret rotated with a grace period, and the
old secret is refused once the grace period is over; a signing key is rotated from the page and
tokens keep validating; centre staff are refused every board page."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyotp
import time_machine
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.support import PASSWORD, add_totp, make_account, make_centre

BOARD = "board@board.example"
HELPDESK = "help@board.example"


def _people(app) -> dict:
    from idp.extensions import db

    with app.app_context():
        board = make_account(BOARD, role="board", centre=None, mfa=False, given_name="Bea", family_name="Board")
        helpdesk = make_account(HELPDESK, role="helpdesk", centre=None, mfa=False, given_name="Hal", family_name="Desk")
        secrets = {BOARD: add_totp(board), HELPDESK: add_totp(helpdesk)}
        db.session.commit()
    return secrets


def _sign_in(page, issuer, address, totp_secret=None, password=PASSWORD):
    page.goto(issuer + "/signin")
    page.fill("#email", address)
    page.click("main button[type=submit]")
    page.fill("#password", password)
    page.click("main button[type=submit]")
    if totp_secret:
        page.fill("#code", pyotp.TOTP(totp_secret).now())
        page.click("main button[type=submit]")
        page.wait_for_url("**/account")


def _new_page(browser):
    context = browser.new_context()
    context.set_default_timeout(30_000)  # CI shares two cores with the rest of the suite
    return context, context.new_page()


def _temporary_password(app, address: str) -> str:
    outbox = Path(app.config["IDP_SETTINGS"].mail_outbox_dir)
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            text = message.get_body(preferencelist=("plain",)).get_content()
            return re.search(r"Temporary password: (\S+)", text).group(1)
    raise AssertionError(f"no invite to {address}")


def _token(issuer, client_id, secret) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(issuer + "/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {basic}",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_create_a_centre_invite_its_exams_officer_who_signs_in(live, browser):
    app, issuer = live
    secrets = _people(app)
    context, page = _new_page(browser)
    _sign_in(page, issuer, BOARD, secrets[BOARD])
    page.goto(issuer + "/board")
    page.click("text=Centres")
    page.click("text=Create a centre")
    page.fill("#number", "24680")
    page.fill("#name", "Ysgol y Bryn")
    page.click("main button[type=submit]")
    page.wait_for_url("**/board/centres/24680/exams-officer/new")
    assert "Centre 24680, Ysgol y Bryn, has been created" in page.inner_text(".govuk-notification-banner")
    page.fill("#email", "eo@bryn.example")
    page.fill("#given_name", "Elin")
    page.fill("#family_name", "Bryn")
    page.click("main button[type=submit]")
    page.wait_for_url("**/board/centres/24680")
    assert "The invite has been sent to eo@bryn.example" in page.inner_text(".govuk-notification-banner")
    assert "Elin Bryn" in page.inner_text("main")
    context.close()

    # the Exams Officer's first sign-in: temporary password, their own, a second factor
    context, page = _new_page(browser)
    _sign_in(page, issuer, "eo@bryn.example", password=_temporary_password(app, "eo@bryn.example"))
    page.wait_for_url("**/signin/new-password")
    page.fill("#password", "Lantern-orchard-quietly-42")
    page.click("main button[type=submit]")
    page.wait_for_url("**/signin/mfa/setup")
    page.goto(issuer + "/signin/mfa/setup/totp")
    secret = page.locator("code.secret").inner_text().strip()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/signin/mfa/recovery-codes")
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    with app.app_context():
        from idp.admin import people

        eo = people.account_by_email("eo@bryn.example")
        assert (eo.role, eo.status, eo.centre_number) == ("eo", "active", "24680")
    context.close()


def test_the_helpdesk_unlocks_someone_with_a_reason(live, browser):
    app, issuer = live
    secrets = _people(app)
    with app.app_context():
        make_centre("12345", "Ysgol Gyfun")
        locked = make_account("locked@centre.example", role="user", given_name="Lou", family_name="Locked")
        sub = locked.sub
    context, page = _new_page(browser)
    for _ in range(3):  # three wrong passwords lock the account
        page.goto(issuer + "/signin")
        page.fill("#email", "locked@centre.example")
        page.click("main button[type=submit]")
        page.fill("#password", "not the password")
        page.click("main button[type=submit]")
    context.close()

    context, page = _new_page(browser)
    _sign_in(page, issuer, HELPDESK, secrets[HELPDESK])
    page.goto(issuer + "/board/people")
    page.fill("#q", "lou")
    page.click("main button[type=submit]")
    page.click("text=Lou Locked")
    assert "Locked until" in page.inner_text("main") and page.locator("text=Wrong password").count() >= 2
    assert page.locator("text=Reset the second factor:").count() == 1  # not for the helpdesk, and why
    page.click("text=Unlock the account")
    page.click("main button[type=submit]")  # no reason
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    assert "Enter the reason" in page.inner_text(".govuk-error-summary")
    assert_accessible(page, "unlock without a reason")
    page.fill("#reason", "Ticket 1207: locked out before the deadline")
    page.click("main button[type=submit]")
    page.wait_for_url(f"**/board/people/{sub}")
    assert "The account has been unlocked." in page.inner_text(".govuk-notification-banner")
    with app.app_context():
        from idp.audit import AuditEvent
        from idp.extensions import db

        row = db.session.query(AuditEvent).filter_by(event="account.unlocked").one()
        assert row.details == {"reason": "Ticket 1207: locked out before the deadline"} and row.subject == sub
        from idp.admin import people

        assert row.actor == people.account_by_email(HELPDESK).sub
    context.close()


def test_register_a_service_use_its_secret_rotate_it_with_a_grace_period(live, browser):
    app, issuer = live
    secrets = _people(app)
    context, page = _new_page(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    _sign_in(page, issuer, BOARD, secrets[BOARD])
    page.goto(issuer + "/board/services")
    page.click("text=Register a service")
    page.fill("#client_name", "Nightly results feed")
    page.fill("#redirect_uris", "https://feed.example/cb")
    page.check("input[name=grant_types][value=client_credentials]")
    page.click("main button[type=submit]")
    page.wait_for_selector("#client-secret")
    client_id = page.inner_text("#client-id").strip()
    first = page.inner_text("#client-secret").strip()
    page.click("button[data-copy-target=client-secret]")
    expect(page.locator("#client-secret-copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == first

    status, body = _token(issuer, client_id, first)
    assert status == 200 and body["token_type"].lower() == "bearer"

    page.goto(f"{issuer}/board/services/{client_id}")
    page.click("text=Issue a new secret")
    page.check("input[name=grace][value='3600']")
    page.click("main button[type=submit]")
    page.wait_for_selector("#client-secret")
    second = page.inner_text("#client-secret").strip()
    assert second != first and "The old secret keeps working until" in page.inner_text("main")
    assert _token(issuer, client_id, second)[0] == 200
    assert _token(issuer, client_id, first)[0] == 200  # within the grace period
    with time_machine.travel(time.time() + 3601, tick=False):  # the provider runs in this process
        status, body = _token(issuer, client_id, first)
        assert status == 401 and body["error"] == "invalid_client"
        assert _token(issuer, client_id, second)[0] == 200
    context.close()


def test_rotate_a_signing_key_from_the_page_and_tokens_keep_validating(live, browser):
    app, issuer = live
    secrets = _people(app)
    with app.app_context():
        from idp.oidc import clients

        created = clients.create({"client_name": "Batch", "grant_types": ["client_credentials"]}, actor="test",
                                 pepper=app.extensions["idp.pepper"])
        client_id, secret = created.client.client_id, created.client_secret
    status, before = _token(issuer, client_id, secret)
    assert status == 200
    context, page = _new_page(browser)
    _sign_in(page, issuer, BOARD, secrets[BOARD])
    page.goto(issuer + "/board/keys")
    page.click("text=Rotate the ES256 key")
    page.click("main button[type=submit]")
    page.wait_for_url("**/board/keys")
    assert "A new ES256 key has been published" in page.inner_text(".govuk-notification-banner")
    assert page.locator("text=Next: published, not signing yet").count() == 1
    with app.app_context():
        from idp.extensions import keys
        from idp.oidc import tokens

        new = max((k for k in keys().folder.load().infos if k.alg == "ES256"), key=lambda k: k.created_at)
        jwks = json.loads(urllib.request.urlopen(issuer + "/jwks.json", timeout=30).read())
        assert new.kid in {k["kid"] for k in jwks["keys"]}  # published before it signs
        with time_machine.travel(new.signs_from + 2, tick=False):
            keys().CHECK_EVERY = 0  # this process sees the keyring change at once
            assert tokens.verify_access_token(before["access_token"]) is not None
            status, after = _token(issuer, client_id, secret)
            assert status == 200 and tokens.verify_access_token(after["access_token"]) is not None
            header = json.loads(base64.urlsafe_b64decode(after["access_token"].split(".")[0] + "=="))
            assert header["kid"] == new.kid
    context.close()


def test_centre_staff_are_refused_every_board_page(live, browser):
    app, issuer = live
    with app.app_context():
        make_centre("12345", "Ysgol Gyfun")
        eo = make_account("eo@centre.example", role="eo", mfa=False)
        eo_secret = add_totp(eo)
        from idp.extensions import db

        db.session.commit()
        gets = sorted({rule.rule for rule in app.url_map.iter_rules()
                       if rule.endpoint.startswith("board.") and "GET" in rule.methods and "<" not in rule.rule})
    context, page = _new_page(browser)
    _sign_in(page, issuer, "eo@centre.example", eo_secret)
    for path in gets:
        response = page.goto(issuer + path)
        assert response.status == 403, path
        assert "You cannot do this" in page.inner_text("h1"), path
    assert_accessible(page, "the board console's refusal")
    with app.app_context():
        from idp.audit import AuditEvent
        from idp.extensions import db

        assert db.session.query(AuditEvent).filter_by(event="board.opened", outcome="denied",
                                                      actor=eo.sub).count() == len(gets)
    context.close()
