"""An invite the mail server refuses leaves nothing half-done: no account, no grants, no audit
claim that it happened, and the caller is told (DeliveryError; 503 from the API). A refused
resend keeps the old temporary password and expiry. DESIGN.md §5 "nothing half-written"."""

from __future__ import annotations

import pytest

from idp.notify.mail import DeliveryError
from tests.support import ADMIN_API_SCOPE, code_flow, make_account, make_admin_client

EO = "eo@centre.example"
STARTER = "new.starter@centre.example"
BODY = {"email": STARTER, "role": "user", "centre": "12345", "given_name": "Grace", "family_name": "Hopper"}


def nothing_for(app, kit, email):
    assert kit.account_row(app, email) is None
    assert kit.grants_for(app, email) == []
    assert kit.audit_events(app, "account.invited") == []


def test_refused_invite_creates_nothing_and_reports_the_error(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
        rp = make_admin_client()
    eo = browser(app)
    token = code_flow(eo.http, rp, scope=ADMIN_API_SCOPE)["access_token"]
    api = {"Authorization": f"Bearer {token}"}

    # refused at RCPT TO: the admin API answers 503 problem+json
    smtp.refuse_rcpt = "550 5.1.1 <new.starter@centre.example>: Recipient address rejected"
    refused = eo.http.post("/api/v1/accounts", headers=api, json=BODY)
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["title"] == "Email not sent"
    nothing_for(app, kit, STARTER)

    # refused after DATA: the service raises DeliveryError
    smtp.refuse_rcpt, smtp.refuse_data = None, "550 5.7.1 Message rejected as spam"
    with pytest.raises(DeliveryError):
        kit.invite(app, STARTER)
    nothing_for(app, kit, STARTER)
    assert smtp.received == []

    # the same invite goes through once the server accepts it
    smtp.refuse_data = None
    created = eo.http.post("/api/v1/accounts", headers=api, json=BODY)
    assert created.status_code == 201, created.get_data(as_text=True)
    smtp.take(STARTER, kit.INVITE_SUBJECT)
    assert kit.account_row(app, STARTER)["status"] == "invited"
    assert kit.grants_for(app, STARTER)
    assert len(kit.audit_events(app, "account.invited")) == 1


def test_refused_resend_keeps_the_old_invite(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
        rp = make_admin_client()
    sub = kit.invite(app, STARTER)
    temp = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    before = kit.account_row(app, STARTER)
    eo = browser(app)
    token = code_flow(eo.http, rp, scope=ADMIN_API_SCOPE)["access_token"]

    smtp.refuse_data = "554 5.7.1 Delivery not authorised"
    refused = eo.http.post(f"/api/v1/accounts/{sub}/invite", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert refused.get_json()["title"] == "Email not sent"
    with pytest.raises(DeliveryError):
        kit.resend(app, sub)
    assert kit.account_row(app, STARTER) == before
    assert kit.audit_events(app, "account.invite_resent") == []

    step = browser(app).sign_in(STARTER, temp)  # the old temporary password still works
    assert step.status_code == 303 and step.location.endswith("/signin/new-password"), kit.messages(step)
