"""The centre console in Welsh: its pages, the policy's refusals (with the Welsh names of account
types) and the administration's errors, and dates; while the audit trail keeps the refusal in English."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import get_month_names
from sqlalchemy import select

from idp.audit import AuditEvent
from idp.extensions import db
from tests.integration.console.conftest import ADMIN, EO

WELSH_MONTHS = set(get_month_names("wide", locale="cy").values())
ENGLISH_MONTHS = set(get_month_names("wide", locale="en").values())


def test_the_console_and_its_refusals_are_welsh(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    listing = eo.get("/users?ui_locales=cy")
    assert 'lang="cy"' in listing.get_data(as_text=True)
    assert "Defnyddwyr yn Test Centre" in pages.text(listing) and "Users at" not in pages.text(listing)

    # the policy's reason, built in the service, shown in the page's language with Welsh role names
    refused = pages.post(eo, f"/users/{staff.sub[ADMIN]}/type", {"role": "eo"})
    assert refused.status_code == 403
    assert pages.messages(refused) == ["Ni allwch roi'r math o gyfrif Swyddog Arholiadau i rywun."]
    # ... and kept in the audit trail in English, whoever read it in Welsh
    with mail_app.app_context():
        denied = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "account.role_changed",
                                                             AuditEvent.outcome == "denied")).all()
    assert [e.details["reason"] for e in denied] == ["You cannot change an account's type to Exams Officer."]

    # a refusal of the administration service, in Welsh too
    odd = pages.post(eo, "/users/invite", {"given_name": "Mair", "family_name": "Jones", "email": "mair@centre.example",
                                           "language": "fr", "role": "user"})
    assert pages.messages(odd) == ["Rhaid i'r iaith fod yn en (Saesneg) neu cy (Cymraeg)."]


def test_dates_on_welsh_console_pages_name_the_month_in_welsh(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    eo.get("/users?ui_locales=cy")
    signed = pages.row(mail_app, EO).last_sign_in_at.astimezone(ZoneInfo("Europe/London"))
    words = pages.text(eo.get(f"/users/{staff.sub[EO]}"))
    month = get_month_names("wide", locale="cy")[signed.month]
    assert f"{signed.day} {month} {signed.year} am {signed:%H:%M}" in words, words
    assert not any(name in words.split() for name in ENGLISH_MONTHS - WELSH_MONTHS)
